package broker

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestPublishSubscribe connects a real paho client to the embedded broker
// over TCP and round-trips a QoS 1 message.
func TestPublishSubscribe(t *testing.T) {
	b, err := Open(Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("t1"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to %s: %v", b.URL(), tok.Error())
	}
	defer c.Disconnect(100)
	got := make(chan string, 1)
	if tok := c.Subscribe("linesight/v1/#", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if tok := c.Publish("linesight/v1/demo/d1/status", 1, false, "online"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m != "online" {
			t.Errorf("got %q, want online", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("message not delivered")
	}
}

func TestOpenBadAddress(t *testing.T) {
	if _, err := Open(Options{Listen: "256.0.0.1:99999"}); err == nil {
		t.Fatal("want an error for an unusable listen address")
	}
}
