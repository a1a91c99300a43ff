package output

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Output is one destination for verdicts.
type Output interface {
	// Name identifies the output in logs and metrics ("mqtt", "webhook", "jsonl").
	Name() string
	// Actuating outputs drive the line (PLC, reject gate): they get only
	// messages whose Actuate is set.
	Actuating() bool
	// Send delivers one message; it may block up to its own timeout.
	Send(ctx context.Context, m *Message) error
	// Close flushes and releases the output.
	Close() error
}

// Counters are one output's delivery counts.
type Counters struct {
	Sent, Failed, Dropped uint64
	Queued                int
}

// Hooks observe deliveries (metrics); every field may be nil.
type Hooks struct {
	Sent    func(output string)
	Failed  func(output string, err error)
	Dropped func(output string)
}

// Dispatcher fans messages out to outputs without blocking the caller.
type Dispatcher struct {
	log   *slog.Logger
	hooks Hooks
	lanes []*lane
	wg    sync.WaitGroup

	mu     sync.RWMutex
	closed bool
}

type lane struct {
	out                   Output
	q                     chan *Message
	sent, failed, dropped atomic.Uint64
}

// NewDispatcher starts one goroutine per output with a queue of queueLen
// messages (default 1024).
func NewDispatcher(outs []Output, queueLen int, log *slog.Logger, hooks Hooks) *Dispatcher {
	if queueLen <= 0 {
		queueLen = 1024
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{log: log.With("component", "output"), hooks: hooks}
	for _, o := range outs {
		l := &lane{out: o, q: make(chan *Message, queueLen)}
		d.lanes = append(d.lanes, l)
		d.wg.Add(1)
		go d.run(l)
	}
	return d
}

// Send enqueues m for every output that takes it and returns at once. A
// full queue drops the message for that output (counted and logged).
func (d *Dispatcher) Send(m *Message) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return
	}
	for _, l := range d.lanes {
		if l.out.Actuating() && !m.Actuate {
			continue
		}
		select {
		case l.q <- m:
		default:
			n := l.dropped.Add(1)
			if n == 1 || n%1000 == 0 {
				d.log.Warn("output queue full: verdict dropped for this output", "output", l.out.Name(), "dropped", n)
			}
			if d.hooks.Dropped != nil {
				d.hooks.Dropped(l.out.Name())
			}
		}
	}
}

func (d *Dispatcher) run(l *lane) {
	defer d.wg.Done()
	var lastErr string
	for m := range l.q {
		err := l.out.Send(context.Background(), m)
		if err != nil {
			l.failed.Add(1)
			if d.hooks.Failed != nil {
				d.hooks.Failed(l.out.Name(), err)
			}
			// Log a changed error once, not one line per part.
			if err.Error() != lastErr {
				d.log.Warn("output failed", "output", l.out.Name(), "err", err)
				lastErr = err.Error()
			}
			continue
		}
		if lastErr != "" {
			d.log.Info("output recovered", "output", l.out.Name())
			lastErr = ""
		}
		l.sent.Add(1)
		if d.hooks.Sent != nil {
			d.hooks.Sent(l.out.Name())
		}
	}
}

// Counters reports each output's counts by name.
func (d *Dispatcher) Counters() map[string]Counters {
	c := make(map[string]Counters, len(d.lanes))
	for _, l := range d.lanes {
		c[l.out.Name()] = Counters{Sent: l.sent.Load(), Failed: l.failed.Load(), Dropped: l.dropped.Load(), Queued: len(l.q)}
	}
	return c
}

// Close stops taking messages, delivers what is queued (until ctx is done)
// and closes every output.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	for _, l := range d.lanes {
		close(l.q)
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("outputs: queued verdicts not all delivered before shutdown: %w", ctx.Err()))
	}
	for _, l := range d.lanes {
		if err := l.out.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close output %s: %w", l.out.Name(), err))
		}
	}
	return errors.Join(errs...)
}
