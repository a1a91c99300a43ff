package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/linesight/linesight/agent/policy"
	bolt "go.etcd.io/bbolt"
)

// QueueItem is one part waiting for an inspector, oldest first.
type QueueItem struct {
	ID     string        `json:"id"`
	Time   time.Time     `json:"time"`
	Camera string        `json:"camera"`
	Reason policy.Reason `json:"reason"`
	Audit  bool          `json:"audit,omitempty"` // an automatic decision sampled for review
	// LeaseBy holds the item until LeaseUntil; empty when free.
	LeaseBy    string    `json:"lease_by,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

func (q QueueItem) leasedToOther(by string, now time.Time) bool {
	return q.LeaseBy != "" && q.LeaseBy != by && now.Before(q.LeaseUntil)
}

// QueueFilter selects queue items; empty fields match everything.
type QueueFilter struct {
	Camera string
	Reason policy.Reason
	// Audit: nil both, true only audit samples, false only deferred items.
	Audit *bool
}

func (f QueueFilter) match(q QueueItem) bool {
	return (f.Camera == "" || q.Camera == f.Camera) &&
		(f.Reason == "" || q.Reason == f.Reason) &&
		(f.Audit == nil || *f.Audit == q.Audit)
}

// Label is an inspector's verdict on one part.
type Label struct {
	// ID is "<inspection ID>-l<revision>"; the outbox entry is "label-"+ID.
	ID       string    `json:"id"`
	ItemID   string    `json:"item_id"`
	Camera   string    `json:"camera"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Class    string    `json:"class"`
	Note     string    `json:"note,omitempty"`
	Revision int       `json:"revision"`
	// What the model suggested: its top class and its own would-be verdict.
	Suggested    string         `json:"suggested,omitempty"`
	ModelVerdict policy.Verdict `json:"model_verdict,omitempty"`
	Model        ModelRef       `json:"model"`
	// Supersedes is the label a correction replaces; Previous is kept so
	// that undoing a correction restores it.
	Supersedes string `json:"supersedes,omitempty"`
	Previous   *Label `json:"previous,omitempty"`
}

// OutboxID is the ID of the label's outbox entry.
func (l *Label) OutboxID() string { return "label-" + l.ID }

// LabelInput is what the UI sends.
type LabelInput struct {
	ItemID string
	By     string
	Class  string
	Note   string
}

// lease is an inspector's hold on a review item (in memory; see Store).
type lease struct {
	by    string
	until time.Time
}

// withLease fills q's lease fields from the lease table; leaseMu is held.
func (s *Store) withLease(q QueueItem, now time.Time) QueueItem {
	q.LeaseBy, q.LeaseUntil = "", time.Time{}
	if l, ok := s.leases[q.ID]; ok && now.Before(l.until) {
		q.LeaseBy, q.LeaseUntil = l.by, l.until
	}
	return q
}

// pruneLeases drops expired leases; leaseMu is held.
func (s *Store) pruneLeases(now time.Time) {
	for id, l := range s.leases {
		if !now.Before(l.until) {
			delete(s.leases, id)
		}
	}
}

// Queue lists up to limit queue items matching f, oldest first, with their
// leases. It is a read: use Next or Claim to take one.
func (s *Store) Queue(f QueueFilter, limit int) ([]QueueItem, error) {
	var out []QueueItem
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bQueue).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			var q QueueItem
			if err := json.Unmarshal(v, &q); err != nil {
				return fmt.Errorf("decode queue %s: %w", k, err)
			}
			if f.match(q) {
				out = append(out, q)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	now := s.opts.Now()
	s.leaseMu.Lock()
	for i := range out {
		out[i] = s.withLease(out[i], now)
	}
	s.leaseMu.Unlock()
	return out, nil
}

// Next leases the oldest queue item that matches f and is free (or already
// leased to by, or whose lease expired) to inspector by for leaseFor (0:
// Options.LeaseFor), and returns it with its inspection. Two inspectors
// calling Next at once get different items. ErrQueueEmpty when none is free.
// Leases are held in memory (no commit, no fsync) and end with the process.
func (s *Store) Next(ctx context.Context, by string, f QueueFilter, leaseFor time.Duration) (QueueItem, *Inspection, error) {
	if by == "" {
		return QueueItem{}, nil, fmt.Errorf("next: %w: empty inspector", ErrInvalid)
	}
	if leaseFor <= 0 {
		leaseFor = s.opts.LeaseFor
	}
	if err := s.open(ctx); err != nil {
		return QueueItem{}, nil, fmt.Errorf("next for %s: %w", by, err)
	}
	var item QueueItem
	var in *Inspection
	now := s.opts.Now()
	s.leaseMu.Lock()
	if len(s.leases) > 1024 {
		s.pruneLeases(now)
	}
	s.leaseMu.Unlock()
	// take claims q for by if it is free; the lock is held only for that.
	take := func(q *QueueItem) bool {
		s.leaseMu.Lock()
		defer s.leaseMu.Unlock()
		*q = s.withLease(*q, now)
		if q.leasedToOther(by, now) {
			return false
		}
		q.LeaseBy, q.LeaseUntil = by, now.Add(leaseFor)
		s.leases[q.ID] = lease{by: by, until: q.LeaseUntil}
		return true
	}
	// Candidates are read in pages; each is claimed in memory, then checked
	// again in a fresh read, since a label may have committed after the
	// page was read (a labelled item's lease is dropped after its commit).
	var after []byte
	for {
		var page []QueueItem
		err := s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bQueue).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && string(k) == string(after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(page) < 64; k, v = c.Next() {
				var q QueueItem
				if err := json.Unmarshal(v, &q); err != nil {
					return fmt.Errorf("decode queue %s: %w", k, err)
				}
				if f.match(q) {
					page = append(page, q)
				}
				after = append(after[:0], k...)
			}
			return nil
		})
		if err != nil {
			return QueueItem{}, nil, fmt.Errorf("next for %s: %w", by, err)
		}
		if len(page) == 0 {
			return QueueItem{}, nil, fmt.Errorf("next for %s: %w", by, ErrQueueEmpty)
		}
		for _, q := range page {
			if !take(&q) {
				continue
			}
			var rec *Inspection
			still := false
			err := s.view(func(tx *bolt.Tx) error {
				if tx.Bucket(bQueue).Get([]byte(q.ID)) == nil {
					return nil
				}
				still = true
				var err error
				rec, err = getInspection(tx, q.ID)
				return err
			})
			if err != nil || !still {
				s.dropLease(q.ID)
				if err != nil {
					return QueueItem{}, nil, fmt.Errorf("next for %s: queue item %s: %w", by, q.ID, err)
				}
				continue
			}
			item, in = q, rec
			return item, in, nil
		}
	}
}

// Claim leases one queue item to by (renewing a lease by already holds).
// ErrLeaseHeld when another inspector holds it, ErrAlreadyLabelled when it
// was labelled, ErrNotFound when no such inspection exists.
func (s *Store) Claim(ctx context.Context, id, by string, leaseFor time.Duration) (QueueItem, error) {
	if leaseFor <= 0 {
		leaseFor = s.opts.LeaseFor
	}
	if by == "" {
		return QueueItem{}, fmt.Errorf("claim %s: %w: empty inspector", id, ErrInvalid)
	}
	if err := s.open(ctx); err != nil {
		return QueueItem{}, fmt.Errorf("claim %s: %w", id, err)
	}
	var item QueueItem
	now := s.opts.Now()
	err := s.view(func(tx *bolt.Tx) error {
		q, err := s.queueItemTx(tx, id)
		if err != nil {
			return err
		}
		s.leaseMu.Lock()
		defer s.leaseMu.Unlock()
		q = s.withLease(q, now)
		if q.leasedToOther(by, now) {
			return fmt.Errorf("%w (%s until %s)", ErrLeaseHeld, q.LeaseBy, q.LeaseUntil.Format(time.TimeOnly))
		}
		q.LeaseBy, q.LeaseUntil = by, now.Add(leaseFor)
		s.leases[id] = lease{by: by, until: q.LeaseUntil}
		item = q
		return nil
	})
	if err == nil {
		// A label may have committed between the read and the claim.
		err = s.view(func(tx *bolt.Tx) error {
			_, err := s.queueItemTx(tx, id)
			return err
		})
		if err != nil {
			s.dropLease(id)
		}
	}
	if err != nil {
		return QueueItem{}, fmt.Errorf("claim %s: %w", id, err)
	}
	return item, nil
}

// Release gives back by's lease on an item (the S key: skip). Releasing an
// item one does not hold is a no-op.
func (s *Store) Release(ctx context.Context, id, by string) error {
	if err := s.open(ctx); err != nil {
		return fmt.Errorf("release %s: %w", id, err)
	}
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if l, ok := s.leases[id]; ok && l.by == by {
		delete(s.leases, id)
	}
	return nil
}

// leaseHeldByOther reports another inspector's live lease on id.
func (s *Store) leaseHeldByOther(id, by string, now time.Time) (string, bool) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	l, ok := s.leases[id]
	if !ok || !now.Before(l.until) || l.by == by {
		return "", false
	}
	return l.by, true
}

// dropLease forgets the lease on an item that left the queue.
func (s *Store) dropLease(id string) {
	s.leaseMu.Lock()
	delete(s.leases, id)
	s.leaseMu.Unlock()
}

// queueItemTx returns the item's queue entry, or the reason it has none.
func (s *Store) queueItemTx(tx *bolt.Tx, id string) (QueueItem, error) {
	var q QueueItem
	v := tx.Bucket(bQueue).Get([]byte(id))
	if v == nil {
		if tx.Bucket(bLabels).Get([]byte(id)) != nil {
			return q, ErrAlreadyLabelled
		}
		return q, ErrNotFound
	}
	err := json.Unmarshal(v, &q)
	return q, err
}

// Label commits an inspector's label. In ONE transaction it writes the
// label, removes the item from the review queue and appends the label's
// outbox entry; it returns only once that transaction is durable, so the UI
// may then show it as saved. The item may be labelled without a lease, but
// not while another inspector holds one (ErrLeaseHeld); a second label is
// refused (ErrAlreadyLabelled: the UI says who labelled it, then offers
// Correct). Labelling an inspection that was not queued is allowed.
func (s *Store) Label(ctx context.Context, li LabelInput) (*Label, error) {
	if li.By == "" || li.Class == "" {
		return nil, fmt.Errorf("label %s: %w: inspector and class are required", li.ItemID, ErrInvalid)
	}
	var out *Label
	err := s.submit(ctx, func(w *wtx) error {
		in, err := getInspection(w.tx, li.ItemID)
		if err != nil {
			return err
		}
		if old, err := getLabel(w.tx, li.ItemID); err == nil {
			return fmt.Errorf("%w by %s at %s", ErrAlreadyLabelled, old.By, old.At.Format(time.TimeOnly))
		}
		qb := w.tx.Bucket(bQueue)
		if v := qb.Get([]byte(li.ItemID)); v != nil {
			var q QueueItem
			if err := json.Unmarshal(v, &q); err != nil {
				return err
			}
			if holder, held := s.leaseHeldByOther(li.ItemID, li.By, w.now); held {
				return fmt.Errorf("%w (%s)", ErrLeaseHeld, holder)
			}
			if err := qb.Delete([]byte(li.ItemID)); err != nil {
				return err
			}
			w.add(cQueue, -1)
			w.after = append(w.after, func() { s.dropLease(li.ItemID) })
		}
		l := newLabel(in, li, 1, w.now)
		if err := s.writeLabelTx(w, l); err != nil {
			return err
		}
		w.add(cLabels, 1)
		out = l
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("label %s: %w", li.ItemID, err)
	}
	return out, nil
}

// Correct replaces an existing label with a correcting one (a new revision
// with its own outbox entry, Supersedes naming the old label); the
// collector keeps the latest revision. Use it when Undo says
// ErrUndoExpired or ErrAlreadySynced. ErrNotFound when there is no label.
func (s *Store) Correct(ctx context.Context, li LabelInput) (*Label, error) {
	if li.By == "" || li.Class == "" {
		return nil, fmt.Errorf("correct %s: %w: inspector and class are required", li.ItemID, ErrInvalid)
	}
	var out *Label
	err := s.submit(ctx, func(w *wtx) error {
		in, err := getInspection(w.tx, li.ItemID)
		if err != nil {
			return err
		}
		old, err := getLabel(w.tx, li.ItemID)
		if err != nil {
			return err
		}
		l := newLabel(in, li, old.Revision+1, w.now)
		l.Supersedes = old.ID
		old.Previous = nil // keep one level: enough to undo this correction
		l.Previous = old
		out = l
		return s.writeLabelTx(w, l)
	})
	if err != nil {
		return nil, fmt.Errorf("correct %s: %w", li.ItemID, err)
	}
	return out, nil
}

// Undo takes back by's latest label on an item, within Options.UndoWindow
// and only while its outbox entry is still pending (not yet acknowledged by
// the collector): in one transaction the label and its outbox entry go and
// the item returns to the queue, leased to by. Undoing a correction
// restores the label it replaced. Errors: ErrNotFound, ErrNotYourLabel,
// ErrUndoExpired, ErrAlreadySynced (then use Correct).
func (s *Store) Undo(ctx context.Context, itemID, by string) error {
	err := s.submit(ctx, func(w *wtx) error {
		l, err := getLabel(w.tx, itemID)
		if err != nil {
			return err
		}
		if l.By != by {
			return fmt.Errorf("%w (%s)", ErrNotYourLabel, l.By)
		}
		if w.now.Sub(l.At) > s.opts.UndoWindow {
			return ErrUndoExpired
		}
		seq := w.tx.Bucket(bOutboxID).Get([]byte(l.OutboxID()))
		if seq == nil {
			return ErrAlreadySynced
		}
		if _, _, err := s.removeOutboxTx(w, append([]byte(nil), seq...)); err != nil {
			return err
		}
		if l.Previous != nil {
			return putJSON(w.tx.Bucket(bLabels), []byte(itemID), l.Previous)
		}
		if err := w.tx.Bucket(bLabels).Delete([]byte(itemID)); err != nil {
			return err
		}
		w.add(cLabels, -1)
		in, err := getInspection(w.tx, itemID)
		if err != nil {
			return err
		}
		q := QueueItem{ID: in.ID, Time: in.Time, Camera: in.Camera, Reason: in.Reason, Audit: in.Audit}
		if err := putJSON(w.tx.Bucket(bQueue), []byte(itemID), q); err != nil {
			return err
		}
		w.add(cQueue, 1)
		// Back in the queue, leased to the inspector who undid it.
		until := w.now.Add(s.opts.LeaseFor)
		w.after = append(w.after, func() {
			s.leaseMu.Lock()
			s.leases[itemID] = lease{by: by, until: until}
			s.leaseMu.Unlock()
		})
		return nil
	})
	if err != nil {
		return fmt.Errorf("undo %s: %w", itemID, err)
	}
	return nil
}

// GetLabel returns the current label of an item, or ErrNotFound.
func (s *Store) GetLabel(itemID string) (*Label, error) {
	var l *Label
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		l, err = getLabel(tx, itemID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get label %s: %w", itemID, err)
	}
	return l, nil
}

func getLabel(tx *bolt.Tx, itemID string) (*Label, error) {
	v := tx.Bucket(bLabels).Get([]byte(itemID))
	if v == nil {
		return nil, ErrNotFound
	}
	var l Label
	if err := json.Unmarshal(v, &l); err != nil {
		return nil, fmt.Errorf("decode label: %w", err)
	}
	return &l, nil
}

func newLabel(in *Inspection, li LabelInput, rev int, now time.Time) *Label {
	return &Label{
		ID: in.ID + "-l" + strconv.Itoa(rev), ItemID: in.ID, Camera: in.Camera,
		By: li.By, At: now, Class: li.Class, Note: li.Note, Revision: rev,
		Suggested: in.Top, ModelVerdict: in.ModelVerdict, Model: in.Model,
	}
}

func (s *Store) writeLabelTx(w *wtx, l *Label) error {
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode label: %w", err)
	}
	if err := w.tx.Bucket(bLabels).Put([]byte(l.ItemID), data); err != nil {
		return err
	}
	return s.appendTx(w, OutboxEntry{ID: l.OutboxID(), Kind: KindLabel, Ref: l.ItemID, Time: l.At, Payload: data})
}
