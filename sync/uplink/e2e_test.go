package uplink_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/sync/broker"
	"github.com/linesight/linesight/sync/fleet"
	"github.com/linesight/linesight/sync/uplink"
	"github.com/linesight/linesight/sync/wire"
)

var classes = []string{"ok", "scratch", "crack"}

// seed stores n deferred inspections with size-byte pseudo-JPEGs and labels
// them; it returns each item's image and final class.
func seed(t testing.TB, st *store.Store, n, size int, rng *rand.Rand) (map[string][]byte, map[string]string) {
	t.Helper()
	return seedClasses(t, st, n, size, rng, classes)
}

// seedClasses is seed with the given class names.
func seedClasses(t testing.TB, st *store.Store, n, size int, rng *rand.Rand, classes []string) (map[string][]byte, map[string]string) {
	t.Helper()
	ctx := context.Background()
	imgs, cls := map[string][]byte{}, map[string]string{}
	for i := 0; i < n; i++ {
		now := time.Now()
		in := &store.Inspection{ID: st.NewID(now), Time: now, Camera: "cam1", Model: store.ModelRef{Name: "tilenet", Version: "1"},
			Top: "ok", Scores: []store.Score{{Label: "ok", P: 0.55}}, Verdict: policy.Defer, Reason: policy.ReasonUncertain, Level: policy.Partial, Review: true}
		jpeg := make([]byte, size)
		rng.Read(jpeg)
		copy(jpeg, "\xff\xd8\xff")
		if err := st.Put(ctx, in, jpeg); err != nil {
			t.Fatal(err)
		}
		c := classes[rng.Intn(len(classes))]
		if _, err := st.Label(ctx, store.LabelInput{ItemID: in.ID, By: "ana", Class: c}); err != nil {
			t.Fatal(err)
		}
		imgs[in.ID], cls[in.ID] = jpeg, c
	}
	return imgs, cls
}

// openBroker starts an embedded broker on a free port, closed when the
// test ends.
func openBroker(t testing.TB) *broker.Broker {
	t.Helper()
	b, err := broker.Open(broker.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path, store.Options{RetentionEvery: -1, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func openUplink(t testing.TB, url string, st uplink.Outbox, mod func(*uplink.Options)) *uplink.Uplink {
	t.Helper()
	o := uplink.Options{Broker: url, Site: "s1", Device: "d1", Outbox: st, AckTimeout: 2 * time.Second,
		PollEvery: 20 * time.Millisecond, MaxReconnectInterval: time.Second, DrainRate: 100000}
	if mod != nil {
		mod(&o)
	}
	u, err := uplink.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return u
}

func openCollector(t testing.TB, url, dir, id, group string) *fleet.Collector {
	t.Helper()
	c, err := fleet.OpenCollector(context.Background(), fleet.CollectorOptions{Broker: url, ClientID: id, DatasetDir: dir, SharedGroup: group})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func outboxLen(t testing.TB, st *store.Store) uint64 {
	s, err := st.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s.OutboxLen()
}

// checkDataset asserts every item is in the dataset exactly once, in its
// class folder, byte-identical, with one manifest line per label.
func checkDataset(t testing.TB, dir string, imgs map[string][]byte, cls map[string]string, labels int) {
	t.Helper()
	for id, want := range imgs {
		got, err := os.ReadFile(filepath.Join(dir, cls[id], id+".jpg"))
		if err != nil {
			t.Fatalf("item %s: %v", id, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("item %s: image differs from the device's", id)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.jpg"))
	if len(files) != len(imgs) {
		t.Errorf("%d image files, want %d", len(files), len(imgs))
	}
	f, err := os.Open(filepath.Join(dir, fleet.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r fleet.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if seen[r.ID] {
			t.Errorf("manifest has %s twice", r.ID)
		}
		seen[r.ID] = true
		if r.Device != "d1" || r.Camera != "cam1" || r.By != "ana" || r.Model.Version != "1" || r.Suggested != "ok" {
			t.Errorf("provenance: %+v", r)
		}
	}
	if len(seen) != labels {
		t.Errorf("manifest has %d samples, want %d", len(seen), labels)
	}
}

func TestDrainToCollector(t *testing.T) {
	b := openBroker(t)
	st := openStore(t, filepath.Join(t.TempDir(), "agent.db"))
	defer st.Close()
	dir := t.TempDir()
	col := openCollector(t, b.URL(), dir, "fleet1", "")
	defer col.Close()
	imgs, cls := seed(t, st, 40, 2000, rand.New(rand.NewSource(1)))
	// A correction moves one item to another class.
	var first string
	for id := range imgs {
		first = id
		break
	}
	if _, err := st.Correct(context.Background(), store.LabelInput{ItemID: first, By: "ana", Class: "dent"}); err != nil {
		t.Fatal(err)
	}
	cls[first] = "dent"
	if err := st.Append(context.Background(), store.OutboxEntry{ID: "event-1", Kind: store.KindEvent, Payload: json.RawMessage(`{"code":"test"}`)}); err != nil {
		t.Fatal(err)
	}
	tel := telemetry{}
	u := openUplink(t, b.URL(), st, func(o *uplink.Options) { o.Telemetry = tel; o.TelemetryEvery = 50 * time.Millisecond })
	defer u.Close()
	waitFor(t, "outbox drained", func() bool { return outboxLen(t, st) == 0 })
	checkDataset(t, dir, imgs, cls, 41)
	waitFor(t, "telemetry in the registry", func() bool {
		d := col.Devices()
		return len(d) == 1 && d[0].State == wire.StateOnline && d[0].Health == "ok" && d[0].Counts[wire.TypeEvent] == 1
	})

	// Live decisions share the connection.
	if err := u.Publish(context.Background(), u.DecisionTopic("cam1"), []byte(`{"v":1,"type":"decision","body":{"id":"x","camera":"cam1"}}`)); err != nil {
		t.Fatal(err)
	}
	// Duplicate delivery: the same sample again, raw, changes nothing but is acked.
	samples := rawSample(t, st, first)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("dup"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	acked := make(chan wire.Ack, 10)
	c.Subscribe(wire.Topic("s1", "d1", wire.KindAck), 1, func(_ paho.Client, m paho.Message) {
		if _, a, err := wire.DecodeAck(m.Payload()); err == nil {
			acked <- a
		}
	}).Wait()
	for i := 0; i < 3; i++ {
		c.Publish(wire.Topic("s1", "d1", wire.KindSamples), 1, false, samples).Wait()
	}
	for i := 0; i < 3; {
		select {
		case a := <-acked:
			i += len(a.IDs)
		case <-time.After(20 * time.Second):
			t.Fatal("duplicate not acknowledged")
		}
	}
	checkDataset(t, dir, imgs, cls, 41)
	if s := col.Stats(); s.Duplicates < 3 || s.Samples != 41 {
		t.Errorf("collector stats %+v", s)
	}
	// A clean close leaves the retained status "offline".
	u.Close()
	waitFor(t, "offline status", func() bool { d := col.Devices(); return d[0].State == wire.StateOffline })
}

type telemetry struct{}

func (telemetry) Telemetry() wire.Telemetry {
	return wire.Telemetry{Health: "ok", Cameras: []wire.CameraMetrics{{ID: "cam1", Parts: 1}}}
}

// rawSample builds the wire message of an item's current label, as the
// uplink would.
func rawSample(t testing.TB, st *store.Store, item string) []byte {
	l, err := st.GetLabel(item)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := st.Get(item)
	img, _ := st.Image(item)
	s := wire.Sample{LabelID: l.ID, ItemID: item, Camera: l.Camera, Class: l.Class, By: l.By, At: l.At, Revision: l.Revision,
		Model: wire.ModelRef{Name: "tilenet", Version: "1"}, Suggested: "ok", Inspection: wire.Decision{ID: in.ID, Time: in.Time, Camera: in.Camera},
		Image: wire.NewImage(img)}
	b, err := wire.Encode(wire.Envelope{Type: wire.TypeSample, ID: l.OutboxID(), Device: "d1", Time: l.At, Ack: true}, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestBrokerRestartMidBurst kills the (embedded) broker while a burst is
// draining and starts a new one on the same port: the broker forgets every
// session, so acks in flight are lost; everything still arrives exactly once.
func TestBrokerRestartMidBurst(t *testing.T) {
	addr := freePort(t)
	b, err := broker.Open(broker.Options{Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, filepath.Join(t.TempDir(), "agent.db"))
	defer st.Close()
	dir := t.TempDir()
	imgs, cls := seed(t, st, 400, 5000, rand.New(rand.NewSource(2)))
	col := openCollector(t, "tcp://"+addr, dir, "fleet1", "")
	defer col.Close()
	u := openUplink(t, "tcp://"+addr, st, func(o *uplink.Options) { o.DrainRate = 800 })
	defer u.Close()
	waitFor(t, "some samples written", func() bool { return col.Stats().Samples > 20 })
	b.Close()
	time.Sleep(300 * time.Millisecond)
	b, err = broker.Open(broker.Options{Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	waitFor(t, "outbox drained after the restart", func() bool { return outboxLen(t, st) == 0 })
	checkDataset(t, dir, imgs, cls, 400)
	if u.Stats().Connects < 2 {
		t.Errorf("uplink should have reconnected: %+v", u.Stats())
	}
	if u.Stats().Frames == 0 {
		t.Errorf("no sample travelled as a frame: %+v", u.Stats())
	}
}

// TestLinkCut cuts the TCP link (a proxy drops every connection and refuses
// new ones for a while) in the middle of a burst.
func TestLinkCut(t *testing.T) {
	b := openBroker(t)
	p := newProxy(t, b.Addr())
	defer p.close()
	st := openStore(t, filepath.Join(t.TempDir(), "agent.db"))
	defer st.Close()
	dir := t.TempDir()
	imgs, cls := seed(t, st, 300, 5000, rand.New(rand.NewSource(3)))
	col := openCollector(t, b.URL(), dir, "fleet1", "")
	defer col.Close()
	u := openUplink(t, "tcp://"+p.addr(), st, func(o *uplink.Options) { o.DrainRate = 600 })
	defer u.Close()
	waitFor(t, "some samples written", func() bool { return col.Stats().Samples > 20 })
	p.cut(true)
	waitFor(t, "uplink notices", func() bool { return !u.Connected() })
	time.Sleep(500 * time.Millisecond)
	p.cut(false)
	waitFor(t, "outbox drained after the cut", func() bool { return outboxLen(t, st) == 0 })
	checkDataset(t, dir, imgs, cls, 300)
	if u.Stats().Frames == 0 {
		t.Errorf("no sample travelled as a frame: %+v", u.Stats())
	}
}

var _ = fmt.Sprint
