package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/sync/rollout"
	"github.com/linesight/linesight/sync/wire"
)

// Engines opens a model package into a new engine: the candidate a
// lifecycle loads for its health check and for shadow. Called from the
// lifecycle's goroutine; it blocks while ONNX Runtime loads the graph.
// The lifecycle closes the engines it opened.
type Engines interface {
	Open(pkg *inference.Package) (*inference.Engine, error)
}

// EnginesFunc adapts a function to Engines, e.g.
// func(p *inference.Package) (*inference.Engine, error) { return inference.Open(rt, p, cfg) }.
type EnginesFunc func(pkg *inference.Package) (*inference.Engine, error)

// Open calls f.
func (f EnginesFunc) Open(pkg *inference.Package) (*inference.Engine, error) { return f(pkg) }

// Activator is what the lifecycle needs from the pipeline: make pkg the
// model that decides parts on every camera (the pipeline's engine Swap).
// Called from the lifecycle's goroutine on promotion and rollback, never at
// Open; it blocks while the new sessions load. On error the pipeline must
// keep serving its current model; the lifecycle then keeps it as active.
type Activator interface {
	Activate(pkg *inference.Package) error
}

// ActivatorFunc adapts a function to Activator.
type ActivatorFunc func(pkg *inference.Package) error

// Activate calls f.
func (f ActivatorFunc) Activate(pkg *inference.Package) error { return f(pkg) }

// Frames gives recently stored frames for the health check: up to n
// JPEGs (or any format gocv decodes), newest first. Called once per
// candidate from the lifecycle's goroutine; may read the store. An empty
// result skips the frame check (the model still has to load).
type Frames interface {
	Recent(n int) ([][]byte, error)
}

// Requester asks the fleet for chunks of an offer (sync/rollout.Link
// implements it over MQTT). Called from the lifecycle's goroutine; it may
// block for the publish, and an error just means the chunks are asked
// again later.
type Requester interface {
	RequestChunks(offer string, chunks []int) error
}

// Reporter receives every state change (sync/rollout.Link publishes it on
// model/state). Called from the lifecycle's goroutine; keep it short.
type Reporter interface {
	ReportState(s wire.ModelState) error
}

// Options configure a Lifecycle.
type Options struct {
	// Dir holds the model versions: <data_dir>/models.
	Dir string
	// TrustedKeys verify offers and, at Open, the stored versions.
	TrustedKeys *rollout.Keyring
	// Builtin serves when no stored version verifies (agent/builtin.Package).
	Builtin *inference.Package
	// Engines opens candidates; Activator switches the pipeline's model.
	Engines   Engines
	Activator Activator
	// Frames feeds the health check; nil skips it (the model must still load
	// and run one blank frame).
	Frames Frames
	// Requester fetches chunks over MQTT; offers with a URL use HTTP instead.
	Requester Requester
	// Reporter gets state changes; nil discards them.
	Reporter Reporter
	// Cameras are the inputs a model must fit.
	Cameras []CameraInput
	// Device names this device for the canary share.
	Device string
	// MaxModelBytes refuses larger packages (default 512 MiB).
	MaxModelBytes int64
	// HealthFrames is how many recent frames the health check runs (default 8).
	HealthFrames int
	// Window is how many chunks are asked for at a time (default 16).
	Window int
	// RetryAfter re-asks for chunks that have not arrived (default 5s);
	// after MaxRetries rounds without progress (default 12) the transfer
	// stops with ErrStalled until the offer is delivered again.
	RetryAfter time.Duration
	MaxRetries int
	// HTTP fetches offers that name a URL (default http.DefaultClient).
	HTTP *http.Client
	// Logger is tagged with component=lifecycle; nil discards.
	Logger *slog.Logger
}

// Lifecycle manages the model versions of one device. See doc.go.
type Lifecycle struct {
	o   Options
	log *slog.Logger

	mu        sync.Mutex
	active    *version
	previous  *version
	cand      *candidate
	probation *probation
	baseline  time.Duration // EWMA of the active model's latency
	last      wire.ModelState

	offers   chan wire.ModelOffer
	chunks   chan wire.ModelChunk
	cmds     chan command
	decide   chan struct{}
	fetched  chan fetchResult
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closeMu  sync.Mutex
	isClosed bool

	// worker-only state
	xfer     *transfer
	seen     map[string]bool // offers fully handled (done or refused)
	reported map[string]int
}

type candidate struct {
	v      *version
	eng    *inference.Engine
	offer  string
	crit   rollout.Criteria
	tally  tally
	decide verdict
	why    string
}

type probation struct {
	v        *version
	crit     rollout.Criteria
	baseline time.Duration
	tally    tally
	decide   verdict
	why      string
}

type transfer struct {
	rel       *rollout.Release
	off       wire.ModelOffer
	asm       *rollout.Assembler
	asked     map[int]time.Time
	corrupt   map[int]int
	lastHave  int
	idleTicks int
	http      bool
}

type fetchResult struct {
	offer string
	err   error
}

type command struct {
	promote bool
	reply   chan error
}

// Open verifies the stored versions and picks the one to serve (see
// Active), removing what an interrupted write left; then it starts the
// goroutine that handles offers. Open never fails because a stored version
// is damaged: it falls back to the previous version or the built-in model,
// and fails only when none of them verifies (ErrNoModel).
func Open(o Options) (*Lifecycle, error) {
	if o.Dir == "" || o.Engines == nil {
		return nil, errors.New("open model lifecycle: Dir and Engines are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxModelBytes == 0 {
		o.MaxModelBytes = 512 << 20
	}
	if o.HealthFrames == 0 {
		o.HealthFrames = 8
	}
	if o.Window == 0 {
		o.Window = 16
	}
	if o.RetryAfter == 0 {
		o.RetryAfter = 5 * time.Second
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 12
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Lifecycle{o: o, log: o.Logger.With("component", "lifecycle"),
		offers: make(chan wire.ModelOffer, 8), chunks: make(chan wire.ModelChunk, 1024), cmds: make(chan command),
		decide: make(chan struct{}, 1), fetched: make(chan fetchResult, 1), ctx: ctx, cancel: cancel,
		seen: map[string]bool{}}
	if err := l.recover(); err != nil {
		cancel()
		return nil, err
	}
	l.log.Info("model version serving", "version", l.active.id)
	l.last = wire.ModelState{State: wire.ModelActive, Model: l.active.ref(), Active: l.active.ref(), Previous: l.previous.ref()}
	l.wg.Add(1)
	go l.run()
	return l, nil
}

// Active is the verified package that serves: the pipeline opens its
// engine with it after Open. Later changes arrive through Activator.
func (l *Lifecycle) Active() *inference.Package {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active.pkg
}

// Shadow is the candidate engine running in shadow, or nil. The pipeline
// calls it per frame, runs the frame through it beside the active model
// and reports both with Observe. The engine may be closed at any moment
// after a decision; its Run then returns inference.ErrClosed, which the
// pipeline treats as "no shadow".
func (l *Lifecycle) Shadow() *inference.Engine {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cand == nil {
		return nil
	}
	return l.cand.eng
}

// State is the latest reported state.
func (l *Lifecycle) State() wire.ModelState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Observe is called by the pipeline for every frame with the active
// model's outcome and, when Shadow was run, the candidate's (else nil).
// It only counts (under a mutex) and never blocks; decisions it triggers
// run on the lifecycle's goroutine.
func (l *Lifecycle) Observe(active Outcome, shadow *Outcome) {
	l.mu.Lock()
	signal := false
	if active.Err == nil && active.Latency > 0 && l.probation == nil {
		if l.baseline == 0 {
			l.baseline = active.Latency
		} else {
			l.baseline = (l.baseline*15 + active.Latency) / 16
		}
	}
	if c := l.cand; c != nil && shadow != nil && c.decide == undecided {
		t := &c.tally
		t.frames++
		if active.Err == nil {
			t.actLat += active.Latency
			t.actN++
		}
		if active.Automated {
			t.actAuto++
		}
		if shadow.Err != nil {
			if !errors.Is(shadow.Err, inference.ErrClosed) {
				t.errs++
			}
		} else {
			t.shLat += shadow.Latency
			t.shN++
			if shadow.Label == active.Label {
				t.agree++
			}
			if shadow.Automated {
				t.shAuto++
			}
		}
		c.decide, c.why = judgeShadow(t, c.crit)
		if c.decide == pass && !c.crit.Auto {
			c.decide = undecided // waits for the promote command
		}
		signal = c.decide != undecided
	}
	if p := l.probation; p != nil && p.decide == undecided {
		t := &p.tally
		t.frames++
		if active.Err != nil {
			t.errs++
		} else {
			t.actLat += active.Latency
			t.actN++
		}
		p.decide, p.why = judgeProbation(t, p.baseline, p.crit)
		signal = p.decide != undecided
	}
	l.mu.Unlock()
	if signal {
		select {
		case l.decide <- struct{}{}:
		default:
		}
	}
}

// HandleOffer queues an offer (MQTT handler: never blocks; when the queue
// is full the offer is dropped and the retained copy comes back at the
// next connection).
func (l *Lifecycle) HandleOffer(o wire.ModelOffer) {
	select {
	case l.offers <- o:
	default:
		l.log.Warn("model offer queue full; dropped")
	}
}

// HandleChunk queues a chunk (never blocks; a dropped chunk is asked again).
func (l *Lifecycle) HandleChunk(c wire.ModelChunk) {
	select {
	case l.chunks <- c:
	default:
	}
}

// Promote makes the candidate in shadow active now (a promote command),
// whatever its statistics say. Errors: ErrNoCandidate, or the activation's.
func (l *Lifecycle) Promote(ctx context.Context) error { return l.do(ctx, command{promote: true}) }

// Rollback returns to the previous version (a rollback command); with a
// candidate in shadow it discards the candidate instead. Errors:
// ErrNoPrevious, or the activation's.
func (l *Lifecycle) Rollback(ctx context.Context) error { return l.do(ctx, command{}) }

func (l *Lifecycle) do(ctx context.Context, c command) error {
	c.reply = make(chan error, 1)
	select {
	case l.cmds <- c:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.ctx.Done():
		return ErrClosed
	}
	select {
	case err := <-c.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops handling offers, closes the candidate engine and waits. The
// active model (the pipeline's engine) is not touched. A transfer in
// progress stays on disk and resumes when the offer comes again.
func (l *Lifecycle) Close() error {
	l.closeMu.Lock()
	if l.isClosed {
		l.closeMu.Unlock()
		return nil
	}
	l.isClosed = true
	l.closeMu.Unlock()
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	c := l.cand
	l.cand = nil
	l.mu.Unlock()
	if c != nil {
		c.eng.Close()
	}
	return nil
}

func (l *Lifecycle) run() {
	defer l.wg.Done()
	tick := time.NewTicker(max(l.o.RetryAfter/2, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case o := <-l.offers:
			l.offer(o)
		case c := <-l.chunks:
			l.chunk(c)
		case r := <-l.fetched:
			l.afterHTTP(r)
		case c := <-l.cmds:
			c.reply <- l.command(c)
		case <-l.decide:
			l.decideNow()
		case <-tick.C:
			l.tick()
		}
	}
}

// report records and sends a state.
func (l *Lifecycle) report(s wire.ModelState) {
	l.mu.Lock()
	s.Active, s.Previous = l.active.ref(), l.previous.ref()
	l.last = s
	l.mu.Unlock()
	if l.o.Reporter != nil {
		if err := l.o.Reporter.ReportState(s); err != nil {
			l.log.Warn("report model state", "err", err)
		}
	}
}

func (l *Lifecycle) reject(offer string, ref wire.ModelRef, err error) {
	l.log.Warn("model offer refused; the active model keeps serving", "offer", offer, "model", ref.Name, "version", ref.Version, "err", err)
	l.report(wire.ModelState{State: wire.ModelRejected, Offer: offer, Model: ref, Code: Code(err), Error: err.Error()})
}

func relRef(r *rollout.Release) wire.ModelRef { return wire.ModelRef{Name: r.Name, Version: r.Version} }

// offer verifies an offer and its policy, then starts the transfer.
func (l *Lifecycle) offer(o wire.ModelOffer) {
	rel, err := rollout.Verify(&o, l.o.TrustedKeys)
	if err != nil {
		var probe struct{ Offer, Name, Version string }
		json.Unmarshal(o.Release, &probe)
		if !wire.ValidRecordID(probe.Offer) {
			probe.Offer = ""
		}
		l.reject(probe.Offer, wire.ModelRef{Name: probe.Name, Version: probe.Version}, err)
		return
	}
	if l.seen[rel.Offer] || (l.xfer != nil && l.xfer.rel.Offer == rel.Offer) || (l.cand != nil && l.cand.offer == rel.Offer) {
		return // redelivered (retained) offer
	}
	l.mu.Lock()
	active := l.active
	l.mu.Unlock()
	if rel.ID() == active.id {
		l.seen[rel.Offer] = true
		return
	}
	if err := l.admit(rel, active); err != nil {
		l.seen[rel.Offer] = true
		l.reject(rel.Offer, relRef(rel), err)
		return
	}
	// A newer offer replaces a transfer or a candidate in progress.
	l.dropTransfer()
	l.dropCandidate("replaced by offer " + rel.Offer)
	l.report(wire.ModelState{State: wire.ModelReceived, Offer: rel.Offer, Model: relRef(rel), Total: len(rel.Chunks)})
	if v, err := l.loadVersion(rel.ID()); err == nil {
		l.log.Info("model version already on disk", "version", rel.ID())
		l.seen[rel.Offer] = true
		l.stage(rel, v)
		return
	}
	asm, err := rollout.NewAssembler(filepath.Join(l.o.Dir, incomingDir, rel.Offer), rel)
	if err != nil {
		l.reject(rel.Offer, relRef(rel), err)
		return
	}
	l.xfer = &transfer{rel: rel, off: o, asm: asm, asked: map[int]time.Time{}, corrupt: map[int]int{}, lastHave: asm.Have()}
	if asm.Done() {
		l.complete()
		return
	}
	if o.URL != "" {
		l.xfer.http = true
		go func(ctx context.Context, offer string) {
			err := rollout.FetchHTTP(ctx, l.o.HTTP, o.URL, rel, asm)
			select {
			case l.fetched <- fetchResult{offer: offer, err: err}:
			case <-ctx.Done():
			}
		}(l.ctx, rel.Offer)
		return
	}
	l.ask()
}

// admit applies the device's policy to a verified release before anything
// is downloaded.
func (l *Lifecycle) admit(rel *rollout.Release, active *version) error {
	if why, bad := l.wasRejected(rel.ID()); bad && !rel.Rollback {
		return fmt.Errorf("%s: %s: %w", rel.ID(), why, ErrRejectedBefore)
	}
	av := active.pkg.Manifest.Version
	if rollout.CompareVersions(rel.Version, av) < 0 && !rel.Rollback {
		return fmt.Errorf("version %s is older than the active %s (only a signed rollback may go back): %w", rel.Version, av, ErrOlderVersion)
	}
	if n := rel.Size(); n > l.o.MaxModelBytes {
		return fmt.Errorf("%d bytes, this device accepts up to %d: %w", n, l.o.MaxModelBytes, ErrTooLarge)
	}
	m, err := inference.ParseManifest(rel.Manifest)
	if err != nil {
		return fmt.Errorf("manifest: %v: %w", err, ErrDoesNotFit)
	}
	return Fits(m, active.pkg.Manifest, l.o.Cameras)
}

// ask requests missing chunks that are not already on their way.
func (l *Lifecycle) ask() {
	x := l.xfer
	if x == nil || x.http || l.o.Requester == nil {
		return
	}
	outstanding := len(x.asked)
	if outstanding >= l.o.Window/2 && outstanding > 0 {
		return
	}
	var want []int
	for _, k := range x.asm.Missing(0) {
		if _, ok := x.asked[k]; ok {
			continue
		}
		want = append(want, k)
		if outstanding+len(want) >= l.o.Window || len(want) == wire.MaxRequestChunk {
			break
		}
	}
	l.request(want)
}

func (l *Lifecycle) request(ks []int) {
	if len(ks) == 0 {
		return
	}
	now := time.Now()
	for _, k := range ks {
		l.xfer.asked[k] = now
	}
	if err := l.o.Requester.RequestChunks(l.xfer.rel.Offer, ks); err != nil {
		l.log.Warn("request chunks", "offer", l.xfer.rel.Offer, "err", err)
	}
}

func (l *Lifecycle) chunk(c wire.ModelChunk) {
	x := l.xfer
	if x == nil || c.Offer != x.rel.Offer {
		return
	}
	delete(x.asked, c.Index)
	if err := x.asm.Put(c.Index, c.Data); err != nil {
		x.corrupt[c.Index]++
		l.log.Warn("model chunk refused", "offer", c.Offer, "chunk", c.Index, "err", err)
		l.report(wire.ModelState{State: wire.ModelDownloading, Offer: c.Offer, Model: relRef(x.rel), Have: x.asm.Have(), Total: x.asm.Total(), Code: Code(err), Error: err.Error()})
		if x.corrupt[c.Index] >= 3 {
			l.failTransfer(fmt.Errorf("chunk %d corrupt %d times: %w", c.Index, x.corrupt[c.Index], err))
			return
		}
		l.request([]int{c.Index})
		return
	}
	if x.asm.Done() {
		l.complete()
		return
	}
	if h := x.asm.Have(); h-x.lastHave >= max(x.asm.Total()/10, l.o.Window) {
		x.lastHave = h
		l.report(wire.ModelState{State: wire.ModelDownloading, Offer: c.Offer, Model: relRef(x.rel), Have: h, Total: x.asm.Total()})
	}
	l.ask()
}

func (l *Lifecycle) afterHTTP(r fetchResult) {
	x := l.xfer
	if x == nil || x.rel.Offer != r.offer {
		return
	}
	if r.err != nil {
		if errors.Is(r.err, rollout.ErrCorruptChunk) {
			l.failTransfer(r.err)
		} else {
			l.failTransfer(fmt.Errorf("%v: %w", r.err, ErrStalled))
		}
		return
	}
	l.complete()
}

func (l *Lifecycle) tick() {
	l.reportShadow()
	x := l.xfer
	if x == nil || x.http {
		return
	}
	if h := x.asm.Have(); h > x.lastHave {
		x.lastHave, x.idleTicks = h, 0
	} else {
		x.idleTicks++
	}
	if x.idleTicks > 2*l.o.MaxRetries {
		l.failTransfer(fmt.Errorf("%d of %d chunks, none for a while: %w", x.asm.Have(), x.asm.Total(), ErrStalled))
		return
	}
	var again []int
	for k, at := range x.asked {
		if time.Since(at) >= l.o.RetryAfter {
			again = append(again, k)
		}
	}
	if len(again) > wire.MaxRequestChunk {
		again = again[:wire.MaxRequestChunk]
	}
	l.request(again)
	l.ask()
}

// failTransfer gives up a transfer; verified chunks stay for a later resume
// (except after corruption, where the offer is marked seen).
func (l *Lifecycle) failTransfer(err error) {
	x := l.xfer
	l.xfer = nil
	if !errors.Is(err, ErrStalled) {
		l.seen[x.rel.Offer] = true
	}
	l.reject(x.rel.Offer, relRef(x.rel), err)
}

func (l *Lifecycle) dropTransfer() {
	l.xfer = nil
}

// complete installs a finished transfer and stages it.
func (l *Lifecycle) complete() {
	x := l.xfer
	l.xfer = nil
	l.seen[x.rel.Offer] = true
	l.report(wire.ModelState{State: wire.ModelVerifying, Offer: x.rel.Offer, Model: relRef(x.rel), Have: x.asm.Total(), Total: x.asm.Total()})
	if err := l.install(x.rel, x.off, x.asm); err != nil {
		x.asm.Remove()
		l.reject(x.rel.Offer, relRef(x.rel), err)
		return
	}
	x.asm.Remove()
	v, err := l.loadVersion(x.rel.ID())
	if err != nil {
		l.reject(x.rel.Offer, relRef(x.rel), err)
		return
	}
	l.stage(x.rel, v)
}

// stage checks fit and health, then puts v in shadow or promotes it.
func (l *Lifecycle) stage(rel *rollout.Release, v *version) {
	l.mu.Lock()
	active := l.active
	l.mu.Unlock()
	if err := Fits(v.pkg.Manifest, active.pkg.Manifest, l.o.Cameras); err != nil {
		l.reject(rel.Offer, relRef(rel), err)
		return
	}
	eng, err := l.health(v.pkg)
	if err != nil {
		l.markRejected(v.id, err)
		l.reject(rel.Offer, relRef(rel), err)
		return
	}
	if rel.Stage == rollout.StageAll || (rel.Stage == rollout.StageCanary && l.inCanary(rel)) {
		eng.Close()
		if err := l.promote(v, rel.Criteria); err != nil {
			l.reject(rel.Offer, relRef(rel), err)
		}
		return
	}
	l.mu.Lock()
	l.cand = &candidate{v: v, eng: eng, offer: rel.Offer, crit: rel.Criteria}
	l.mu.Unlock()
	l.log.Info("model in shadow", "version", v.id, "offer", rel.Offer)
	l.report(wire.ModelState{State: wire.ModelShadow, Offer: rel.Offer, Model: v.ref(), Shadow: &wire.ShadowStats{}})
}

func (l *Lifecycle) inCanary(rel *rollout.Release) bool {
	h := fnv.New32a()
	h.Write([]byte(l.o.Device + "/" + rel.Offer))
	return float64(h.Sum32())/float64(1<<32) < rel.Canary
}

// health opens pkg and runs it on recent frames (or one blank frame).
func (l *Lifecycle) health(pkg *inference.Package) (*inference.Engine, error) {
	eng, err := l.o.Engines.Open(pkg)
	if err != nil {
		return nil, fmt.Errorf("load %s %s: %v: %w", pkg.Manifest.Name, pkg.Manifest.Version, err, ErrUnhealthy)
	}
	var imgs [][]byte
	if l.o.Frames != nil {
		if imgs, err = l.o.Frames.Recent(l.o.HealthFrames); err != nil {
			l.log.Warn("recent frames for the health check", "err", err)
		}
	}
	run := func(m gocv.Mat) error {
		ctx, cancel := context.WithTimeout(l.ctx, 30*time.Second)
		defer cancel()
		_, err := eng.Run(ctx, inference.Frame{Image: m})
		return err
	}
	ran := 0
	for i, b := range imgs {
		m, err := gocv.IMDecode(b, gocv.IMReadColor)
		if err != nil || m.Empty() {
			m.Close()
			l.log.Warn("health check: undecodable stored frame", "frame", i)
			continue
		}
		err = run(m)
		m.Close()
		if err != nil {
			eng.Close()
			return nil, fmt.Errorf("frame %d: %v: %w", i, err, ErrUnhealthy)
		}
		ran++
	}
	if ran == 0 {
		w, h, _ := pkg.Manifest.InputSize()
		m := gocv.NewMatWithSize(max(h, 1), max(w, 1), gocv.MatTypeCV8UC3)
		err := run(m)
		m.Close()
		if err != nil {
			eng.Close()
			return nil, fmt.Errorf("blank frame: %v: %w", err, ErrUnhealthy)
		}
	}
	return eng, nil
}

// promote switches the pipeline to v and writes the pointer; the version
// that served becomes the previous one, and v goes on probation.
func (l *Lifecycle) promote(v *version, crit rollout.Criteria) error {
	if l.o.Activator == nil {
		return errors.New("promote: no Activator")
	}
	if err := l.o.Activator.Activate(v.pkg); err != nil {
		return fmt.Errorf("activate %s: %v: %w", v.id, err, ErrUnhealthy)
	}
	l.mu.Lock()
	old := l.active
	l.mu.Unlock()
	if err := l.writePointer(pointer{Active: v.id, Previous: old.id}); err != nil {
		// The pipeline runs v but the disk still names old: after a
		// restart old serves, which is verified; say so.
		l.log.Error("promoted, but the pointer was not written", "err", err)
	}
	l.mu.Lock()
	l.previous, l.active = old, v
	l.probation = &probation{v: v, crit: crit, baseline: l.baseline}
	l.mu.Unlock()
	l.log.Info("model promoted", "version", v.id, "previous", old.id)
	l.report(wire.ModelState{State: wire.ModelProbation, Model: v.ref()})
	return nil
}

// rollback returns to the previous version and marks the current one rejected.
func (l *Lifecycle) rollback(reason error) error {
	l.mu.Lock()
	cur, prev := l.active, l.previous
	l.mu.Unlock()
	if prev == nil {
		return ErrNoPrevious
	}
	pv, err := l.loadVersion(prev.id) // re-verify before serving it again
	if err != nil {
		return fmt.Errorf("rollback to %s: %w", prev.id, err)
	}
	if err := l.o.Activator.Activate(pv.pkg); err != nil {
		return fmt.Errorf("rollback to %s: %w", prev.id, err)
	}
	if err := l.writePointer(pointer{Active: pv.id}); err != nil {
		l.log.Error("rolled back, but the pointer was not written", "err", err)
	}
	l.markRejected(cur.id, reason)
	l.mu.Lock()
	l.active, l.previous, l.probation = pv, nil, nil
	l.mu.Unlock()
	l.log.Warn("model rolled back", "from", cur.id, "to", pv.id, "reason", reason)
	l.report(wire.ModelState{State: wire.ModelRolledBack, Model: cur.ref(), Code: Code(reason), Error: reason.Error()})
	return nil
}

func (l *Lifecycle) dropCandidate(why string) {
	l.mu.Lock()
	c := l.cand
	l.cand = nil
	l.mu.Unlock()
	if c != nil {
		l.log.Info("shadow model dropped", "version", c.v.id, "why", why)
		c.eng.Close()
	}
}

func (l *Lifecycle) decideNow() {
	l.mu.Lock()
	c, p := l.cand, l.probation
	var cd, pd verdict
	var cwhy, pwhy string
	var stats *wire.ShadowStats
	if c != nil {
		cd, cwhy, stats = c.decide, c.why, c.tally.stats()
	}
	if p != nil {
		pd, pwhy = p.decide, p.why
	}
	l.mu.Unlock()
	switch {
	case c != nil && cd == pass:
		l.dropCandidateKeep(c)
		if err := l.promote(c.v, c.crit); err != nil {
			l.reject(c.offer, c.v.ref(), err)
		}
	case c != nil && cd == fail:
		l.dropCandidate(cwhy)
		err := fmt.Errorf("in shadow: %s: %w", cwhy, ErrRegression)
		l.markRejected(c.v.id, err)
		l.report(wire.ModelState{State: wire.ModelRejected, Offer: c.offer, Model: c.v.ref(), Code: Code(err), Error: err.Error(), Shadow: stats})
	}
	switch {
	case p != nil && pd == pass:
		l.mu.Lock()
		l.probation = nil
		l.mu.Unlock()
		l.report(wire.ModelState{State: wire.ModelActive, Model: p.v.ref()})
	case p != nil && pd == fail:
		if err := l.rollback(fmt.Errorf("on probation: %s: %w", pwhy, ErrRegression)); err != nil {
			l.log.Error("automatic rollback failed", "err", err)
		}
	}
}

// dropCandidateKeep ends shadow for c without closing anything but its engine.
func (l *Lifecycle) dropCandidateKeep(c *candidate) {
	l.mu.Lock()
	if l.cand == c {
		l.cand = nil
	}
	l.mu.Unlock()
	c.eng.Close()
}

func (l *Lifecycle) command(c command) error {
	l.mu.Lock()
	cand := l.cand
	l.mu.Unlock()
	if c.promote {
		if cand == nil {
			return ErrNoCandidate
		}
		l.dropCandidateKeep(cand)
		return l.promote(cand.v, cand.crit)
	}
	if cand != nil {
		l.dropCandidate("rollback command")
		err := fmt.Errorf("discarded by a rollback command: %w", ErrRegression)
		l.report(wire.ModelState{State: wire.ModelRejected, Offer: cand.offer, Model: cand.v.ref(), Code: Code(err), Error: err.Error()})
		return nil
	}
	return l.rollback(errors.New("rollback command"))
}

func (l *Lifecycle) reportShadow() {
	l.mu.Lock()
	c := l.cand
	var s *wire.ShadowStats
	if c != nil {
		s = c.tally.stats()
	}
	l.mu.Unlock()
	if c == nil || s.Frames == 0 || (l.reported != nil && l.reported[c.offer] == s.Frames) {
		return
	}
	if l.reported == nil {
		l.reported = map[string]int{}
	}
	l.reported[c.offer] = s.Frames
	l.report(wire.ModelState{State: wire.ModelShadow, Offer: c.offer, Model: c.v.ref(), Shadow: s})
}
