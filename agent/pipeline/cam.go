package pipeline

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
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
	"gocv.io/x/gocv"
)

// cam is one camera's share of the pipeline.
type cam struct {
	p       *Pipeline
	id      string
	src     Source
	workers int
	lvl     atomic.Int32
	records chan *record
	pending atomic.Int64 // frames taken from the camera and not yet recorded

	mu       sync.Mutex // guards everything below
	rng      *rand.Rand
	drift    *monitor.Drift
	driftRep monitor.Report
	observed int
	deferWin *policy.DeferWindow
	stats    camStats
	autoSeen int

	// This camera's metric children, looked up once instead of per frame.
	mFrames              prometheus.Counter
	mRecordQ             prometheus.Gauge
	mLatency             prometheus.Observer
	mStages              map[string]prometheus.Observer
	mDeferRate, mDeferAl prometheus.Gauge
}

// record is a decided part on its way to the store; it owns the frame.
type record struct {
	f       *camera.Frame
	insp    *store.Inspection
	msg     *output.Message
	keepImg bool
	decided time.Time
}

func newCam(p *Pipeline, co CameraOptions, rng *rand.Rand) *cam {
	c := &cam{p: p, id: co.Source.ID(), src: co.Source, workers: co.Workers, rng: rng,
		records: make(chan *record, 16*co.Workers+p.opts.Recorders)}
	c.lvl.Store(int32(co.Level))
	c.mFrames = p.m.frames.WithLabelValues(c.id)
	c.mRecordQ = p.m.queue.WithLabelValues(c.id, "record")
	c.mLatency = p.m.latency.WithLabelValues(c.id)
	c.mDeferRate, c.mDeferAl = p.m.deferRate.WithLabelValues(c.id), p.m.deferAlrm.WithLabelValues(c.id)
	c.mStages = map[string]prometheus.Observer{}
	for _, st := range []string{"queue", "measure", "preprocess", "inference", "decode", "engine_queue", "policy", "record"} {
		c.mStages[st] = p.m.stage.WithLabelValues(c.id, st)
	}
	c.deferWin = policy.NewDeferWindow(200, 50, p.opts.MaxDeferRate)
	c.stats.init()
	c.resetDrift(p.opts.Engine.Manifest())
	p.m.level.WithLabelValues(c.id, co.Level.String()).Set(1)
	return c
}

func (c *cam) level() policy.Level { return policy.Level(c.lvl.Load()) }

func (c *cam) setLevel(l policy.Level) policy.Level {
	from := policy.Level(c.lvl.Swap(int32(l)))
	c.p.m.level.WithLabelValues(c.id, from.String()).Set(0)
	c.p.m.level.WithLabelValues(c.id, l.String()).Set(1)
	return from
}

func (c *cam) resetDrift(man *inference.Manifest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if man.Reference == nil {
		c.drift = nil
		return
	}
	c.drift = monitor.NewDrift(*man.Reference, man.Labels, c.p.opts.DriftWindow, c.p.opts.Drift)
	c.driftRep, c.observed = monitor.Report{}, 0
}

func (c *cam) start() {
	p := c.p
	var ws sync.WaitGroup
	for range c.workers {
		p.workers.Add(1)
		ws.Add(1)
		go func() {
			defer p.workers.Done()
			defer ws.Done()
			c.work()
		}()
	}
	for range p.opts.Recorders {
		p.recs.Add(1)
		go func() {
			defer p.recs.Done()
			for r := range c.records {
				c.commit(r)
			}
		}()
	}
	// The record channel closes when this camera's last worker is done.
	go func() {
		ws.Wait()
		close(c.records)
	}()
}

// work takes frames until the camera is closed or ends.
func (c *cam) work() {
	meas := inference.NewMeasurer()
	defer meas.Close()
	for {
		// Next is not cancelled by Close: after the camera closes it still
		// hands out the queued frames, then ErrClosed.
		f, err := c.src.Next(context.Background())
		if err != nil {
			if !isEnd(err) {
				c.p.log.Error("camera read failed; camera stopped", "camera", c.id, "err", err)
			}
			return
		}
		c.pending.Add(1)
		c.mFrames.Inc()
		r := c.decide(f, meas)
		c.mRecordQ.Set(float64(len(c.records)))
		c.records <- r // blocks when the store is behind: never drops a decision
	}
}

// decide runs the model and the policy on one frame; the returned record
// owns the frame.
func (c *cam) decide(f *camera.Frame, meas *inference.Measurer) *record {
	p := c.p
	start := time.Now()
	man := p.opts.Engine.Manifest()
	p.mu.RLock()
	cfg := p.base
	p.mu.RUnlock()
	cfg.Level = c.level()

	timings := map[string]time.Duration{"queue": nonNeg(start.Sub(f.Time))}
	in := policy.Input{Labels: man.Labels, Good: man.GoodLabels}
	var res inference.Result
	var stats inference.InputStats
	ran := false
	switch {
	case f.Late || !f.HasImage():
		in.Failure = policy.DeadlineMissed
	case !f.Deadline.IsZero() && start.After(f.Deadline):
		in.Failure = policy.DeadlineMissed
	default:
		ctx, cancel := context.WithTimeout(p.work, p.opts.Timeout)
		if !f.Deadline.IsZero() {
			ctx, cancel = withDeadline(ctx, cancel, f.Deadline)
		}
		var err error
		res, err = p.opts.Engine.Run(ctx, inference.Frame{Image: f.Mat})
		cancel()
		switch {
		case err != nil && (errors.Is(err, inference.ErrDeadline) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
			in.Failure = policy.Timeout
			if !f.Deadline.IsZero() && time.Now().After(f.Deadline) {
				in.Failure = policy.DeadlineMissed
			}
		case err != nil:
			in.Failure = policy.InferenceError
			p.log.Warn("inference failed; fail-safe verdict", "camera", c.id, "err", err)
		case !f.Deadline.IsZero() && time.Now().After(f.Deadline):
			in.Failure = policy.DeadlineMissed
			ran = true
		default:
			ran = true
		}
		if ran {
			// A model whose reference is of its input had the frame
			// measured by the engine while it preprocessed; a package whose
			// reference is of the whole frame (older ones) gets it here.
			stats = res.Stats
			if !res.Measured {
				t0 := time.Now()
				stats, err = meas.Measure(f.Mat, image.Rectangle{})
				timings["measure"] = time.Since(t0)
				if err != nil {
					in.Failure = policy.InferenceError
					p.log.Warn("frame could not be measured; fail-safe verdict", "camera", c.id, "err", err)
				}
			}
			in.Brightness, in.Contrast, in.Sharpness = stats.Brightness, stats.Contrast, stats.Sharpness
			timings["preprocess"] = res.Timings.Preprocess
			timings["inference"] = res.Timings.Run
			timings["decode"] = res.Timings.Decode
			timings["engine_queue"] = res.Timings.Queue
			in.Probs = make([]float64, len(res.Scores))
			for i, s := range res.Scores {
				in.Probs[i] = float64(s)
			}
			in.Labels = res.Labels
		}
	}

	tp := time.Now()
	c.mu.Lock()
	in.AuditDraw = c.rng.Float64()
	if c.drift != nil {
		in.DriftAlarm = c.drift.Alarm()
	}
	c.mu.Unlock()
	d := policy.Decide(cfg, in)
	decided := time.Now()
	timings["policy"] = decided.Sub(tp)
	latency := nonNeg(decided.Sub(f.Time))

	if in.Failure != policy.NoFailure {
		p.m.failures.WithLabelValues(c.id, string(in.Failure)).Inc()
	}
	if p.opts.Models != nil {
		c.shadow(f, cfg, in, d, res, ran)
	}
	c.observe(in, d, ran, res, stats, latency)

	insp := &store.Inspection{
		ID: p.opts.Store.NewID(f.Time), Time: f.Time, Camera: c.id, PartID: f.PartID,
		Model: store.ModelRef{Name: man.Name, Version: man.Version}, Timings: timings,
	}
	if ran {
		insp.Model = store.ModelRef{Name: res.Model, Version: res.Version}
		insp.Scores = make([]store.Score, len(res.Labels))
		for i, l := range res.Labels {
			insp.Scores[i] = store.Score{Label: l, P: round6(float64(res.Scores[i]))}
		}
		insp.Top = res.TopLabel
	}
	insp.FromDecision(d)
	if f.Late && f.LateReason != "" {
		insp.Detail = d.Detail + " (" + f.LateReason + ")"
	}
	if f.HasImage() {
		insp.Width, insp.Height = f.Mat.Cols(), f.Mat.Rows()
	}
	msg := &output.Message{
		ID: insp.ID, Device: p.opts.Device, Camera: c.id, PartID: f.PartID, Time: f.Time,
		Verdict: string(d.Verdict), Reason: string(d.Reason), Detail: insp.Detail, Level: d.Level.String(),
		Actuate: d.Actuate, Review: d.Review, Top: d.Top, PGood: d.PGood, Model: insp.Model.Name, Version: insp.Model.Version,
		Latency: float64(latency.Microseconds()) / 1000, Late: in.Failure == policy.DeadlineMissed, Deadline: f.Deadline,
	}
	keep := c.keepImage(d)
	if keep && ran && f.HasImage() {
		// The heatmap goes with the image it is drawn on (the review UI);
		// a part kept without its image does not need it.
		insp.Heatmap = heatmapOver(res, man, f.Mat.Cols(), f.Mat.Rows())
	}
	return &record{f: f, insp: insp, msg: msg, keepImg: keep, decided: decided}
}

func (c *cam) keepImage(d policy.Decision) bool {
	switch c.p.opts.KeepImages {
	case "all":
		return true
	case "sampled":
		if d.Review {
			return true
		}
		c.mu.Lock()
		c.autoSeen++
		n := c.autoSeen
		c.mu.Unlock()
		return n%c.p.opts.SampleEvery == 0
	default:
		return d.Review
	}
}

// commit encodes the kept image, commits the inspection and then sends the
// verdict to the outputs. It closes the record's frame.
func (c *cam) commit(r *record) {
	p := c.p
	defer c.pending.Add(-1)
	var jpeg []byte
	if r.keepImg && r.f.HasImage() {
		buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, r.f.Mat, []int{gocv.IMWriteJpegQuality, p.opts.JPEGQuality})
		if err != nil {
			p.log.Warn("jpeg encode failed; inspection kept without its image", "camera", c.id, "id", r.insp.ID, "err", err)
		} else {
			jpeg = append([]byte(nil), buf.GetBytes()...)
			buf.Close()
		}
	}
	r.f.Close()
	t0 := time.Now()
	// Put is retried while the store is busy or out of space: the record
	// of a part is not given up while the agent runs.
	for attempt := 0; ; attempt++ {
		err := p.opts.Store.Put(context.Background(), r.insp, jpeg)
		if err == nil {
			break
		}
		p.m.storeErrs.WithLabelValues(c.id).Inc()
		if errors.Is(err, store.ErrClosed) || errors.Is(err, store.ErrInvalid) {
			p.log.Error("inspection could not be committed", "camera", c.id, "id", r.insp.ID, "err", err)
			return
		}
		if attempt%10 == 0 {
			p.log.Error("store write failed; retrying", "camera", c.id, "id", r.insp.ID, "attempt", attempt+1, "err", err)
		}
		time.Sleep(min(time.Duration(attempt+1)*100*time.Millisecond, 2*time.Second))
	}
	committed := time.Now()
	r.insp.Timings["record"] = committed.Sub(t0)
	for stage, d := range r.insp.Timings {
		o, ok := c.mStages[stage]
		if !ok {
			o = p.m.stage.WithLabelValues(c.id, stage)
		}
		o.Observe(d.Seconds())
	}
	if p.opts.Outputs != nil {
		p.opts.Outputs.Send(r.msg)
	}
	de := DecisionEvent{
		ID: r.insp.ID, PartID: r.insp.PartID, Time: r.insp.Time, Verdict: r.insp.Verdict, Reason: r.insp.Reason, Level: r.insp.Level,
		Top: r.insp.Top, PGood: r.msg.PGood, Review: r.insp.Review, Audit: r.insp.Audit, Image: r.insp.Image != "",
		Latency: time.Duration(r.msg.Latency * float64(time.Millisecond)),
	}
	c.mu.Lock()
	c.stats.note(de)
	c.mu.Unlock()
	p.emit(Event{Kind: EventDecision, Time: committed, Camera: c.id, Decision: &de})
}

// observe updates the statistics, the defer-rate alarm and the drift monitor.
func (c *cam) observe(in policy.Input, d policy.Decision, ran bool, res inference.Result, st inference.InputStats, latency time.Duration) {
	p := c.p
	p.m.verdicts.WithLabelValues(c.id, string(d.Verdict), string(d.Reason)).Inc()
	c.mLatency.Observe(latency.Seconds())
	var events []Event
	c.mu.Lock()
	c.stats.add(d, latency, time.Now())
	was := c.deferWin.Alarm()
	now := c.deferWin.Add(d.Verdict)
	rate := c.deferWin.Rate()
	if now != was {
		events = append(events, Event{Kind: EventAlarm, Time: time.Now(), Camera: c.id, Alarm: &Alarm{
			Kind: "defer-rate", Raised: now,
			Detail: fmt.Sprintf("defer rate %.1f%% over the last parts (ceiling %.1f%%)", 100*rate, 100*p.opts.MaxDeferRate)}})
	}
	if c.drift != nil && ran {
		c.drift.Observe(monitor.Observation{Brightness: st.Brightness, Contrast: st.Contrast, Sharpness: st.Sharpness,
			Top: res.TopLabel, Confidence: float64(res.TopScore)})
		c.observed++
		if c.observed%p.opts.DriftEvery == 0 {
			rep := c.drift.Evaluate()
			c.driftRep = rep
			for s, v := range rep.PSI {
				p.m.drift.WithLabelValues(c.id, s).Set(v)
			}
			p.m.driftAlrm.WithLabelValues(c.id).Set(b2f(rep.Alarm))
			if rep.Changed {
				detail := rep.Reason
				if !rep.Alarm {
					detail = "drift cleared: every statistic back near the training reference"
				}
				events = append(events, Event{Kind: EventAlarm, Time: time.Now(), Camera: c.id, Alarm: &Alarm{
					Kind: "drift", Raised: rep.Alarm, Detail: detail, PSI: rep.PSI}})
			}
		}
	}
	c.mu.Unlock()
	c.mDeferRate.Set(rate)
	c.mDeferAl.Set(b2f(now))
	for _, e := range events {
		p.alarm(e)
	}
}

// alarm logs an alarm, records it in the outbox (the uplink's events topic)
// and tells the subscribers.
func (p *Pipeline) alarm(e Event) {
	a := e.Alarm
	state := "cleared"
	if a.Raised {
		state = "raised"
		p.log.Warn("alarm raised", "camera", e.Camera, "alarm", a.Kind, "detail", a.Detail)
	} else {
		p.log.Info("alarm cleared", "camera", e.Camera, "alarm", a.Kind, "detail", a.Detail)
	}
	at := e.Time.UTC()
	payload := fmt.Appendf(nil, `{"type":"alarm","alarm":%q,"state":%q,"camera":%q,"detail":%q,"at":%q}`,
		a.Kind, state, e.Camera, a.Detail, at.Format(time.RFC3339Nano))
	entry := store.OutboxEntry{ID: fmt.Sprintf("event-alarm-%s-%s-%s", e.Camera, a.Kind, at.Format("20060102T150405.000000000")),
		Kind: store.KindEvent, Time: at, Payload: payload}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.opts.Store.Append(ctx, entry); err != nil {
		p.log.Error("alarm could not be recorded in the outbox", "camera", e.Camera, "err", err)
	}
	p.emit(e)
}

// heatmapOver resamples the engine's heatmap (model-input pixels) onto a
// grid covering the w x h frame, quantised to 0..255: the heatmap's own
// size, or its transpose where the model saw the ROI turned a quarter
// (Geometry.Rotated), so that the grid lies as the frame does. Where the
// model saw only part of the frame (a camera ROI, or the window of an
// elongated part that decided it, Result.View), the grid is finer by the
// frame's size over the ROI's (at most 4x), so that the ROI keeps the
// map's resolution, and cells outside the ROI are 0.
func heatmapOver(res inference.Result, man *inference.Manifest, w, h int) *store.Heatmap {
	hm := res.Heatmap
	if hm == nil || hm.W <= 0 || hm.H <= 0 || len(hm.Data) < hm.W*hm.H || w <= 0 || h <= 0 {
		return nil
	}
	inW, inH, _ := man.InputSize()
	g := res.Geometry
	if inW <= 0 || inH <= 0 || g.ResizedW <= 0 || g.ResizedH <= 0 {
		return nil
	}
	lo, hi := hm.Min, hm.Max
	if !(hi > lo) {
		lo, hi = float32(math.Inf(1)), float32(math.Inf(-1))
		for _, v := range hm.Data[:hm.W*hm.H] {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	gw, gh := hm.W, hm.H
	if g.Rotated {
		gw, gh = hm.H, hm.W
	}
	roi := g.ROI
	if roi.Empty() {
		roi = image.Rect(0, 0, w, h)
	}
	gw = min(int(math.Ceil(float64(gw)*float64(w)/float64(roi.Dx())-1e-9)), 4*gw)
	gh = min(int(math.Ceil(float64(gh)*float64(h)/float64(roi.Dy())-1e-9)), 4*gh)
	out := &store.Heatmap{W: gw, H: gh, V: make([]byte, gw*gh)}
	span := hi - lo
	for j := range gh {
		for i := range gw {
			// The cell's centre on the frame, where it lies in the model
			// input, then in heatmap cells.
			fx, fy := (float64(i)+0.5)/float64(gw)*float64(w), (float64(j)+0.5)/float64(gh)*float64(h)
			if fx < float64(roi.Min.X) || fx >= float64(roi.Max.X) || fy < float64(roi.Min.Y) || fy >= float64(roi.Max.Y) {
				continue // outside what the model saw
			}
			mx, my := g.ToInput(fx, fy)
			sx := min(max(int(mx/float64(inW)*float64(hm.W)), 0), hm.W-1)
			sy := min(max(int(my/float64(inH)*float64(hm.H)), 0), hm.H-1)
			val := hm.Data[sy*hm.W+sx]
			q := 0.0
			if span > 0 {
				q = float64((val-lo)/span) * 255
			}
			out.V[j*gw+i] = byte(min(max(math.Round(q), 0), 255))
		}
	}
	return out
}

func withDeadline(parent context.Context, cancel context.CancelFunc, dl time.Time) (context.Context, context.CancelFunc) {
	ctx, c2 := context.WithDeadline(parent, dl)
	return ctx, func() { c2(); cancel() }
}

func nonNeg(d time.Duration) time.Duration { return max(d, 0) }

func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// shadowJob is one frame for the shadow model, with the active model's
// outcome; it owns its copy of the image.
type shadowJob struct {
	img    gocv.Mat
	cfg    policy.Config
	in     policy.Input
	active lifecycle.Outcome
}

// shadow reports the frame's outcome to the model lifecycle and, when a
// candidate is in shadow and the shadow goroutine is free, hands it a copy
// of the frame. A busy shadow skips frames: it must never slow the line.
func (c *cam) shadow(f *camera.Frame, cfg policy.Config, in policy.Input, d policy.Decision, res inference.Result, ran bool) {
	p := c.p
	active := lifecycle.Outcome{Label: res.TopLabel, Automated: d.Verdict != policy.Defer && d.Actuate, Latency: res.Timings.Run}
	if !ran {
		active.Err = fmt.Errorf("active model: %s", in.Failure)
	}
	if p.opts.Models.Shadow() == nil || !ran || !f.HasImage() {
		p.opts.Models.Observe(active, nil)
		return
	}
	select {
	case p.shadowQ <- shadowJob{img: f.Mat.Clone(), cfg: cfg, in: in, active: active}:
	default:
		p.m.shadowSkipped.Inc()
	}
}

// runShadow runs the candidate model on the frames it is handed.
func (p *Pipeline) runShadow() {
	defer p.shadowWG.Done()
	for j := range p.shadowQ {
		p.shadowOne(j)
		j.img.Close()
	}
}

func (p *Pipeline) shadowOne(j shadowJob) {
	eng := p.opts.Models.Shadow()
	if eng == nil {
		return
	}
	ctx, cancel := context.WithTimeout(p.work, p.opts.Timeout)
	defer cancel()
	res, err := eng.Run(ctx, inference.Frame{Image: j.img})
	if errors.Is(err, inference.ErrClosed) {
		return // the candidate was just promoted or dropped
	}
	out := lifecycle.Outcome{Err: err}
	if err == nil {
		// Would the policy have decided this part by itself with the
		// candidate's output and the candidate's own thresholds?
		man := eng.Manifest()
		cfg := j.cfg
		cfg.PassThreshold, cfg.RejectThreshold, cfg.ClassReject = man.Thresholds.Pass, man.Thresholds.Reject, man.Thresholds.PerClass
		in := j.in
		in.Labels, in.Good = res.Labels, man.GoodLabels
		in.Probs = make([]float64, len(res.Scores))
		for i, s := range res.Scores {
			in.Probs[i] = float64(s)
		}
		if cfg.Level < policy.Partial {
			cfg.Level = policy.Partial // what it would do once trusted
		}
		d := policy.Decide(cfg, in)
		out = lifecycle.Outcome{Label: res.TopLabel, Automated: d.Verdict != policy.Defer, Latency: res.Timings.Run}
	}
	p.opts.Models.Observe(j.active, &out)
}
