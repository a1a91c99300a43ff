package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linesight/linesight/agent/builtin"
	"github.com/linesight/linesight/agent/output"
	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/camera"
	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/inference/onnx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// rig is a real line: ONNX Runtime with the built-in model, a bbolt store
// in a temporary directory and a JSON-lines output.
type rig struct {
	rt    *onnx.Runtime
	eng   *inference.Engine
	st    *store.Store
	disp  *output.Dispatcher
	jsonl string
	reg   *prometheus.Registry
	dir   string
}

func newRig(t testing.TB) *rig {
	t.Helper()
	rt, err := onnx.OpenRuntime(onnx.ProcessSearch(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	pkg, err := builtin.Package(builtin.FP32)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := inference.Open(rt, pkg, inference.Config{Options: onnx.Options{Provider: "cpu", Sessions: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "linesight.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	j, err := output.OpenJSONL(filepath.Join(dir, "decisions.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	disp := output.NewDispatcher([]output.Output{j}, 0, nil, output.Hooks{})
	t.Cleanup(func() { disp.Close(context.Background()) })
	return &rig{rt: rt, eng: eng, st: st, disp: disp, jsonl: filepath.Join(dir, "decisions.jsonl"), reg: prometheus.NewRegistry(), dir: dir}
}

// syntheticCamera opens a free-running synthetic camera delivering frames as
// fast as the pipeline takes them.
func syntheticCamera(t testing.TB, id string, seed int64, expMin, expMax float64) *camera.Camera {
	t.Helper()
	spec := camera.DefaultSpec(id)
	spec.Source.Pace = "fast"
	spec.Source.Synthetic = camera.SyntheticSpec{Seed: seed, Size: 256, DefectRate: 0.2, ExposureMin: expMin, ExposureMax: expMax}
	spec.Trigger = camera.TriggerSpec{Mode: camera.TriggerFree}
	c, err := camera.Open(spec, camera.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (r *rig) open(t testing.TB, o Options) *Pipeline {
	t.Helper()
	o.Device, o.Site = "dev1", "site1"
	o.Engine, o.Store, o.Registry, o.Seed = r.eng, r.st, r.reg, 7
	if o.Outputs == nil {
		o.Outputs = r.disp
	}
	if o.Policy.FailSafe == "" {
		o.Policy.FailSafe = policy.Reject
	}
	p, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitDecisions waits until n decisions were committed (all cameras).
func waitDecisions(t testing.TB, events <-chan Event, n int) []*DecisionEvent {
	t.Helper()
	var got []*DecisionEvent
	timeout := time.After(2 * time.Minute)
	for len(got) < n {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("events closed after %d decisions", len(got))
			}
			if e.Kind == EventDecision {
				got = append(got, e.Decision)
			}
		case <-timeout:
			t.Fatalf("only %d of %d decisions in 2 minutes", len(got), n)
		}
	}
	return got
}

func TestPipelinePartialCommitsEveryFrame(t *testing.T) {
	r := newRig(t)
	p := r.open(t, Options{Cameras: []CameraOptions{{Source: syntheticCamera(t, "cam1", 11, 0.8, 1.2), Level: policy.Partial, Workers: 2}},
		Policy: policy.Config{AuditSample: 0.05}, KeepImages: "deferred"})
	events, cancel := p.Subscribe(4096)
	defer cancel()
	waitDecisions(t, events, 300)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Every frame the pipeline took from the camera was committed.
	frames := int(testutil.ToFloat64(p.m.frames.WithLabelValues("cam1")))
	st, err := r.st.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if int(st.Inspections) != frames || frames < 300 {
		t.Fatalf("frames taken %d, inspections committed %d: want equal and >= 300", frames, st.Inspections)
	}
	cs := p.Cameras()[0]
	if cs.Parts != uint64(frames) || cs.InFlight != 0 {
		t.Fatalf("status: parts %d in flight %d, want %d and 0", cs.Parts, cs.InFlight, frames)
	}
	// The built-in model decides most synthetic parts in range by itself.
	auto := float64(cs.Verdicts[policy.Pass]+cs.Verdicts[policy.Reject]) / float64(cs.Parts)
	if auto < 0.9 {
		t.Errorf("automation %.3f on the in-distribution synthetic line, want >= 0.9 (verdicts %v, reasons %v)", auto, cs.Verdicts, cs.Reasons)
	}
	if cs.Reasons[policy.ReasonConfidentPass] == 0 || cs.Reasons[policy.ReasonConfidentReject] == 0 {
		t.Errorf("want both confident passes and rejects, got %v", cs.Reasons)
	}

	// Queued parts (deferred and audited) have their image and heatmap.
	q, err := r.st.Queue(store.QueueFilter{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) == 0 {
		t.Fatal("no part in the review queue (audit sample 5%)")
	}
	for _, it := range q {
		in, err := r.st.Get(it.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !in.Review {
			t.Errorf("%s queued but Review false", in.ID)
		}
		if in.Image == "" || in.Width != 256 || in.Height != 256 {
			t.Errorf("%s: queued without its image (image %q, %dx%d)", in.ID, in.Image, in.Width, in.Height)
		}
		if in.Heatmap == nil || len(in.Heatmap.V) != in.Heatmap.W*in.Heatmap.H || in.Heatmap.W == 0 {
			t.Errorf("%s: no heatmap", in.ID)
		}
		if len(in.Scores) != 6 || in.Model.Name == "" || in.Timings["inference"] <= 0 {
			t.Errorf("%s: incomplete record: scores %v model %v timings %v", in.ID, in.Scores, in.Model, in.Timings)
		}
		if in.Audit && in.Verdict == policy.Defer {
			t.Errorf("%s: an audit sample is an automatic decision, got defer", in.ID)
		}
	}

	// The JSON-lines sink has every decision once it is flushed.
	if err := r.disp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := readJSONL(t, r.jsonl)
	if len(lines) != frames {
		t.Fatalf("jsonl has %d lines, want %d", len(lines), frames)
	}
	for _, m := range lines[:5] {
		if m.ID == "" || m.Camera != "cam1" || m.Device != "dev1" || m.Verdict == "" || m.Reason == "" || m.Level != "partial" || m.V != output.Version {
			t.Errorf("incomplete message %+v", m)
		}
	}
	// Metrics: verdict counters add up to the frames.
	var sum float64
	for _, v := range []policy.Verdict{policy.Pass, policy.Reject, policy.Defer} {
		for r := range cs.Reasons {
			sum += testutil.ToFloat64(p.m.verdicts.WithLabelValues("cam1", string(v), string(r)))
		}
	}
	if int(sum) != frames {
		t.Errorf("verdict metrics sum %v, want %d", sum, frames)
	}
}

func readJSONL(t testing.TB, path string) []output.Message {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []output.Message
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m output.Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("jsonl line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// actuationCounter is an actuating output that counts what it gets: it
// stands in for the PLC, which cannot run here.
type actuationCounterPLC struct {
	n chan *output.Message
}

func (a *actuationCounterPLC) Name() string    { return "plc" }
func (a *actuationCounterPLC) Actuating() bool { return true }
func (a *actuationCounterPLC) Send(_ context.Context, m *output.Message) error {
	a.n <- m
	return nil
}
func (a *actuationCounterPLC) Close() error { return nil }

func TestLevelsAndRunTimeChange(t *testing.T) {
	r := newRig(t)
	plc := &actuationCounterPLC{n: make(chan *output.Message, 100000)}
	disp := output.NewDispatcher([]output.Output{plc}, 100000, nil, output.Hooks{})
	p := r.open(t, Options{Cameras: []CameraOptions{{Source: syntheticCamera(t, "cam1", 3, 0.8, 1.2), Level: policy.Shadow}}, Outputs: disp})
	events, cancel := p.Subscribe(4096)
	defer cancel()
	shadow := waitDecisions(t, events, 50)
	for _, d := range shadow {
		if d.Verdict != policy.Defer || d.Reason != policy.ReasonLevelShadow || !d.Review {
			t.Fatalf("shadow decision %+v: want deferred to review, reason level-shadow", d)
		}
	}
	if len(plc.n) != 0 {
		t.Fatalf("shadow level actuated %d verdicts; it must actuate nothing", len(plc.n))
	}
	if err := p.SetLevel(context.Background(), "cam1", policy.Full, "sam"); err != nil {
		t.Fatal(err)
	}
	if err := p.SetLevel(context.Background(), "nope", policy.Full, "sam"); err == nil || !strings.Contains(err.Error(), "cam1") {
		t.Errorf("unknown camera: %v, want an error listing the cameras", err)
	}
	if err := p.SetLevel(context.Background(), "cam1", policy.Full, ""); err == nil {
		t.Error("a level change without who made it was accepted")
	}
	// After the change every decision is automatic (full never defers on
	// the model alone; a guardrail may still).
	var full int
	deadline := time.After(2 * time.Minute)
	for full < 50 {
		select {
		case e := <-events:
			if e.Kind != EventDecision || e.Decision.Level != policy.Full {
				continue
			}
			full++
			if e.Decision.Verdict == policy.Defer && !strings.HasPrefix(string(e.Decision.Reason), "ood-") && e.Decision.Reason != policy.ReasonAlwaysReview {
				t.Errorf("full level deferred for %s", e.Decision.Reason)
			}
		case <-deadline:
			t.Fatal("no full-level decisions")
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	disp.Close(context.Background())
	if len(plc.n) < 50 {
		t.Errorf("full level actuated %d verdicts, want >= 50", len(plc.n))
	}
	// The change is in the outbox with who made it.
	pend, err := r.st.Pending(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range pend {
		if e.Kind == store.KindEvent && strings.Contains(string(e.Payload), `"by":"sam"`) && strings.Contains(string(e.Payload), `"to":"full"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("level change not in the outbox: %d entries", len(pend))
	}
}

func TestFailSafeOnTimeoutAndLateParts(t *testing.T) {
	r := newRig(t)
	// Triggered parts with a deadline already gone when they arrive.
	spec := camera.DefaultSpec("gate")
	spec.Source.Pace = "fast"
	spec.Trigger = camera.TriggerSpec{Mode: camera.TriggerExternal, Deadline: time.Nanosecond}
	spec.Queue = camera.QueueSpec{Size: 4, Policy: camera.FailSafe}
	cam, err := camera.Open(spec, camera.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// And a free-running camera whose inference cannot finish in time.
	p := r.open(t, Options{Cameras: []CameraOptions{
		{Source: cam, Level: policy.Full},
		{Source: syntheticCamera(t, "slow", 5, 0.8, 1.2), Level: policy.Partial},
	}, Timeout: time.Nanosecond, Policy: policy.Config{FailSafe: policy.Reject}})
	events, cancel := p.Subscribe(4096)
	defer cancel()
	for i := range 10 {
		if err := cam.Trigger(camera.Part{ID: "part-" + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	var gate, slow int
	deadline := time.After(2 * time.Minute)
	for gate < 10 || slow < 20 {
		select {
		case e := <-events:
			if e.Kind != EventDecision {
				continue
			}
			d := e.Decision
			if d.Verdict == policy.Pass {
				t.Fatalf("%s: a failed part passed: %+v", e.Camera, d)
			}
			switch e.Camera {
			case "gate":
				gate++
				if d.Reason != policy.ReasonDeadlineMissed || d.Verdict != policy.Reject || d.PartID == "" {
					t.Errorf("late part: %+v, want reject for deadline-missed with its part ID", d)
				}
			case "slow":
				slow++
				if d.Reason != policy.ReasonTimeout || d.Verdict != policy.Reject {
					t.Errorf("timed-out part: %+v, want the fail-safe reject for inference-timeout", d)
				}
			}
		case <-deadline:
			t.Fatalf("gate %d slow %d decisions", gate, slow)
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(p.m.failures.WithLabelValues("gate", string(policy.DeadlineMissed))); n != 10 {
		t.Errorf("deadline-missed failures %v, want 10", n)
	}
}

func TestDriftedStreamRaisesAlarm(t *testing.T) {
	r := newRig(t)
	// Exposure pushed far above what the model trained on (0.8..1.2).
	p := r.open(t, Options{Cameras: []CameraOptions{{Source: syntheticCamera(t, "cam1", 9, 1.7, 2.0), Level: policy.Partial}},
		DriftWindow: 120, DriftEvery: 20})
	p.opts.Drift.MinSamples = 100
	p.cams[0].resetDrift(r.eng.Manifest())
	events, cancel := p.Subscribe(4096)
	defer cancel()
	deadline := time.After(2 * time.Minute)
	var alarm *Alarm
	ood := 0
	for alarm == nil {
		select {
		case e := <-events:
			if e.Kind == EventAlarm && e.Alarm.Kind == "drift" && e.Alarm.Raised {
				alarm = e.Alarm
			}
			if e.Kind == EventDecision && strings.HasPrefix(string(e.Decision.Reason), "ood-") {
				ood++
			}
		case <-deadline:
			t.Fatalf("no drift alarm on an over-exposed stream; status %+v", p.Cameras()[0].Drift)
		}
	}
	if alarm.PSI["brightness"] < 0.25 {
		t.Errorf("drift alarm %+v: want brightness PSI over 0.25", alarm)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if testutil.ToFloat64(p.m.driftAlrm.WithLabelValues("cam1")) != 1 {
		t.Error("drift alarm metric not set")
	}
	pend, err := r.st.Pending(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range pend {
		found = found || (e.Kind == store.KindEvent && strings.Contains(string(e.Payload), `"alarm":"drift"`))
	}
	if !found {
		t.Error("drift alarm not in the outbox for the cloud")
	}
	t.Logf("drift alarm: %s; %d parts deferred as out of distribution", alarm.Detail, ood)
}

func TestSwapModelWithoutLosingFrames(t *testing.T) {
	r := newRig(t)
	p := r.open(t, Options{Cameras: []CameraOptions{{Source: syntheticCamera(t, "cam1", 13, 0.8, 1.2), Level: policy.Partial, Workers: 2}}})
	events, cancel := p.Subscribe(8192)
	defer cancel()
	waitDecisions(t, events, 50)
	int8, err := builtin.Package(builtin.Int8)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Swap(int8); err != nil {
		t.Fatal(err)
	}
	waitDecisions(t, events, 50)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, _ := r.st.Stats()
	if frames := testutil.ToFloat64(p.m.frames.WithLabelValues("cam1")); uint64(frames) != st.Inspections {
		t.Fatalf("frames %v, committed %d", frames, st.Inspections)
	}
	if got := r.eng.Manifest().Model.Precision; got != "int8" {
		t.Errorf("after swap the engine runs %q, want int8", got)
	}
}

func TestFinishesAFolderAndCloses(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	writeSynthFolder(t, dir, 40)
	spec := camera.DefaultSpec("folder")
	spec.Source = camera.SourceSpec{Kind: camera.KindFolder, Path: dir, Pace: "fast"}
	spec.Trigger = camera.TriggerSpec{Mode: camera.TriggerFree}
	spec.Queue = camera.QueueSpec{Size: 4, Policy: camera.FailSafe}
	cam, err := camera.Open(spec, camera.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := r.open(t, Options{Cameras: []CameraOptions{{Source: cam, Level: policy.Partial}}})
	select {
	case <-p.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("folder not finished")
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, _ := r.st.Stats()
	if st.Inspections != 40 {
		t.Fatalf("%d inspections of a 40-image folder", st.Inspections)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	r := newRig(t)
	cam := syntheticCamera(t, "cam1", 1, 0.8, 1.2)
	defer cam.Close()
	for name, o := range map[string]Options{
		"no cameras":  {Engine: r.eng, Store: r.st},
		"no engine":   {Store: r.st, Cameras: []CameraOptions{{Source: cam}}},
		"keep images": {Engine: r.eng, Store: r.st, Cameras: []CameraOptions{{Source: cam}}, KeepImages: "some"},
		"level":       {Engine: r.eng, Store: r.st, Cameras: []CameraOptions{{Source: cam, Level: 9}}},
		"twice":       {Engine: r.eng, Store: r.st, Cameras: []CameraOptions{{Source: cam}, {Source: cam}}},
		"fail-safe":   {Engine: r.eng, Store: r.st, Cameras: []CameraOptions{{Source: cam}}, Policy: policy.Config{FailSafe: policy.Pass}},
	} {
		if _, err := Open(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// writeSynthFolder writes n synthetic tiles as CLASS/NAME.jpg.
func writeSynthFolder(t testing.TB, dir string, n int) {
	t.Helper()
	gen, err := camera.NewGenerator(camera.SyntheticSpec{Seed: 4, Size: 128, DefectRate: 0.5, ExposureMin: 0.9, ExposureMax: 1.1})
	if err != nil {
		t.Fatal(err)
	}
	tile := gen.NewTile()
	for i := range n {
		gen.Generate(uint64(i), tile)
		img := &image.Gray{Pix: tile.Pix, Stride: tile.W, Rect: image.Rect(0, 0, tile.W, tile.H)}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			t.Fatal(err)
		}
		sub := filepath.Join(dir, tile.Class)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("t%03d.jpg", i)), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
