package pipeline

// The flow, per camera (every camera has its own goroutines; the engine,
// the store and the outputs are shared):
//
//	 camera (capture goroutine)
//	    │  bounded camera.Queue: drop-oldest (free-run) or fail-safe (triggered: never dropped, flagged late)
//	    ▼
//	 workers ×N ── engine.Run (ORT session pool, batching; the preprocessing measures ─▶ policy.Decide
//	    │            brightness/contrast/sharpness on the model input for the OOD guardrail and drift)
//	    │            (late part, error, timeout or missed deadline: the fail-safe verdict, never a pass)
//	    │  bounded record channel (blocks when full: a decision is never dropped)
//	    ▼
//	 recorders ×M ── JPEG (kept images) ─▶ store.Put (group commit, fsync) ─▶ outputs.Send (non-blocking)
//	    │                                                                 ├─▶ MQTT <camera>/decisions (PLC, gate)
//	    │                                                                 ├─▶ webhook
//	    ▼                                                                 └─▶ JSON lines
//	 statistics, drift monitor, defer-rate alarm, Prometheus metrics, live events (review UI)
//
// A verdict leaves for the outputs only after its inspection committed.
// Close stops in this order: cameras (no new frames; the queued ones still
// come out), workers (each finishes the frames it has), recorders (every
// decision is committed), so nothing captured is lost on SIGTERM. The
// caller then closes the outputs and the store.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linesight/linesight/agent/lifecycle"
	"github.com/linesight/linesight/agent/monitor"
	"github.com/linesight/linesight/agent/output"
	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/camera"
	"github.com/linesight/linesight/inference"
	"github.com/prometheus/client_golang/prometheus"
)

// Engine is what the pipeline needs of the inference engine.
type Engine interface {
	Run(ctx context.Context, in inference.Frame) (inference.Result, error)
	Manifest() *inference.Manifest
	Provider() string
	Swap(pkg *inference.Package) error
}

// Recorder is what the pipeline needs of the store.
type Recorder interface {
	NewID(t time.Time) string
	Put(ctx context.Context, in *store.Inspection, jpeg []byte) error
	Append(ctx context.Context, entries ...store.OutboxEntry) error
}

// Source is a camera: frames come out of Next until it is closed or ends.
type Source interface {
	ID() string
	Next(ctx context.Context) (*camera.Frame, error)
	Close() error
}

// Models is the model lifecycle (agent/lifecycle): a candidate model in
// shadow beside the active one, and the per-frame outcomes that decide its
// promotion or a rollback.
type Models interface {
	// Shadow is the candidate engine, or nil.
	Shadow() *inference.Engine
	// Observe gets the active model's outcome for every frame and, when the
	// shadow ran on it, the candidate's. It must not block.
	Observe(active lifecycle.Outcome, shadow *lifecycle.Outcome)
}

// Sender takes verdicts for the outputs without blocking (output.Dispatcher).
type Sender interface {
	Send(m *output.Message)
}

// CameraOptions is one camera in the pipeline.
type CameraOptions struct {
	Source Source
	// Level is the camera's automation level at start.
	Level policy.Level
	// Workers run inference and the policy (default 2: while one frame
	// runs on the engine the other is preprocessed into the session's
	// second input buffer, so the session never waits for a frame; more
	// only helps with several sessions). Parts may then be decided out of
	// order; every record and output carries its part ID.
	Workers int
}

// Options configure a Pipeline.
type Options struct {
	Device, Site string
	Cameras      []CameraOptions
	Engine       Engine
	Store        Recorder
	Outputs      Sender // nil: no outputs
	// Models, when set, gets every frame's outcome and runs the shadow
	// model on frames the line can spare (never delaying a verdict).
	Models Models
	// Policy is the base policy of every camera (its Level is ignored:
	// each camera has its own). Zero thresholds take the manifest's; a
	// zero OOD takes bounds derived from the manifest's reference.
	Policy policy.Config
	// MaxDeferRate raises the defer-rate alarm above this share (0: off).
	MaxDeferRate float64
	// KeepImages: "deferred" (parts that go to review), "sampled" (those
	// and one automatic part in SampleEvery), or "all".
	KeepImages  string
	SampleEvery int // default 20
	JPEGQuality int // default 90
	// Timeout bounds one inference (default 2s); a part's deadline, when
	// earlier, bounds it too.
	Timeout time.Duration
	// Recorders commit decisions per camera (default 64). Each waits for
	// its Put's fsync, and concurrent Puts share one fsync, so this bounds
	// how many decisions one commit can carry: with a 10 ms fsync, 64
	// recorders sustain 6,400 parts/s.
	Recorders int
	// DriftWindow is the drift monitor's window in parts (default 500).
	DriftWindow int
	Drift       monitor.Thresholds
	// DriftEvery evaluates the drift monitor every this many parts (default 25).
	DriftEvery int
	// Registry gets the Prometheus metrics (nil: not registered).
	Registry prometheus.Registerer
	Logger   *slog.Logger
	// Seed makes audit sampling reproducible (0: random).
	Seed uint64
}

// Pipeline runs the cameras' inspections. Open starts it; Close stops it.
type Pipeline struct {
	opts Options
	log  *slog.Logger
	m    *metrics
	cams []*cam

	mu     sync.RWMutex // guards base and per-model state below
	base   policy.Config
	labels []string

	work    context.Context // cancelled only when Close runs out of time
	cancel  context.CancelFunc
	workers sync.WaitGroup
	recs    sync.WaitGroup
	done    chan struct{}
	closing atomic.Bool

	shadowQ  chan shadowJob
	shadowWG sync.WaitGroup

	subMu  sync.Mutex
	subs   map[int]chan Event
	nextID int
}

// Open validates the options and starts every camera's workers.
func Open(opts Options) (*Pipeline, error) {
	if opts.Engine == nil || opts.Store == nil {
		return nil, errors.New("pipeline: an engine and a store are required")
	}
	if len(opts.Cameras) == 0 {
		return nil, errors.New("pipeline: no cameras")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SampleEvery <= 0 {
		opts.SampleEvery = 20
	}
	if opts.JPEGQuality <= 0 {
		opts.JPEGQuality = 90
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.Recorders <= 0 {
		opts.Recorders = 64
	}
	if opts.DriftWindow <= 0 {
		opts.DriftWindow = 500
	}
	if opts.DriftEvery <= 0 {
		opts.DriftEvery = 25
	}
	switch opts.KeepImages {
	case "":
		opts.KeepImages = "deferred"
	case "deferred", "sampled", "all":
	default:
		return nil, fmt.Errorf("pipeline: keep_images %q: want deferred, sampled or all", opts.KeepImages)
	}
	if opts.Policy.FailSafe == "" {
		opts.Policy.FailSafe = policy.Reject
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("pipeline metrics: %w", err)
	}
	p := &Pipeline{opts: opts, log: opts.Logger.With("component", "pipeline"), m: m,
		done: make(chan struct{}), subs: map[int]chan Event{}}
	p.work, p.cancel = context.WithCancel(context.Background())
	if err := p.loadModel(); err != nil {
		return nil, err
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	seen := map[string]bool{}
	for i, co := range opts.Cameras {
		if co.Source == nil {
			return nil, fmt.Errorf("pipeline: camera %d has no source", i)
		}
		id := co.Source.ID()
		if seen[id] {
			return nil, fmt.Errorf("pipeline: camera %s listed twice", id)
		}
		seen[id] = true
		if co.Workers <= 0 {
			co.Workers = 2
		}
		if co.Level < policy.Human || co.Level > policy.Full {
			return nil, fmt.Errorf("pipeline: camera %s: automation level %d: want one of %v", id, co.Level, policy.LevelNames())
		}
		c := newCam(p, co, rand.New(rand.NewPCG(seed, uint64(i))))
		p.cams = append(p.cams, c)
	}
	if opts.Models != nil {
		p.shadowQ = make(chan shadowJob, 4)
		p.shadowWG.Add(1)
		go p.runShadow()
	}
	for _, c := range p.cams {
		c.start()
	}
	go func() {
		p.workers.Wait()
		p.recs.Wait()
		if p.shadowQ != nil {
			close(p.shadowQ)
			p.shadowWG.Wait()
		}
		close(p.done)
	}()
	return p, nil
}

// loadModel derives the base policy and the drift references from the
// engine's current manifest.
func (p *Pipeline) loadModel() error {
	man := p.opts.Engine.Manifest()
	base := p.opts.Policy
	if base.PassThreshold == 0 {
		base.PassThreshold = man.Thresholds.Pass
	}
	if base.RejectThreshold == 0 {
		base.RejectThreshold = man.Thresholds.Reject
	}
	if base.ClassReject == nil && len(man.Thresholds.PerClass) > 0 {
		base.ClassReject = man.Thresholds.PerClass
	}
	if base.OOD == (policy.OOD{}) && man.Reference != nil {
		base.OOD = OODFromReference(*man.Reference)
	}
	check := base
	check.Level = policy.Partial
	if err := check.Validate(); err != nil {
		return fmt.Errorf("pipeline: policy for model %s %s: %w", man.Name, man.Version, err)
	}
	p.mu.Lock()
	p.base, p.labels = base, slices.Clone(man.Labels)
	p.mu.Unlock()
	p.m.model.Reset()
	p.m.model.WithLabelValues(man.Name, man.Version, p.opts.Engine.Provider()).Set(1)
	return nil
}

// OODFromReference derives the out-of-distribution guardrail from a
// model's training reference: each statistic may range over what training
// saw, widened by a quarter of that range on either side, and a frame with
// almost no contrast (blank or covered lens) is never in distribution.
func OODFromReference(r inference.Reference) policy.OOD {
	widen := func(d inference.Distribution) policy.Bounds {
		lo, hi := d.Min, d.Max
		if hi <= lo {
			lo, hi = d.Mean-4*d.Std, d.Mean+4*d.Std
		}
		m := (hi - lo) / 4
		b := policy.Bounds{Min: max(lo-m, 0), Max: hi + m}
		if b.Min == 0 && b.Max == 0 {
			return policy.Bounds{}
		}
		return b
	}
	o := policy.OOD{Brightness: widen(r.Brightness), Contrast: widen(r.Contrast), Sharpness: widen(r.Sharpness)}
	o.BlankContrast = 0.01
	if o.Contrast.Min > 0 && o.Contrast.Min < o.BlankContrast {
		o.Contrast.Min = 0 // the blank check covers it
	}
	return o
}

// Swap loads a new model package into the engine without stopping the line
// and re-derives the thresholds, guardrails and drift references from its
// manifest. Frames in flight finish on the model they started with.
func (p *Pipeline) Swap(pkg *inference.Package) error {
	if err := p.opts.Engine.Swap(pkg); err != nil {
		return fmt.Errorf("swap model: %w", err)
	}
	if err := p.loadModel(); err != nil {
		return err
	}
	man := p.opts.Engine.Manifest()
	for _, c := range p.cams {
		c.resetDrift(man)
	}
	p.log.Info("model swapped", "model", man.Name, "version", man.Version)
	p.emit(Event{Kind: EventModel, Time: time.Now(), Text: fmt.Sprintf("model %s %s now serving", man.Name, man.Version)})
	return nil
}

// SetLevel changes a camera's automation level at run time. The change is
// logged, recorded in the store's outbox (for the cloud's audit trail) with
// who made it, and takes effect from the next part decided.
func (p *Pipeline) SetLevel(ctx context.Context, cameraID string, level policy.Level, by string) error {
	c := p.cam(cameraID)
	if c == nil {
		return fmt.Errorf("%w: %q (cameras: %v)", ErrUnknownCamera, cameraID, p.CameraIDs())
	}
	if level < policy.Human || level > policy.Full {
		return fmt.Errorf("automation level %d: want one of %v", level, policy.LevelNames())
	}
	if by == "" {
		return errors.New("automation level change: who made it is required")
	}
	from := c.setLevel(level)
	now := time.Now().UTC()
	payload := fmt.Appendf(nil, `{"type":"automation-level","camera":%q,"from":%q,"to":%q,"by":%q,"at":%q}`,
		cameraID, from.String(), level.String(), by, now.Format(time.RFC3339Nano))
	entry := store.OutboxEntry{ID: "event-level-" + cameraID + "-" + now.Format("20060102T150405.000000000"), Kind: store.KindEvent, Time: now, Payload: payload}
	if err := p.opts.Store.Append(ctx, entry); err != nil {
		// The level has changed on the line; say that its record failed.
		p.log.Error("automation level changed but its record could not be stored", "camera", cameraID, "err", err)
		return fmt.Errorf("automation level of %s changed to %s, but recording the change failed: %w", cameraID, level, err)
	}
	p.log.Info("automation level changed", "camera", cameraID, "from", from, "to", level, "by", by)
	p.emit(Event{Kind: EventLevel, Time: now, Camera: cameraID, Level: level, From: from, By: by,
		Text: fmt.Sprintf("%s: automation %s → %s by %s", cameraID, from, level, by)})
	return nil
}

// ErrUnknownCamera: no camera has that ID.
var ErrUnknownCamera = errors.New("unknown camera")

// Level is a camera's current automation level.
func (p *Pipeline) Level(cameraID string) (policy.Level, error) {
	c := p.cam(cameraID)
	if c == nil {
		return 0, fmt.Errorf("%w: %q", ErrUnknownCamera, cameraID)
	}
	return c.level(), nil
}

// CameraIDs lists the cameras in configuration order.
func (p *Pipeline) CameraIDs() []string {
	ids := make([]string, len(p.cams))
	for i, c := range p.cams {
		ids[i] = c.id
	}
	return ids
}

func (p *Pipeline) cam(id string) *cam {
	for _, c := range p.cams {
		if c.id == id {
			return c
		}
	}
	return nil
}

// Done is closed when every camera has ended (finite sources) or after Close.
func (p *Pipeline) Done() <-chan struct{} { return p.done }

// Close stops the pipeline in order (see the diagram above): cameras, then
// workers, then recorders. Every frame already captured is decided and
// committed; if ctx ends first, inference in flight is cancelled and the
// remaining parts get the fail-safe verdict, still committed.
func (p *Pipeline) Close(ctx context.Context) error {
	if !p.closing.CompareAndSwap(false, true) {
		<-p.done
		return nil
	}
	var errs []error
	for _, c := range p.cams {
		if err := c.src.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close camera %s: %w", c.id, err))
		}
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.log.Warn("shutdown: time is up; cancelling inference in flight (those parts get the fail-safe verdict)")
		p.cancel()
		<-p.done
	}
	p.cancel()
	p.subMu.Lock()
	for id, ch := range p.subs {
		close(ch)
		delete(p.subs, id)
	}
	p.subMu.Unlock()
	return errors.Join(errs...)
}

// isEnd reports a source that has no more frames.
func isEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, camera.ErrClosed)
}
