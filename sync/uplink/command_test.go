package uplink_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/sync/uplink"
	"github.com/linesight/linesight/sync/wire"
)

// commands records what the uplink routed to the agent and the lifecycle.
type commands struct{ got chan string }

func (c commands) SetLevel(_ context.Context, camera string, l policy.Level, by string) error {
	c.got <- fmt.Sprintf("set-level %s %s %s", camera, l, by)
	return nil
}
func (c commands) Trigger(_ context.Context, camera, part string) error {
	c.got <- "trigger " + camera + " " + part
	return nil
}
func (c commands) Rollback(_ context.Context, by string) error { c.got <- "rollback " + by; return nil }
func (c commands) Promote(_ context.Context, by string) error  { c.got <- "promote " + by; return nil }

var (
	_ uplink.Commands   = commands{}
	_ uplink.Rollbacker = commands{}
	_ uplink.Promoter   = commands{}
)

// TestCommands: every command op reaches its handler, in order.
func TestCommands(t *testing.T) {
	b := openBroker(t)
	st := openStore(t, filepath.Join(t.TempDir(), "agent.db"))
	defer st.Close()
	c := commands{got: make(chan string, 10)}
	u := openUplink(t, b.URL(), st, func(o *uplink.Options) { o.Commands, o.Rollback, o.Promote = c, c, c })
	defer u.Close()
	waitFor(t, "uplink connected", u.Connected)

	fleetC := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("fleet"))
	if tok := fleetC.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer fleetC.Disconnect(100)
	cmds := []wire.Command{
		{Op: wire.OpSetLevel, Camera: "cam1", Level: "assist", By: "fleet:maria"},
		{Op: wire.OpTrigger, Camera: "cam1", PartID: "p-7", By: "fleet:maria"},
		{Op: wire.OpRollback, By: "fleet:maria"},
		{Op: wire.OpPromote, By: "fleet:maria"},
	}
	want := []string{"set-level cam1 " + policy.Assist.String() + " fleet:maria", "trigger cam1 p-7", "rollback fleet:maria", "promote fleet:maria"}
	// The uplink subscribes right after connecting: publish until the first arrives.
	var first string
	for first == "" {
		msg, err := wire.Encode(wire.Envelope{Type: wire.TypeCommand, Time: time.Now().UTC()}, cmds[0])
		if err != nil {
			t.Fatal(err)
		}
		fleetC.Publish(u.Topic(wire.KindCommand), 1, false, msg).Wait()
		select {
		case first = <-c.got:
		case <-time.After(200 * time.Millisecond):
		}
	}
	if first != want[0] {
		t.Errorf("got %q, want %q", first, want[0])
	}
	for _, cmd := range cmds[1:] {
		msg, err := wire.Encode(wire.Envelope{Type: wire.TypeCommand, Time: time.Now().UTC()}, cmd)
		if err != nil {
			t.Fatal(err)
		}
		fleetC.Publish(u.Topic(wire.KindCommand), 1, false, msg).Wait()
	}
	for _, w := range want[1:] {
		select {
		case got := <-c.got:
			for got == want[0] { // a late copy of a retried first command
				got = <-c.got
			}
			if got != w {
				t.Errorf("got %q, want %q", got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("command %q not routed", w)
		}
	}
}
