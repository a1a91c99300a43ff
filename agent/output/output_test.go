package output

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/linesight/linesight/sync/broker"
)

func msg(i int, actuate bool) *Message {
	return &Message{ID: "id-" + string(rune('a'+i%26)), Device: "d1", Camera: "cam1", Verdict: "pass", Reason: "confident-pass", Level: "partial", Actuate: actuate}
}

func TestSlowOutputNeverBlocksTheLine(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release // a PLC gateway that hangs
	}))
	defer srv.Close()
	defer close(release)
	dir := t.TempDir()
	j, err := OpenJSONL(filepath.Join(dir, "d.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	var dropped atomic.Int64
	d := NewDispatcher([]Output{NewWebhook(srv.URL, "", 200*time.Millisecond), j}, 4, nil, Hooks{Dropped: func(string) { dropped.Add(1) }})
	start := time.Now()
	for i := range 100 {
		d.Send(msg(i, true))
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("100 sends took %s: Send blocked on the hung webhook", el)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c := d.Counters()
	if c["webhook"].Dropped == 0 || c["webhook"].Failed == 0 {
		t.Errorf("webhook counters %+v: want drops (queue of 4) and failures (timeouts)", c["webhook"])
	}
	if c["jsonl"].Sent+c["jsonl"].Dropped != 100 || c["webhook"].Sent+c["webhook"].Failed+c["webhook"].Dropped != 100 {
		t.Errorf("counters do not add up to 100: %+v", c)
	}
	if int64(c["jsonl"].Dropped+c["webhook"].Dropped) != dropped.Load() {
		t.Errorf("drop hook saw %d, counters %+v", dropped.Load(), c)
	}
}

func TestActuatingOutputsSkipShadowVerdicts(t *testing.T) {
	var got atomic.Int64
	var auth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m Message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || !m.Actuate || m.V != Version {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		auth.Store(r.Header.Get("Authorization"))
		got.Add(1)
	}))
	defer srv.Close()
	dir := t.TempDir()
	j, err := OpenJSONL(filepath.Join(dir, "d.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDispatcher([]Output{NewWebhook(srv.URL, "s3cret", time.Second), j}, 0, nil, Hooks{})
	for i := range 10 {
		d.Send(msg(i, i%2 == 0)) // odd ones: shadow, not actuated
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got.Load() != 5 {
		t.Errorf("webhook got %d verdicts, want the 5 actuated ones", got.Load())
	}
	if a, _ := auth.Load().(string); a != "Bearer s3cret" {
		t.Errorf("webhook Authorization %q", a)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "d.jsonl"))
	if n := strings.Count(string(b), "\n"); n != 10 {
		t.Errorf("jsonl has %d lines, want all 10 (shadow included)", n)
	}
}

func TestWebhookReportsStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer srv.Close()
	err := NewWebhook(srv.URL, "", time.Second).Send(context.Background(), msg(0, true))
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err %v, want the 503 named", err)
	}
}

func TestJSONLRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.jsonl")
	j, err := OpenJSONL(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if err := j.Send(context.Background(), msg(i, false)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".1"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1000 || st.Size() == 0 {
			t.Errorf("%s is %d bytes, want 1..1000", p, st.Size())
		}
	}
	if _, err := OpenJSONL(filepath.Join(t.TempDir(), "f", "x.jsonl"), 0); err != nil {
		t.Errorf("missing directory not created: %v", err)
	}
	ro := t.TempDir()
	os.Chmod(ro, 0o500)
	defer os.Chmod(ro, 0o700)
	if os.Geteuid() != 0 {
		if _, err := OpenJSONL(filepath.Join(ro, "x.jsonl"), 0); err == nil || !strings.Contains(err.Error(), "outputs.jsonl") {
			t.Errorf("unwritable: %v, want advice naming outputs.jsonl", err)
		}
	}
}

func TestMQTTOutputThroughABroker(t *testing.T) {
	b, err := broker.Open(broker.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The PLC side: a subscriber on the camera's decisions topic.
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("plc"))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(0)
	got := make(chan Message, 10)
	topic := DecisionTopic("site1", "d1", "cam1")
	if tok := sub.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		var v Message
		if json.Unmarshal(m.Payload(), &v) == nil {
			got <- v
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	conn, err := Dial(ConnOptions{Broker: b.URL(), ClientID: "d1-verdicts"})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDispatcher([]Output{NewMQTT(conn, "site1", "d1")}, 0, nil, Hooks{})
	m := msg(1, true)
	m.PartID = "P-42"
	d.Send(m)
	select {
	case v := <-got:
		if v.PartID != "P-42" || v.Verdict != "pass" || v.Camera != "cam1" {
			t.Errorf("PLC got %+v", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("verdict not delivered")
	}
	d.Close(context.Background())
	conn.Close()
	if topic != "linesight/v1/site1/d1/cam1/decisions" {
		t.Errorf("topic %s", topic)
	}
}

func TestMQTTPublishWhileBrokerDownFailsFast(t *testing.T) {
	b, err := broker.Open(broker.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := Dial(ConnOptions{Broker: b.URL(), ClientID: "d1-verdicts", Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b.Close()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	err = NewMQTT(conn, "s", "d").Send(context.Background(), msg(0, true))
	if err == nil {
		t.Fatal("publish with the broker gone succeeded")
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("publish took %s with the broker down", time.Since(start))
	}
}
