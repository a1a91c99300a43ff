package inference

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/internal/affinity"
)

// Config configures an Engine.
type Config struct {
	// Options: provider, accelerators, fallback, threads, and Sessions, the
	// number of sessions (and workers) in the pool.
	onnx.Options
	// Batch is how many frames (from any camera) one run may take; 1 runs
	// every frame alone. A model with a fixed batch dimension uses that.
	Batch int
	// BatchWait is how long a worker holding a frame waits for more to fill
	// a batch (default 2ms when Batch > 1). It adds at most this latency.
	BatchWait time.Duration
	// Logger is tagged with component=inference; nil discards.
	Logger *slog.Logger
}

// Frame is one image for the engine. The engine reads Image only during
// Run and never closes it: the caller keeps owning the Mat.
type Frame struct {
	Image gocv.Mat
	// ROI is the region of Image to inspect; empty means the whole image.
	ROI image.Rectangle
}

// Engine runs frames through a model on a pool of ONNX Runtime sessions.
// It is safe for concurrent use: every camera calls Run from its own
// goroutine, and frames that arrive together can share one batched run.
// Swap replaces the model without dropping frames.
//
// Open it with Open and Close it before the Runtime.
type Engine struct {
	rt     *onnx.Runtime
	cfg    Config
	cpus   []int // the sessions' threads run only here (Config.CPUs); nil: anywhere
	log    *slog.Logger
	swapMu sync.Mutex // serialises Swap and Close
	cur    atomic.Pointer[model]
	closed atomic.Bool
	reqs   sync.Pool
}

// model is one loaded package with its workers; it is retired (and its
// sessions closed) once the frames in flight on it have finished.
type model struct {
	pkg      *Package
	dec      *decoder
	pre      Preprocess
	provider string
	batch    int
	reqs     chan *request // batched models: the shared queue the workers fill batches from
	// free holds the input buffers no frame is using (models of batch 1):
	// a caller takes one, preprocesses into it on its own goroutine and
	// queues the frame on the buffer's session, so the next frame is ready
	// the moment the session finishes the one before.
	free chan *slot
	// measure: the reference statistics are of the model input, so the
	// preprocessing measures each frame (Result.Stats).
	measure bool

	gate    sync.RWMutex // Run holds it shared while a frame is in flight
	retired bool
	wg      sync.WaitGroup
	workers []*worker
}

type request struct {
	ctx context.Context
	in  Frame
	// window: a window of a frame (Input.Windows), not measured
	window bool
	enq    time.Time
	res    Result
	err    error
	done   chan struct{}
	slot   *slot    // batch 1: the input buffer the frame was written into
	geo    Geometry // batch 1: its geometry
	// batch 1: a copy of the run's outputs and its duration, decoded on
	// the caller's goroutine so that the session's thread goes straight
	// back to running (kept with the pooled request, reused).
	outs    []onnx.Tensor
	runTime time.Duration
}

// slot is input buffer k of a worker's session, with the Preprocessor that
// writes it (Preprocessors are not safe for concurrent use).
type slot struct {
	w  *worker
	k  int
	pp *Preprocessor
}

// buffersPerSession: one frame runs while the next is written.
const buffersPerSession = 2

// Open loads pkg into a new engine: it checks the graph against the
// manifest and opens cfg.Sessions sessions on the chosen provider. Errors
// wrap ErrShape, onnx.ErrInvalidModel, onnx.ErrSignature or
// onnx.ErrProviderUnavailable.
func Open(rt *onnx.Runtime, pkg *Package, cfg Config) (*Engine, error) {
	if cfg.Sessions <= 0 {
		cfg.Sessions = 1
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1
	}
	if cfg.Batch > 1 && cfg.BatchWait <= 0 {
		cfg.BatchWait = 2 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{rt: rt, cfg: cfg, log: log.With("component", "inference")}
	if cfg.CPUs != "" {
		cpus, err := cfg.ChooseCPUs(onnx.PhysicalCores())
		if err != nil {
			return nil, fmt.Errorf("%w: cpus %s: %v", ErrConfig, cfg.CPUs, err)
		}
		if len(cpus) > 0 {
			if err := tryPin(cpus); err != nil {
				return nil, fmt.Errorf("%w: cpus %s: %v (name CPUs this process may run on, or leave cpus empty)", ErrConfig, cfg.CPUs, err)
			}
		}
		e.cpus = cpus
		e.cfg.CPUs = affinity.Format(cpus) // "auto" chosen once, for every session
	}
	e.reqs.New = func() any { return &request{done: make(chan struct{}, 1)} }
	m, err := e.load(pkg)
	if err != nil {
		return nil, err
	}
	e.cur.Store(m)
	return e, nil
}

// load opens the sessions and starts the workers of a model.
func (e *Engine) load(pkg *Package) (*model, error) {
	man := pkg.Manifest
	sig, err := e.rt.Inspect(pkg.Model)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w", man.Name, err)
	}
	if err := CheckGraph(man, sig); err != nil {
		return nil, fmt.Errorf("open model %s: %w", man.Name, err)
	}
	m := &model{pkg: pkg, dec: newDecoder(man), pre: NewPreprocess(man.Input), batch: e.cfg.Batch, measure: man.Reference.OnInput()}
	in, _ := sig.Input(man.Input.Name)
	if n := in.Shape[0]; n > 0 && int(n) != m.batch {
		e.log.Info("the model fixes its batch size", "model", man.Name, "batch", n, "configured", e.cfg.Batch)
		m.batch = int(n)
	}
	shape := append([]int64{int64(m.batch)}, man.Input.Shape[1:]...)
	spec := onnx.SessionSpec{Model: pkg.Model, Input: man.Input.Name, Shape: shape, Outputs: m.dec.names}
	if m.batch == 1 {
		spec.Buffers = buffersPerSession
	}
	opts := e.cfg.Options
	var workers []*worker
	for i := range e.cfg.Sessions {
		s, err := e.rt.NewSession(spec, opts, e.log)
		if err != nil {
			for _, w := range workers {
				w.close()
			}
			return nil, fmt.Errorf("open model %s: session %d: %w", man.Name, i, err)
		}
		if i == 0 {
			// The other sessions go straight to what the first one got.
			m.provider = s.Provider()
			opts.Provider, opts.Fallback = s.Provider(), false
		}
		w := &worker{e: e, m: m, sess: s}
		if m.batch == 1 {
			w.single = make(chan *request, buffersPerSession)
			for k := range buffersPerSession {
				w.slots = append(w.slots, &slot{w: w, k: k, pp: NewPreprocessor(m.pre)})
			}
		} else {
			w.pp = NewPreprocessor(m.pre)
			w.batch, w.geo = make([]*request, 0, m.batch), make([]Geometry, m.batch)
		}
		workers = append(workers, w)
	}
	if m.batch == 1 {
		// Interleaved, so that the first frames go to different sessions.
		m.free = make(chan *slot, len(workers)*buffersPerSession)
		for k := range buffersPerSession {
			for _, w := range workers {
				m.free <- w.slots[k]
			}
		}
	} else {
		m.reqs = make(chan *request, e.cfg.Sessions*m.batch)
	}
	m.workers = workers
	var started sync.WaitGroup // each worker on its own thread (and CPUs) before frames come
	for _, w := range workers {
		m.wg.Add(1)
		started.Add(1)
		if m.batch == 1 {
			go w.pinned(started.Done, w.loopSingle)
		} else {
			go w.pinned(started.Done, w.loop)
		}
	}
	started.Wait()
	e.log.Info("model loaded", "model", man.Name, "version", man.Version, "task", man.Task,
		"provider", m.provider, "sessions", e.cfg.Sessions, "intra_op_threads", workers[0].sess.IntraThreads(), "batch", m.batch,
		"cpus", cpuNote(e.cpus))
	return m, nil
}

// tryPin pins a thread to cpus and back, to learn before any session
// opens whether the kernel lets this process run there (the set the agent
// left the engine may be smaller than the machine's). A thread whose mask
// cannot be put back ends instead of going back to Go's scheduler.
func tryPin(cpus []int) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		prev, err := affinity.Allowed()
		if err == nil {
			if err = affinity.PinThread(cpus); err == nil {
				if affinity.PinThread(prev) != nil {
					errc <- nil
					return // still locked: the thread exits with the goroutine
				}
			}
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

func cpuNote(cpus []int) string {
	if len(cpus) == 0 {
		return "any"
	}
	return affinity.Format(cpus)
}

// retire waits for the frames in flight on m, stops its workers and
// closes its sessions.
func (m *model) retire() {
	m.gate.Lock()
	m.retired = true
	if m.batch == 1 {
		for _, w := range m.workers {
			close(w.single)
		}
	} else {
		close(m.reqs)
	}
	m.gate.Unlock()
	m.wg.Wait()
}

// Run preprocesses in, runs the model and decodes the outputs. It blocks
// until the frame is done (the engine reads in.Image until then). When ctx
// ends before the frame runs, or while it runs, the error wraps
// ErrDeadline. Other errors wrap ErrBadInput, ErrShape, ErrNonFinite,
// onnx.ErrRun or ErrClosed; none of them stops the engine.
//
// A model with input windows (Input.Windows) scores the ROI's windows
// (along an elongated ROI, and its corners) too, side by side with the
// whole ROI (they share batches and sessions like frames of other
// cameras), and the result is the view with the lowest GoodScore; Stats stay the whole ROI's, as the reference
// statistics are of whole parts. Any view's error is the frame's error.
func (e *Engine) Run(ctx context.Context, in Frame) (Result, error) {
	for range 2 {
		ws := e.Manifest().Input.Windows
		if ws == nil {
			return e.runView(ctx, in, true)
		}
		wins := ws.Of(frameROI(in))
		if len(wins) == 0 {
			return e.runView(ctx, in, true)
		}
		res, err := e.runWindows(ctx, in, wins)
		if !errors.Is(err, errSwappedMidFrame) {
			return res, err
		}
	}
	return e.runView(ctx, in, true) // swapped twice within one frame: the whole view alone
}

// errSwappedMidFrame: a frame's views ran on two models (Swap between
// them); Run scores the frame again.
var errSwappedMidFrame = errors.New("model swapped between the views of one frame")

// frameROI is in's ROI, the whole image when empty; empty when the image
// is missing or the ROI leaves it (the whole view then reports why).
func frameROI(in Frame) image.Rectangle {
	if in.Image.Ptr() == nil || in.Image.Empty() {
		return image.Rectangle{}
	}
	full := image.Rect(0, 0, in.Image.Cols(), in.Image.Rows())
	if in.ROI.Empty() {
		return full
	}
	if !in.ROI.In(full) {
		return image.Rectangle{}
	}
	return in.ROI
}

// runWindows scores the whole view and the windows wins of in
// concurrently and keeps the view with the lowest GoodScore.
func (e *Engine) runWindows(ctx context.Context, in Frame, wins []image.Rectangle) (Result, error) {
	t0 := time.Now()
	res := make([]Result, 1+len(wins))
	errs := make([]error, len(res))
	var wg sync.WaitGroup
	for k, w := range wins {
		wg.Go(func() { res[k+1], errs[k+1] = e.runView(ctx, Frame{Image: in.Image, ROI: w}, false) })
	}
	res[0], errs[0] = e.runView(ctx, in, true)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Result{}, err // the whole view's first: the views share their causes
		}
	}
	for _, r := range res[1:] {
		if r.Version != res[0].Version || r.Model != res[0].Model {
			return Result{}, errSwappedMidFrame
		}
	}
	return worstView(res, time.Since(t0)), nil
}

// worstView combines the results of a frame's views (views[0] the whole
// ROI): the one with the lowest GoodScore decides, with its scores,
// heatmap and geometry; the stats and queueing are the whole view's;
// preprocess, run and decode times are summed over the views (the work
// the part cost) and Total is total (pure).
func worstView(views []Result, total time.Duration) Result {
	out := views[0]
	for k, r := range views[1:] {
		if r.GoodScore < out.GoodScore {
			out = r
			out.View = k + 1
		}
	}
	out.Stats, out.Measured, out.Batch = views[0].Stats, views[0].Measured, views[0].Batch
	out.Views = len(views)
	out.Timings = Timings{Queue: views[0].Timings.Queue, Total: total}
	for _, r := range views {
		out.Timings.Preprocess += r.Timings.Preprocess
		out.Timings.Run += r.Timings.Run
		out.Timings.Decode += r.Timings.Decode
	}
	return out
}

// runView runs one view of a frame: in.ROI of in.Image. whole: the view
// is the frame's ROI, whose input statistics are measured (when the
// reference is of the input); a window's would be thrown away.
func (e *Engine) runView(ctx context.Context, in Frame, whole bool) (Result, error) {
	for {
		if e.closed.Load() {
			return Result{}, ErrClosed
		}
		m := e.cur.Load()
		m.gate.RLock()
		if m.retired {
			m.gate.RUnlock()
			if e.closed.Load() {
				return Result{}, ErrClosed
			}
			continue // swapped out just now: run on the new model
		}
		req := e.reqs.Get().(*request)
		req.ctx, req.in, req.enq, req.res, req.err, req.window = ctx, in, time.Now(), Result{}, nil, !whole
		if m.batch == 1 {
			err := m.runSingle(req)
			m.gate.RUnlock()
			res := req.res
			req.ctx, req.in, req.res, req.slot = nil, Frame{}, Result{}, nil
			e.reqs.Put(req)
			return res, err
		}
		select {
		case m.reqs <- req:
		case <-ctx.Done():
			m.gate.RUnlock()
			req.ctx, req.in = nil, Frame{}
			e.reqs.Put(req)
			return Result{}, fmt.Errorf("%w: %v while queued", ErrDeadline, context.Cause(ctx))
		}
		<-req.done
		m.gate.RUnlock()
		res, err := req.res, req.err
		req.ctx, req.in, req.res = nil, Frame{}, Result{}
		e.reqs.Put(req)
		return res, err
	}
}

// Swap loads pkg and makes it the engine's model. Frames already queued
// or running finish on the old model, whose sessions are closed after; new
// frames go to the new one. When pkg cannot be loaded the old model keeps
// serving and the error says why.
func (e *Engine) Swap(pkg *Package) error {
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	if e.closed.Load() {
		return ErrClosed
	}
	m, err := e.load(pkg)
	if err != nil {
		return fmt.Errorf("swap model: %w", err)
	}
	old := e.cur.Swap(m)
	old.retire()
	e.log.Info("model swapped", "from", old.pkg.Manifest.Version, "to", pkg.Manifest.Version, "name", pkg.Manifest.Name)
	return nil
}

// Manifest is the current model's manifest.
func (e *Engine) Manifest() *Manifest { return e.cur.Load().pkg.Manifest }

// Provider is the execution provider the current model runs on.
func (e *Engine) Provider() string { return e.cur.Load().provider }

// Batch is the current model's batch size.
func (e *Engine) Batch() int { return e.cur.Load().batch }

// Close waits for the frames in flight, then closes the sessions. Later
// Runs return ErrClosed. Calling it twice is harmless.
func (e *Engine) Close() error {
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	if e.closed.Swap(true) {
		return nil
	}
	e.cur.Load().retire()
	return nil
}

// worker owns one session and one preprocessor and serves the model's
// request queue.
type worker struct {
	e    *Engine
	m    *model
	sess *onnx.Session
	tid  int // the OS thread the worker runs on (set before it serves)
	// batch 1: the session's input buffers and the worker's queue of
	// frames written into them.
	slots  []*slot
	single chan *request
	// batched models: the worker preprocesses the batch itself.
	pp    *Preprocessor
	batch []*request
	geo   []Geometry
	live  []int
}

func (w *worker) close() {
	if err := w.sess.Close(); err != nil {
		w.e.log.Warn("close session", "err", err)
	}
	if w.pp != nil {
		w.pp.Close()
	}
	for _, sl := range w.slots {
		sl.pp.Close()
	}
}

// runSingle runs one frame on a model of batch 1: it waits for a free input
// buffer, preprocesses into it on the caller's goroutine (while the
// buffer's session may still be running the frame before), then queues it
// on that session and waits. The caller holds m.gate shared.
func (m *model) runSingle(req *request) error {
	ctx := req.ctx
	var sl *slot
	select {
	case sl = <-m.free:
	case <-ctx.Done():
		return fmt.Errorf("%w: %v while queued", ErrDeadline, context.Cause(ctx))
	}
	t0 := time.Now()
	req.res.Timings.Queue = t0.Sub(req.enq)
	var err error
	req.geo, err = m.preprocess(sl.pp, req, sl.w.sess.InputBuffer(sl.k))
	req.res.Timings.Preprocess = time.Since(t0)
	if err != nil {
		m.free <- sl
		return err
	}
	req.slot = sl
	sl.w.single <- req // never blocks: the worker's queue holds all its buffers
	<-req.done
	if req.err != nil {
		return req.err
	}
	return m.decode(req, req.outs, 0, 1, req.geo, req.runTime)
}

// pinned runs a worker's loop on one OS thread of its own for the
// worker's whole life. ONNX Runtime runs a CPU session with one intra-op
// thread on the calling thread; a goroutine that moves between Go's
// threads (and so between cores) after every frame finds the model's
// weights and activations cold in that core's caches, and every wake-up
// of another goroutine can land on its thread. Measured on the 2-core VM
// (agent/pipeline BenchmarkPipelineVsRawORT, default): pipeline/bare
// session 0.85-0.97 pinned against 0.71-0.82 unpinned in alternating runs.
//
// With Config.CPUs the thread is also pinned to those CPUs, and it ends
// with the worker instead of going back to Go's scheduler with that mask.
func (w *worker) pinned(started func(), loop func()) {
	runtime.LockOSThread()
	w.tid = affinity.ThreadID()
	if cpus := w.e.cpus; len(cpus) > 0 {
		err := affinity.PinThread(cpus)
		if err == nil {
			started()
			loop()
			return // still locked: the thread exits with the goroutine
		}
		w.e.log.Warn("session thread runs unpinned", "cpus", affinity.Format(cpus), "err", err)
	}
	started()
	defer runtime.UnlockOSThread()
	loop()
}

// loopSingle serves the frames queued on this worker's buffers (batch 1).
func (w *worker) loopSingle() {
	defer w.m.wg.Done()
	defer w.close()
	for r := range w.single {
		w.runOne(r)
	}
}

// runOne runs one preprocessed frame and copies its outputs into the
// request, for the caller to decode. Its buffer goes back to the free list
// as soon as the run is over, so the next frame can be written meanwhile,
// and the session's thread does nothing per frame but run.
func (w *worker) runOne(r *request) {
	sl := r.slot
	if err := r.ctx.Err(); err != nil {
		w.m.free <- sl
		finish(r, fmt.Errorf("%w: %v before the run started", ErrDeadline, context.Cause(r.ctx)))
		return
	}
	t0 := time.Now()
	err := w.sess.RunBuffer(r.ctx, sl.k)
	r.runTime = time.Since(t0)
	if err == nil {
		r.outs = copyOutputs(r.outs, w.sess.Outputs())
	}
	w.m.free <- sl
	if err != nil {
		finish(r, w.runFailed(err))
		return
	}
	finish(r, nil)
}

// copyOutputs copies src's data into dst's (reusing its buffers) and
// returns dst. Names and shapes are shared: a session never changes them.
func copyOutputs(dst, src []onnx.Tensor) []onnx.Tensor {
	if len(dst) != len(src) {
		dst = make([]onnx.Tensor, len(src))
	}
	for i, t := range src {
		d := &dst[i]
		d.Name, d.Shape = t.Name, t.Shape
		d.Data = append(d.Data[:0], t.Data...)
	}
	return dst
}

// preprocess writes r's frame into dst with pp, measuring it too when the
// model's reference is of its input.
func (m *model) preprocess(pp *Preprocessor, r *request, dst []float32) (Geometry, error) {
	if !m.measure || r.window {
		return pp.Run(r.in.Image, r.in.ROI, dst)
	}
	g, st, err := pp.RunMeasured(r.in.Image, r.in.ROI, dst)
	r.res.Stats, r.res.Measured = st, err == nil
	return g, err
}

// runFailed is the error every frame of a failed run gets; a failure other
// than a deadline is logged.
func (w *worker) runFailed(err error) error {
	if !errors.Is(err, onnx.ErrDeadline) {
		w.e.log.Warn("inference run failed", "model", w.m.pkg.Manifest.Name, "err", err)
	}
	return fmt.Errorf("run: %w", err)
}

// decodeOne decodes frame j of a run of n frames from the session's
// outputs into r's result and finishes r (batched models).
func (w *worker) decodeOne(r *request, j, n int, g Geometry, runTime time.Duration) {
	finish(r, w.m.decode(r, w.sess.Outputs(), j, n, g, runTime))
}

// decode decodes frame j of a run of n frames from outs into r's result.
func (m *model) decode(r *request, outs []onnx.Tensor, j, n int, g Geometry, runTime time.Duration) error {
	t1 := time.Now()
	man := m.pkg.Manifest
	res := &r.res
	res.Model, res.Version, res.Task, res.Provider, res.Batch, res.Views = man.Name, man.Version, man.Task, m.provider, n, 1
	res.Timings.Run = runTime
	err := m.dec.decode(outs, j, g, res)
	res.Timings.Decode = time.Since(t1)
	res.Timings.Total = time.Since(r.enq)
	if err == nil && r.ctx.Err() != nil {
		err = fmt.Errorf("%w: %v: the result is late", ErrDeadline, context.Cause(r.ctx))
	}
	if err != nil {
		err = fmt.Errorf("decode: %w", err)
	}
	return err
}

// loop fills batches from the model's shared queue and runs them (batched
// models).
func (w *worker) loop() {
	defer w.m.wg.Done()
	defer w.close()
	timer := time.NewTimer(w.e.cfg.BatchWait)
	timer.Stop()
	for r := range w.m.reqs {
		w.batch = append(w.batch[:0], r)
		timer.Reset(w.e.cfg.BatchWait)
	fill:
		for len(w.batch) < w.m.batch {
			select {
			case r2, ok := <-w.m.reqs:
				if !ok {
					break fill
				}
				w.batch = append(w.batch, r2)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		w.process(w.batch)
		clear(w.batch)
	}
}

func finish(r *request, err error) {
	r.err = err
	r.done <- struct{}{}
}

// process runs one batch: preprocess each live frame into its slot, run
// once, decode each.
func (w *worker) process(batch []*request) {
	size := w.m.pre.Size()
	input := w.sess.Input()
	w.live = w.live[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			finish(r, fmt.Errorf("%w: %v before the run started", ErrDeadline, context.Cause(r.ctx)))
			continue
		}
		j := len(w.live)
		t0 := time.Now()
		g, err := w.m.preprocess(w.pp, r, input[j*size:(j+1)*size])
		if err != nil {
			finish(r, err)
			continue
		}
		w.geo[j] = g
		r.res.Timings.Queue = t0.Sub(r.enq)
		r.res.Timings.Preprocess = time.Since(t0)
		w.live = append(w.live, 0)
		batch[j] = r // compact live requests to the front
	}
	n := len(w.live)
	if n == 0 {
		return
	}
	ctx, cancel := runContext(batch[:n])
	t0 := time.Now()
	err := w.sess.Run(ctx)
	runTime := time.Since(t0)
	cancel()
	if err != nil {
		err = w.runFailed(err)
		for _, r := range batch[:n] {
			finish(r, err)
		}
		return
	}
	for j, r := range batch[:n] {
		w.decodeOne(r, j, n, w.geo[j], runTime)
	}
}

// runContext is the context a batch runs under: the frame's own for a
// single frame, else one that ends at the latest deadline among them (a
// frame whose deadline passed during the run gets ErrDeadline afterwards).
func runContext(reqs []*request) (context.Context, context.CancelFunc) {
	if len(reqs) == 1 {
		return reqs[0].ctx, func() {}
	}
	var latest time.Time
	for _, r := range reqs {
		d, ok := r.ctx.Deadline()
		if !ok {
			return context.Background(), func() {}
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.Background(), latest)
}
