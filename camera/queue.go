package camera

import (
	"context"
	"sync"
	"time"
)

// Queue is the bounded hand-off between capture and inference, with the
// camera's policy (queue.policy):
//
//   - drop-oldest (free-run): when Size frames wait, the oldest is released
//     to make room for the newest; Push reports the drop so it is counted.
//   - fail-safe (triggered parts): nothing is dropped. At most Size waiting
//     frames keep their image. When that many are waiting, images of parts
//     whose deadline has already passed are released first (those parts
//     are flagged late with reason "deadline"); if there is still no room
//     the new part keeps its place in line, flagged late with reason
//     "queue full", without its image. Pop flags any part whose deadline
//     has passed by the time it is taken. A late part is passed on so the
//     policy gives it the fail-safe verdict and the store records it.
//
// Push never blocks; Pop blocks until a frame is ready. A Queue is safe for
// concurrent use.
type Queue struct {
	size   int
	policy string
	now    func() time.Time

	mu     sync.Mutex
	late   uint64 // frames this queue flagged late
	items  []*Frame
	images int // waiting frames that hold an image
	end    error
	notify chan struct{}
}

// PushResult says what Push did besides queueing the frame.
type PushResult struct {
	Dropped int  // drop-oldest: frames released to make room
	Late    bool // fail-safe: the pushed frame was flagged late (queue full)
	Expired int  // fail-safe: waiting overdue frames whose images were released
}

// NewQueue returns a queue of size frames (at least 1) with policy
// DropOldest or FailSafe (anything else is treated as FailSafe, which
// never loses a part).
func NewQueue(size int, policy string) *Queue {
	if size < 1 {
		size = 1
	}
	return &Queue{size: size, policy: policy, now: time.Now, notify: make(chan struct{}, 1)}
}

// Push hands f to the queue, which owns it from now on. After Close it
// releases f and returns ErrClosed.
func (q *Queue) Push(f *Frame) (PushResult, error) {
	var res PushResult
	q.mu.Lock()
	if q.end != nil {
		q.mu.Unlock()
		f.Close()
		return res, ErrClosed
	}
	if f.HasImage() && q.images >= q.size {
		if q.policy == DropOldest {
			for q.images >= q.size {
				i := q.oldestWithImage()
				old := q.items[i]
				q.items = append(q.items[:i], q.items[i+1:]...)
				q.images--
				old.Close()
				res.Dropped++
			}
		} else {
			now := q.now()
			for _, w := range q.items {
				if q.images < q.size {
					break
				}
				if w.HasImage() && w.Overdue(now) {
					w.Close()
					q.images--
					q.markLate(w, "deadline")
					res.Expired++
				}
			}
			if q.images >= q.size {
				f.Close()
				q.markLate(f, "queue full")
				res.Late = true
			}
		}
	}
	if f.HasImage() {
		q.images++
	}
	q.items = append(q.items, f)
	q.mu.Unlock()
	q.signal()
	return res, nil
}

func (q *Queue) oldestWithImage() int {
	for i, f := range q.items {
		if f.HasImage() {
			return i
		}
	}
	return 0
}

// markLate flags f late unless it already is; q.mu is held.
func (q *Queue) markLate(f *Frame, reason string) {
	if !f.Late {
		f.Late, f.LateReason = true, reason
		q.late++
	}
}

// Late is how many frames the queue itself has flagged late (deadline
// passed while waiting, or no room for the image).
func (q *Queue) Late() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.late
}

func (q *Queue) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// Pop returns the oldest waiting frame, which the caller then owns. It
// blocks until there is one or ctx is done. A frame whose deadline has
// passed is flagged late (reason "deadline"). Once the queue is closed and
// empty, Pop returns the error Close was given (ErrClosed, or io.EOF when
// a finite source ended).
func (q *Queue) Pop(ctx context.Context) (*Frame, error) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			f := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			if f.HasImage() {
				q.images--
			}
			if f.Overdue(q.now()) {
				q.markLate(f, "deadline")
			}
			more := len(q.items) > 0 || q.end != nil
			q.mu.Unlock()
			if more {
				q.signal()
			}
			return f, nil
		}
		end := q.end
		q.mu.Unlock()
		if end != nil {
			q.signal()
			return nil, end
		}
		select {
		case <-q.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Len is the number of waiting frames.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Close stops Push. Waiting frames stay for Pop, which returns end (nil
// means ErrClosed) after the last one. Later calls do nothing.
func (q *Queue) Close(end error) {
	if end == nil {
		end = ErrClosed
	}
	q.mu.Lock()
	if q.end == nil {
		q.end = end
	}
	q.mu.Unlock()
	q.signal()
}

// Discard releases every waiting frame and returns how many there were,
// for a consumer that stops without draining.
func (q *Queue) Discard() int {
	q.mu.Lock()
	items := q.items
	q.items, q.images = nil, 0
	q.mu.Unlock()
	for _, f := range items {
		f.Close()
	}
	return len(items)
}
