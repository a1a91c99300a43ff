package pipeline

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/linesight/linesight/agent/builtin"
	"github.com/linesight/linesight/agent/lifecycle"
	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/sync/rollout"
	"github.com/linesight/linesight/sync/wire"
)

// localFleet serves a release's chunks to the lifecycle in process: the
// MQTT transport between them is tested in sync/rollout.
type localFleet struct {
	mu     sync.Mutex
	src    *rollout.Source
	lc     *lifecycle.Lifecycle
	states chan wire.ModelState
}

func (f *localFleet) RequestChunks(offer string, ks []int) error {
	f.mu.Lock()
	src, lc := f.src, f.lc
	f.mu.Unlock()
	go func() {
		for _, k := range ks {
			b, err := src.Chunk(k)
			if err != nil {
				return
			}
			lc.HandleChunk(wire.NewModelChunk(offer, k, b))
		}
	}()
	return nil
}

func (f *localFleet) ReportState(s wire.ModelState) error {
	select {
	case f.states <- s:
	default:
	}
	return nil
}

// TestShadowModelIsPromotedOnTheLine: a signed int8 candidate is offered in
// shadow while the line runs; the pipeline runs it beside the active model,
// the lifecycle promotes it when the criteria hold, and the line goes on
// with the new model without losing a frame.
func TestShadowModelIsPromotedOnTheLine(t *testing.T) {
	r := newRig(t)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bi, err := builtin.Package(builtin.FP32)
	if err != nil {
		t.Fatal(err)
	}
	fleet := &localFleet{states: make(chan wire.ModelState, 1000)}
	var pl *Pipeline
	var plMu sync.Mutex
	lc, err := lifecycle.Open(lifecycle.Options{
		Dir: t.TempDir(), TrustedKeys: rollout.NewKeyring(pub), Builtin: bi,
		Engines: lifecycle.EnginesFunc(func(p *inference.Package) (*inference.Engine, error) {
			return inference.Open(r.rt, p, inference.Config{})
		}),
		Activator: lifecycle.ActivatorFunc(func(p *inference.Package) error {
			plMu.Lock()
			defer plMu.Unlock()
			return pl.Swap(p)
		}),
		Requester: fleet, Reporter: fleet, Device: "dev1",
		Cameras: []lifecycle.CameraInput{{ID: "cam1", Width: 256, Height: 256, Channels: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	fleet.lc = lc
	plMu.Lock()
	pl = r.open(t, Options{Cameras: []CameraOptions{{Source: syntheticCamera(t, "cam1", 17, 0.8, 1.2), Level: policy.Partial}}, Models: lc})
	plMu.Unlock()

	// The candidate: the built-in int8 network as version 1.1.0.
	dir := t.TempDir()
	for _, name := range []string{"manifest.json", "model.onnx"} {
		b, err := fs.ReadFile(builtin.FSInt8(), name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "manifest.json" {
			m, err := inference.ParseManifest(b)
			if err != nil {
				t.Fatal(err)
			}
			m.Version = "1.1.0"
			if b, err = m.Marshal(); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rel, err := rollout.BuildRelease(dir, rollout.ReleaseOptions{Target: "dev1", Stage: rollout.StageShadow,
		Criteria: rollout.Criteria{MinFrames: 60, MinAgreement: 0.8, MaxLatencyRatio: 100, MaxErrorRate: 0.05, Auto: true}})
	if err != nil {
		t.Fatal(err)
	}
	offer, err := rollout.Sign(rel, priv)
	if err != nil {
		t.Fatal(err)
	}
	fleet.mu.Lock()
	fleet.src = rollout.NewSource(dir, rel)
	fleet.mu.Unlock()
	lc.HandleOffer(*offer)

	var shadow *wire.ModelState
	seen := map[string]bool{}
	deadline := time.After(3 * time.Minute)
	for r.eng.Manifest().Version != "1.1.0" {
		select {
		case s := <-fleet.states:
			if s.State == wire.ModelRejected {
				t.Fatalf("candidate rejected: %s", s.Error)
			}
			seen[s.State] = true
			if s.Shadow != nil && s.Shadow.Frames > 0 {
				shadow = &s
			}
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("candidate not promoted; state %+v", lc.State())
		}
	}
	if !seen[wire.ModelShadow] {
		t.Errorf("promoted without a shadow stage; states seen %v", seen)
	}
	events, cancel := pl.Subscribe(1024)
	defer cancel()
	waitDecisions(t, events, 20)
	if err := pl.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, _ := r.st.Stats()
	if frames := pl.Cameras()[0].Parts; frames != st.Inspections {
		t.Errorf("parts %d, committed %d", frames, st.Inspections)
	}
	recent, err := r.st.Recent("cam1", 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) == 0 || recent[0].Model.Version != "1.1.0" {
		t.Errorf("newest inspections not by the promoted model: %+v", recent)
	}
	if shadow != nil {
		t.Logf("shadow stats before promotion: %+v", *shadow.Shadow)
	}
}
