package camera

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/linesight/linesight/internal/validate"
)

// Camera is one configured camera at work: it opens its Source, captures
// free-running or per triggered part, crops and rotates, and hands frames
// to inference through a bounded Queue with the camera's policy. When the
// source fails or stalls it reports the outage, reopens it with capped
// exponential backoff and carries on; triggered parts that arrive
// meanwhile are passed on flagged late, never dropped.
type Camera struct {
	spec Spec
	opts Options
	log  *slog.Logger
	q    *Queue
	cnt  counters
	seq  atomic.Uint64
	open func() (Source, error)
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	kind string

	pmu     sync.Mutex
	pending []Part
	pend    error // set by finish: later triggers fail with it
	pnotify chan struct{}
}

// Part is one triggered part: the line's part ID and when its verdict is due.
type Part struct {
	ID string
	// Deadline is when the verdict is due; zero means Received plus the
	// camera's trigger.deadline.
	Deadline time.Time
	// Received is when the trigger arrived; zero means now.
	Received time.Time
}

// MaxPartIDLen bounds a part ID's length in bytes.
const MaxPartIDLen = 128

// Backoff is the wait before reopen attempt number attempt (0 first):
// r.Initial doubled per attempt, capped at r.Max.
func Backoff(r RetrySpec, attempt int) time.Duration {
	if r.Initial <= 0 {
		return r.Max
	}
	d := float64(r.Initial) * math.Pow(2, float64(attempt))
	if d >= float64(r.Max) || math.IsInf(d, 0) {
		return r.Max
	}
	return time.Duration(d)
}

// Open validates spec and starts the camera. A file, folder or synthetic
// source that cannot be opened is an error (fix the configuration); a
// device or stream that cannot be opened yet is reported as down and
// retried in the background, since cameras are plugged in and networks
// come up after the agent starts. Close stops the camera.
func Open(spec Spec, opts Options) (*Camera, error) {
	v := validate.New("camera")
	spec.Validate(v)
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("camera %s: invalid configuration:\n%w", spec.ID, err)
	}
	return openWith(spec, opts, func() (Source, error) { return OpenSource(spec, opts) })
}

func openWith(spec Spec, opts Options, open func() (Source, error)) (*Camera, error) {
	c := &Camera{spec: spec, opts: opts, log: opts.logger(spec.ID), q: NewQueue(spec.Queue.Size, spec.Queue.Policy),
		open: open, kind: spec.Source.Kind, pnotify: make(chan struct{}, 1)}
	src, err := open()
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		c.log.Warn("camera not available yet; retrying in the background", "err", err)
		c.cnt.outages.Add(1)
		c.event(Event{Kind: EventDown, Err: err})
	} else {
		c.up(false)
	}
	c.ctx, c.stop = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.run(src)
	return c, nil
}

// ID is the camera's ID.
func (c *Camera) ID() string { return c.spec.ID }

// Spec returns the camera's configuration.
func (c *Camera) Spec() Spec { return c.spec }

// Next returns the next frame for inference, which the caller then owns
// and must Close. It blocks until a frame is queued or ctx is done. A frame
// with Late set is a triggered part that could not be captured or
// inspected in time: give it the fail-safe verdict (it may have no image).
// After Close, or when a finite source is finished, Next still returns the
// frames already queued, then ErrClosed or io.EOF.
func (c *Camera) Next(ctx context.Context) (*Frame, error) { return c.q.Pop(ctx) }

// Trigger asks for one frame of part p. It does not block: the part is
// captured by the camera's goroutine. It fails with ErrBadTrigger for an
// empty or unprintable part ID, ErrNotTriggered when the camera runs free,
// ErrClosed after Close, and io.EOF when a finite source is finished.
// Once accepted, the part always comes out of Next, late if need be.
func (c *Camera) Trigger(p Part) error {
	if err := checkPartID(p.ID); err != nil {
		return err
	}
	if c.spec.Trigger.Mode != TriggerExternal {
		return fmt.Errorf("camera %s: %w (trigger.mode is %s)", c.spec.ID, ErrNotTriggered, c.spec.Trigger.Mode)
	}
	if p.Received.IsZero() {
		p.Received = time.Now()
	}
	if p.Deadline.IsZero() {
		p.Deadline = p.Received.Add(c.spec.Trigger.Deadline)
	}
	c.pmu.Lock()
	if err := c.pend; err != nil {
		c.pmu.Unlock()
		return fmt.Errorf("camera %s: %w", c.spec.ID, err)
	}
	c.pending = append(c.pending, p)
	c.pmu.Unlock()
	c.cnt.triggers.Add(1)
	c.event(Event{Kind: EventTriggered, PartID: p.ID})
	select {
	case c.pnotify <- struct{}{}:
	default:
	}
	return nil
}

func checkPartID(id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("%w: part_id is required", ErrBadTrigger)
	}
	if len(id) > MaxPartIDLen {
		return fmt.Errorf("%w: part_id is %d bytes; at most %d allowed", ErrBadTrigger, len(id), MaxPartIDLen)
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: part_id %q has unprintable characters", ErrBadTrigger, id)
		}
	}
	return nil
}

// Stats returns the camera's counters, for metrics.
func (c *Camera) Stats() Stats {
	return Stats{
		Frames: c.cnt.frames.Load(), DecodeErrors: c.cnt.decode.Load(), Dropped: c.cnt.dropped.Load(),
		Late: c.cnt.late.Load() + c.q.Late(), Triggers: c.cnt.triggers.Load(), Outages: c.cnt.outages.Load(),
		Stalls: c.cnt.stalls.Load(), Retries: c.cnt.retries.Load(), Recoveries: c.cnt.recoveries.Load(),
		Up: c.cnt.up.Load(), QueueLen: c.q.Len(),
	}
}

// Close stops capture and waits for the camera's goroutines, including a
// capture call already inside OpenCV (for a network stream, at most
// FFmpeg's read timeout). Triggered parts not yet captured are queued late
// ("camera closed"). Frames still queued stay readable with Next until it
// returns ErrClosed; call Discard to release them instead. Safe to call
// more than once.
func (c *Camera) Close() error {
	c.stop()
	c.wg.Wait()
	return nil
}

// Discard releases frames still queued (after Close, for a consumer that
// will not drain them) and returns how many there were.
func (c *Camera) Discard() int { return c.q.Discard() }

func (c *Camera) event(e Event) {
	if c.opts.OnEvent == nil {
		return
	}
	e.Time = time.Now()
	e.CameraID = c.spec.ID
	c.opts.OnEvent(e)
}

func (c *Camera) up(recovered bool) {
	c.cnt.up.Store(true)
	if recovered {
		c.cnt.recoveries.Add(1)
	}
	c.event(Event{Kind: EventUp})
}

// run is the capture goroutine: serve the source, and when it fails,
// reopen it with backoff, until Close or the end of a finite source.
func (c *Camera) run(src Source) {
	defer c.wg.Done()
	for {
		if src == nil {
			if src = c.reopen(); src == nil {
				c.finish(ErrClosed, "camera closed")
				return
			}
		}
		err := c.serve(src)
		c.release(src)
		src = nil
		switch {
		case c.ctx.Err() != nil:
			c.finish(ErrClosed, "camera closed")
			return
		case errors.Is(err, io.EOF):
			c.log.Info("source finished", "err", err)
			c.cnt.up.Store(false)
			c.event(Event{Kind: EventEnd, Err: err})
			c.finish(io.EOF, "source finished")
			return
		default:
			c.cnt.up.Store(false)
			c.cnt.outages.Add(1)
			kind := EventDown
			if errors.Is(err, ErrStalled) {
				kind = EventStalled
				c.cnt.stalls.Add(1)
			}
			c.log.Warn("camera down; reopening with backoff", "err", err, "initial", c.spec.Retry.Initial, "max", c.spec.Retry.Max)
			c.event(Event{Kind: kind, Err: err})
		}
	}
}

// release closes a source; a live one in the background, since its Close
// may wait for a capture call stuck inside OpenCV.
func (c *Camera) release(src Source) {
	if !src.Info().Live {
		src.Close()
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		src.Close()
	}()
}

// finish passes on pending parts as late, refuses further triggers and
// closes the queue.
func (c *Camera) finish(end error, reason string) {
	c.pmu.Lock()
	c.pend = end
	parts := c.pending
	c.pending = nil
	c.pmu.Unlock()
	for _, p := range parts {
		c.deliver(nil, &p, reason)
	}
	c.q.Close(end)
}

// reopen opens the source again with capped exponential backoff, passing
// on triggered parts as late meanwhile. It returns nil on Close.
func (c *Camera) reopen() Source {
	for attempt := 0; ; attempt++ {
		t := time.NewTimer(Backoff(c.spec.Retry, attempt))
	waiting:
		for {
			select {
			case <-c.ctx.Done():
				t.Stop()
				return nil
			case <-c.pnotify:
				c.flushLate("camera unavailable")
			case <-t.C:
				break waiting
			}
		}
		src, err := c.openAsync()
		if c.ctx.Err() != nil {
			return nil
		}
		if err == nil {
			c.log.Info("camera recovered", "attempts", attempt+1)
			c.up(true)
			return src
		}
		c.cnt.retries.Add(1)
		next := Backoff(c.spec.Retry, attempt+1)
		c.log.Debug("reopen failed", "attempt", attempt+1, "next_in", next, "err", err)
		c.event(Event{Kind: EventRetry, Err: err, Attempt: attempt + 1, Backoff: next})
	}
}

// openAsync opens the source in a goroutine so that triggers are still
// answered (late) and Close is not held up while a stream takes long to
// connect. On Close it returns at once; the late result is closed.
func (c *Camera) openAsync() (Source, error) {
	type result struct {
		src Source
		err error
	}
	ch := make(chan result, 1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		s, err := c.open()
		ch <- result{s, err}
	}()
	for {
		select {
		case r := <-ch:
			return r.src, r.err
		case <-c.pnotify:
			c.flushLate("camera unavailable")
		case <-c.ctx.Done():
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				if r := <-ch; r.src != nil {
					r.src.Close()
				}
			}()
			return nil, ErrClosed
		}
	}
}

// takePending removes and returns the parts waiting for capture.
func (c *Camera) takePending() []Part {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	p := c.pending
	c.pending = nil
	return p
}

// putBack returns parts to the front of the pending list.
func (c *Camera) putBack(parts []Part) {
	if len(parts) == 0 {
		return
	}
	c.pmu.Lock()
	c.pending = append(parts, c.pending...)
	c.pmu.Unlock()
}

// flushLate passes on every pending part as late.
func (c *Camera) flushLate(reason string) {
	for _, p := range c.takePending() {
		c.deliver(nil, &p, reason)
	}
}

// serve captures from src until it fails, ends, or the camera closes.
func (c *Camera) serve(src Source) error {
	if c.spec.Trigger.Mode == TriggerExternal {
		return c.serveTriggered(src)
	}
	var tick <-chan time.Time
	if fps := c.spec.Trigger.FPS; fps > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / fps))
		defer t.Stop()
		tick = t.C
	}
	for {
		if tick != nil {
			select {
			case <-tick:
			case <-c.ctx.Done():
				return c.ctx.Err()
			}
		}
		f, err := c.read(src, time.Time{})
		if err != nil {
			if errors.Is(err, ErrDecode) {
				c.decodeError(err)
				continue
			}
			return err
		}
		c.deliver(f, nil, "")
	}
}

// serveTriggered captures one frame per part. Between parts a live source
// is read now and then (the frame released) so the watchdog sees an outage
// before the next part arrives.
func (c *Camera) serveTriggered(src Source) error {
	var idle <-chan time.Time
	if src.Info().Live && c.spec.Stall > 0 {
		t := time.NewTicker(max(c.spec.Stall/2, 50*time.Millisecond))
		defer t.Stop()
		idle = t.C
	}
	for {
		select {
		case <-c.ctx.Done():
			return c.ctx.Err()
		case <-idle:
			f, err := c.read(src, time.Time{})
			f.Close()
			if err != nil && !errors.Is(err, ErrDecode) {
				return err
			}
			continue
		case <-c.pnotify:
		}
		parts := c.takePending()
		for i := range parts {
			p := &parts[i]
			if time.Now().After(p.Deadline) {
				c.deliver(nil, p, "deadline passed before capture")
				continue
			}
			f, err := c.readFor(src, p)
			if err == nil {
				c.deliver(f, p, "")
				continue
			}
			switch {
			case errors.Is(err, ErrDecode):
				c.decodeError(err)
				c.deliver(nil, p, "image could not be decoded")
			case errors.Is(err, errPartDeadline):
				c.deliver(nil, p, "deadline passed before capture")
			default:
				// The source failed: this part and the rest wait for the
				// outage handling, which passes them on late.
				c.putBack(parts[i:])
				return err
			}
		}
	}
}

var errPartDeadline = errors.New("part deadline passed before a frame was captured")

// readFor reads the frame for part p: from a live source, the first frame
// captured after the trigger arrived; before p's deadline.
func (c *Camera) readFor(src Source, p *Part) (*Frame, error) {
	live := src.Info().Live
	for {
		f, err := c.read(src, p.Deadline)
		if err != nil {
			return nil, err
		}
		if live && f.Time.Before(p.Received) {
			f.Close()
			continue
		}
		return f, nil
	}
}

// read reads one frame, bounded by the stall timeout for a live source and
// by limit when set.
func (c *Camera) read(src Source, limit time.Time) (*Frame, error) {
	ctx := c.ctx
	if src.Info().Live && c.spec.Stall > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.spec.Stall, ErrStalled)
		defer cancel()
	}
	if !limit.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, limit, errPartDeadline)
		defer cancel()
	}
	f, err := src.Read(ctx)
	if err != nil && c.ctx.Err() == nil && ctx.Err() != nil {
		if cause := context.Cause(ctx); errors.Is(cause, ErrStalled) {
			return nil, fmt.Errorf("camera %s: no frame for %s: %w", c.spec.ID, c.spec.Stall, ErrStalled)
		} else if errors.Is(cause, errPartDeadline) {
			return nil, errPartDeadline
		}
	}
	return f, err
}

func (c *Camera) decodeError(err error) {
	n := c.cnt.decode.Add(1)
	if n <= 10 || n%100 == 0 {
		c.log.Warn("frame skipped", "err", err, "decode_errors", n)
	}
	c.event(Event{Kind: EventDecode, Err: err})
}

// deliver transforms f and queues it; with f nil, it queues part p late
// for reason.
func (c *Camera) deliver(f *Frame, p *Part, reason string) {
	if f != nil {
		if err := Transform(f, c.spec.ROI, c.spec.Rotate); err != nil {
			f.Close()
			c.decodeError(fmt.Errorf("camera %s: %w", c.spec.ID, err))
			if p == nil {
				return
			}
			f, reason = nil, "roi outside the frame"
		}
	}
	if f == nil {
		f = &Frame{Time: time.Now(), Late: true, LateReason: reason, Meta: map[string]string{"kind": c.kind}}
	}
	f.CameraID = c.spec.ID
	f.Seq = c.seq.Add(1)
	var part string
	if p != nil {
		f.PartID, f.Triggered, f.Deadline = p.ID, p.Received, p.Deadline
		part = p.ID
	}
	late := f.Late
	// f belongs to the queue from here on: do not touch it.
	res, err := c.q.Push(f)
	if err != nil {
		return // closed: only after finish, which runs on this goroutine
	}
	c.cnt.frames.Add(1)
	if res.Dropped > 0 {
		c.cnt.dropped.Add(uint64(res.Dropped))
		c.event(Event{Kind: EventDropped})
	}
	if late {
		c.cnt.late.Add(1)
	}
	if late || res.Late {
		r := reason
		if res.Late {
			r = "queue full"
		}
		c.log.Warn("part passed on late", "part", part, "reason", r)
		c.event(Event{Kind: EventLate, PartID: part, Err: errors.New(r)})
	}
}
