package uplink_test

import (
	"math/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/sync/uplink"
	"github.com/linesight/linesight/sync/wire"
)

// fakeCollector is a collector as an older (or confused) version behaves:
// it decodes samples with wire.DecodeSample and acks them, saying in its
// acks that it takes frames only if accept says so, and dropping frames
// (no ack, as an older collector that cannot parse them) if refuse says so.
type fakeCollector struct {
	mu      sync.Mutex
	ids     map[string]bool
	frames  int
	json    int
	dropped int
	refuse  bool
	accept  []string
}

func (f *fakeCollector) stats() (ids, frames, json, dropped int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ids), f.frames, f.json, f.dropped
}

func openFake(t *testing.T, url string, f *fakeCollector) {
	t.Helper()
	f.ids = map[string]bool{}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("fake-collector"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	c.Subscribe(wire.Topic("s1", "d1", wire.KindSamples), 1, func(c paho.Client, m paho.Message) {
		f.mu.Lock()
		defer f.mu.Unlock()
		framed := wire.IsFrame(m.Payload())
		if framed && f.refuse {
			f.dropped++
			return
		}
		e, _, err := wire.DecodeSample(m.Payload())
		if err != nil {
			t.Errorf("sample: %v", err)
			return
		}
		if framed {
			f.frames++
		} else {
			f.json++
		}
		f.ids[e.ID] = true
		b, err := wire.Encode(wire.Envelope{Type: wire.TypeAck, Time: time.Now()}, wire.Ack{IDs: []string{e.ID}, Accept: f.accept})
		if err != nil {
			t.Error(err)
			return
		}
		c.Publish(wire.Topic("s1", "d1", wire.KindAck), 1, false, b)
	}).Wait()
}

// TestSampleFrames: a device sends samples as JSON until the collector's
// ack says it takes frames, then as frames; to a collector that never says
// so, only JSON; and when frames go unacknowledged (a collector that said
// so but cannot read them, as in a shared group of mixed versions), it
// falls back to JSON after the ack timeout and still delivers everything.
func TestSampleFrames(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fake       *fakeCollector
		wantFrames bool
		wantJSON   bool
	}{
		{"collector takes frames", &fakeCollector{accept: []string{wire.AcceptSampleFrame}}, true, true},
		{"older collector", &fakeCollector{}, false, true},
		{"frames refused", &fakeCollector{accept: []string{wire.AcceptSampleFrame}, refuse: true}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openBroker(t)
			st := openStore(t, filepath.Join(t.TempDir(), "agent.db"))
			defer st.Close()
			imgs, _ := seed(t, st, 24, 3000, rand.New(rand.NewSource(7)))
			openFake(t, b.URL(), tc.fake)
			u := openUplink(t, b.URL(), st, func(o *uplink.Options) {
				o.Window, o.AckTimeout, o.PollEvery, o.DrainRate = 4, 500*time.Millisecond, 10*time.Millisecond, 400
			})
			defer u.Close()
			waitFor(t, "outbox drained", func() bool { return outboxLen(t, st) == 0 })
			ids, frames, json, dropped := tc.fake.stats()
			t.Logf("%d ids: %d frames, %d JSON, %d frames dropped; uplink %+v", ids, frames, json, dropped, u.Stats())
			if ids != len(imgs) {
				t.Fatalf("collector saw %d samples, want %d", ids, len(imgs))
			}
			if (frames > 0) != tc.wantFrames || (json > 0) != tc.wantJSON {
				t.Fatalf("frames %d, JSON %d: want frames %v, JSON %v", frames, json, tc.wantFrames, tc.wantJSON)
			}
			if tc.fake.refuse && (dropped == 0 || u.Stats().Resent == 0) {
				t.Fatalf("no frame was refused and resent as JSON: %d dropped, %+v", dropped, u.Stats())
			}
		})
	}
}
