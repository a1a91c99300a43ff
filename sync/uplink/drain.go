package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/sync/wire"
)

// drain is the outbox loop: take acks, resend what timed out, publish the
// next pending entries within the window and the rate limit.
func (u *Uplink) drain() {
	var (
		after    uint64
		inflight = map[string]time.Time{}
		// progress is when the collector last acknowledged something: an
		// entry is overdue when AckTimeout passed both since it was sent
		// and since then, so a slow collector working through a full window
		// is waited for, while a lost message (no acks at all) is resent.
		progress = time.Now()
		lim      = newLimiter(u.o.DrainRate)
		poll     = time.NewTicker(u.o.PollEvery)
	)
	defer poll.Stop()
	restart := func(why string) {
		if len(inflight) > 0 || after > 0 {
			u.resent.Add(1)
			u.log.Debug("outbox: sending again from the oldest pending entry", "why", why, "in_flight", len(inflight))
		}
		after = 0
		clear(inflight)
		u.framed.Store(false)
	}
	for {
		select {
		case <-u.ctx.Done():
			return
		case <-u.wake:
		case <-poll.C:
		}
		// Acknowledgements first: they shrink the window. The collector
		// has made these entries durable, so they leave the window now and
		// the store commit (an fsync) runs on the committer goroutine
		// while the next entries go out.
		if acks := u.acks.takeAll(); len(acks) > 0 {
			var ids []string
			for _, a := range acks {
				ids = append(ids, a.IDs...)
				for _, r := range a.Rejected {
					u.log.Error("collector refused an outbox entry for good; dropping it", "id", r.ID, "err", r.Error)
					u.rejected.Add(1)
					ids = append(ids, r.ID)
				}
			}
			u.commits.push(ids)
			progress = time.Now()
			for _, id := range ids {
				delete(inflight, id)
			}
		}
		if u.reconnected.Swap(false) {
			restart("reconnected")
			progress = time.Now()
		}
		now := time.Now()
		for _, at := range inflight {
			if now.Sub(at) > u.o.AckTimeout && now.Sub(progress) > u.o.AckTimeout {
				restart("ack timeout")
				break
			}
		}
		u.inflight.Store(int64(len(inflight)))
		if !u.cli.IsConnectionOpen() {
			continue
		}
		for len(inflight) < u.o.Window && u.ctx.Err() == nil {
			entries, err := u.o.Outbox.Pending(after, min(u.o.Window-len(inflight), 64))
			if err != nil {
				u.log.Error("outbox read", "err", err)
				break
			}
			if len(entries) == 0 {
				break
			}
			samples := u.samples(entries, inflight)
			for i, e := range entries {
				after = e.Seq
				if _, ok := inflight[e.ID]; ok {
					continue
				}
				topic, payload, err := u.message(e, samples[i])
				if err != nil {
					u.log.Warn("outbox entry cannot be sent yet", "id", e.ID, "err", err)
					continue
				}
				if err := lim.wait(u.ctx); err != nil {
					return
				}
				u.cli.Publish(topic, 1, false, payload) // completion is the collector's ack, not PUBACK
				u.sent.Add(1)
				inflight[e.ID] = time.Now()
			}
			u.inflight.Store(int64(len(inflight)))
			if len(u.wake) > 0 || !u.cli.IsConnectionOpen() {
				break // acks or a reconnect are waiting
			}
		}
	}
}

// commit is the committer goroutine: it removes the entries the collector
// acknowledged from the outbox, everything waiting in one store
// transaction. A failed commit is retried (the acks stay valid: the
// collector has the samples); until it succeeds the entries stay in the
// outbox and a restart of the drain sends them again, which the collector
// answers as duplicates.
func (u *Uplink) commit() {
	var retry []string
	for {
		ids, ok := u.commits.pop()
		if !ok {
			return
		}
		ids = append(retry, ids...)
		for _, more := range u.commits.takeAll() {
			ids = append(ids, more...)
		}
		retry = nil
		n, err := u.o.Outbox.Ack(u.ctx, ids...)
		if err != nil {
			if u.ctx.Err() != nil {
				return
			}
			u.log.Error("outbox ack; retrying", "n", len(ids), "err", err)
			retry = ids
			select {
			case <-u.ctx.Done():
				return
			case <-time.After(time.Second):
			}
			u.commits.push(nil)
			continue
		}
		u.acked.Add(uint64(n))
	}
}

// samples reads, in one call, what the label entries not yet in flight
// need to travel as samples; the result is indexed like entries.
func (u *Uplink) samples(entries []store.OutboxEntry, inflight map[string]time.Time) []*store.OutboxSample {
	out := make([]*store.OutboxSample, len(entries))
	var labels []store.OutboxEntry
	var at []int
	for i, e := range entries {
		if _, ok := inflight[e.ID]; !ok && e.Kind == store.KindLabel {
			labels, at = append(labels, e), append(at, i)
		}
	}
	if len(labels) == 0 {
		return out
	}
	for j, s := range u.o.Outbox.Samples(labels) {
		out[at[j]] = &s
	}
	return out
}

// message builds the wire message of an outbox entry; s is what a label
// entry travels with (from samples).
func (u *Uplink) message(e store.OutboxEntry, s *store.OutboxSample) (string, []byte, error) {
	env := wire.Envelope{ID: e.ID, Device: u.o.Device, Time: e.Time.UTC(), Ack: true}
	switch e.Kind {
	case store.KindLabel:
		if s == nil {
			return "", nil, errors.New("sample not read")
		}
		if s.Err != nil {
			return "", nil, s.Err
		}
		env.Type = wire.TypeSample
		if u.framed.Load() {
			b, err := wire.EncodeSampleFrame(env, u.sample(s))
			if err == nil {
				u.frames.Add(1)
			}
			return u.Topic(wire.KindSamples), b, err
		}
		b, err := wire.Encode(env, u.sample(s))
		return u.Topic(wire.KindSamples), b, err
	case store.KindDecision:
		var d wire.Decision
		if err := json.Unmarshal(e.Payload, &d); err != nil {
			return "", nil, fmt.Errorf("decision payload: %w", err)
		}
		if !wire.ValidID(d.Camera) {
			return "", nil, fmt.Errorf("decision camera %q", d.Camera)
		}
		env.Type = wire.TypeDecision
		b, err := wire.Encode(env, d)
		return u.DecisionTopic(d.Camera), b, err
	case store.KindEvent:
		env.Type = wire.TypeEvent
		b, err := wire.Encode(env, e.Payload)
		return u.Topic(wire.KindEvents), b, err
	case store.KindTelemetry:
		env.Type = wire.TypeTelemetry
		b, err := wire.Encode(env, e.Payload)
		return u.Topic(wire.KindTelemetry), b, err
	}
	return "", nil, fmt.Errorf("unknown outbox kind %q", e.Kind)
}

// sample joins a label with its inspection record and JPEG.
func (u *Uplink) sample(o *store.OutboxSample) *wire.Sample {
	l := &o.Label
	s := &wire.Sample{
		LabelID: l.ID, ItemID: l.ItemID, Camera: l.Camera, Class: l.Class, By: l.By, At: l.At.UTC(),
		Revision: l.Revision, Supersedes: l.Supersedes, Note: l.Note, Suggested: l.Suggested,
		ModelVerdict: string(l.ModelVerdict), Model: wire.ModelRef{Name: l.Model.Name, Version: l.Model.Version},
		Inspection: decision(o.Inspection),
	}
	if o.JPEG == nil {
		u.log.Warn("labelled inspection has no image; sending the label without it", "id", o.Inspection.ID)
	} else {
		s.Image = wire.NewImage(o.JPEG)
	}
	return s
}

// decision is the wire form of an inspection record: the fields the two
// share by JSON name, as decoding the record's JSON into wire.Decision
// gives them (TestDecisionOf holds the two together).
func decision(in *store.Inspection) wire.Decision {
	d := wire.Decision{
		ID: in.ID, Time: in.Time, Camera: in.Camera, PartID: in.PartID,
		Model: wire.ModelRef{Name: in.Model.Name, Version: in.Model.Version}, Top: in.Top,
		Verdict: string(in.Verdict), Reason: string(in.Reason), Level: in.Level.String(),
	}
	if len(in.Scores) > 0 {
		d.Scores = make([]wire.Score, len(in.Scores))
		for i, sc := range in.Scores {
			d.Scores[i] = wire.Score{Label: sc.Label, P: sc.P}
		}
	}
	return d
}

// limiter is a token bucket: rate per second, a burst of a tenth of a second.
type limiter struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newLimiter(rate float64) *limiter {
	b := max(rate/10, 1)
	return &limiter{rate: rate, burst: b, tokens: b, last: time.Now()}
}

func (l *limiter) wait(ctx context.Context) error {
	for {
		now := time.Now()
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
		l.last = now
		if l.tokens >= 1 {
			l.tokens--
			return nil
		}
		d := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// queue is an unbounded FIFO: push never blocks (paho's callbacks use it).
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	ready  chan struct{}
	closed bool
}

func newQueue[T any]() *queue[T] { return &queue[T]{ready: make(chan struct{}, 1)} }

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop waits for an item; false once closed.
func (q *queue[T]) pop() (T, bool) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			var zero T
			return zero, false
		}
		if len(q.items) > 0 {
			v := q.items[0]
			var zero T
			q.items[0] = zero
			q.items = q.items[1:]
			q.mu.Unlock()
			return v, true
		}
		q.mu.Unlock()
		<-q.ready
	}
}

func (q *queue[T]) takeAll() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	v := q.items
	q.items = nil
	return v
}

func (q *queue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}
