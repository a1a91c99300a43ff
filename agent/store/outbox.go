package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Kind is what an outbox entry carries, and so which uplink topic it takes.
type Kind string

const (
	// KindLabel is a labelled sample: Payload is the Label, Ref the
	// inspection (its record and image are read with Get and Image).
	// Written only by Label, Correct; never dropped by retention while pending.
	KindLabel Kind = "label"
	// KindDecision is one inspection's decision: Payload is the Inspection.
	KindDecision Kind = "decision"
	// KindEvent is an alarm or state change; Payload is the caller's JSON.
	KindEvent Kind = "event"
	// KindTelemetry is a periodic metrics snapshot; Payload is the caller's JSON.
	KindTelemetry Kind = "telemetry"
)

var kinds = []Kind{KindLabel, KindDecision, KindEvent, KindTelemetry}

// OutboxEntry is one message waiting for the collector's acknowledgement.
type OutboxEntry struct {
	// Seq is the commit order (assigned by the store, never reused); use the
	// last one read as Pending's after.
	Seq uint64 `json:"-"`
	// ID is stable: the collector de-duplicates by it and Ack names it.
	ID      string          `json:"id"`
	Kind    Kind            `json:"kind"`
	Ref     string          `json:"ref,omitempty"` // inspection ID, if any
	Time    time.Time       `json:"time"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func outboxCounter(k Kind) string { return "n/outbox/" + string(k) }

// refKey is pending_ref's key: inspection ID, a zero byte, the sequence.
func refKey(ref string, seq []byte) []byte {
	k := make([]byte, 0, len(ref)+1+len(seq))
	k = append(k, ref...)
	k = append(k, 0)
	return append(k, seq...)
}

// Append commits events, telemetry or decisions to the outbox, in order, in
// one transaction; it returns once they are durable. An entry whose ID is
// already pending is skipped (redelivery is harmless); so is one acked
// before, if it is appended again it is sent again. Time defaults to now.
func (s *Store) Append(ctx context.Context, entries ...OutboxEntry) error {
	for i := range entries {
		e := &entries[i]
		switch {
		case e.ID == "":
			return fmt.Errorf("append: %w: outbox entry without ID", ErrInvalid)
		case e.Kind != KindDecision && e.Kind != KindEvent && e.Kind != KindTelemetry:
			return fmt.Errorf("append %s: %w: kind %q (labels come from Label)", e.ID, ErrInvalid, e.Kind)
		case len(e.Payload) > 0 && !json.Valid(e.Payload):
			return fmt.Errorf("append %s: %w: payload is not JSON", e.ID, ErrInvalid)
		}
		if e.Time.IsZero() {
			e.Time = s.opts.Now()
		}
	}
	err := s.submit(ctx, func(w *wtx) error {
		for _, e := range entries {
			if err := s.appendTx(w, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	return nil
}

func (s *Store) appendTx(w *wtx, e OutboxEntry) error {
	ids := w.tx.Bucket(bOutboxID)
	if ids.Get([]byte(e.ID)) != nil {
		return nil
	}
	ob := w.tx.Bucket(bOutbox)
	n, err := ob.NextSequence()
	if err != nil {
		return err
	}
	seq := u64(n)
	if err := putJSON(ob, seq, e); err != nil {
		return err
	}
	if err := ids.Put([]byte(e.ID), seq); err != nil {
		return err
	}
	if e.Ref != "" {
		if err := w.tx.Bucket(bPendingRef).Put(refKey(e.Ref, seq), []byte(e.Kind)); err != nil {
			return err
		}
	}
	w.add(outboxCounter(e.Kind), 1)
	return nil
}

// Pending returns up to limit entries with Seq > after, in commit order.
// The uplink reads a window, publishes it, and reads the next window after
// the last Seq it read; acknowledged entries disappear, unacknowledged ones
// stay and are read again from after=0 on reconnect.
func (s *Store) Pending(after uint64, limit int) ([]OutboxEntry, error) {
	var out []OutboxEntry
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bOutbox).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			var e OutboxEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode outbox %x: %w", k, err)
			}
			e.Seq = getU64(k)
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pending: %w", err)
	}
	return out, nil
}

// OutboxSample is what a label's outbox entry travels with: the label,
// the labelled inspection's record and its JPEG.
type OutboxSample struct {
	Label      Label
	Inspection *Inspection
	// JPEG is nil when the inspection has no image (never stored, or
	// purged by retention): the label travels without it.
	JPEG []byte
	// Err: the entry cannot be made a sample now, and the other fields are
	// not to be used. ErrNotFound: its inspection is gone; ErrInvalid: it is
	// not a label entry. Otherwise a payload, record or image read failed.
	Err error
}

// Samples reads what the label entries among entries need to travel as
// samples: their labels, their inspections' records, all in one read
// transaction, and then their JPEGs. It returns one result per entry, in
// order; the uplink calls it once for each batch Pending returns instead
// of a Get and an Image (another Get) per entry.
func (s *Store) Samples(entries []OutboxEntry) []OutboxSample {
	out := make([]OutboxSample, len(entries))
	err := s.view(func(tx *bolt.Tx) error {
		for i, e := range entries {
			o := &out[i]
			if e.Kind != KindLabel {
				o.Err = fmt.Errorf("sample %s: %w: kind %q is not a label", e.ID, ErrInvalid, e.Kind)
				continue
			}
			if err := json.Unmarshal(e.Payload, &o.Label); err != nil {
				o.Err = fmt.Errorf("sample %s: label payload: %w", e.ID, err)
				continue
			}
			ref := e.Ref
			if ref == "" {
				ref = o.Label.ItemID
			}
			in, err := getInspection(tx, ref)
			if err != nil {
				o.Err = fmt.Errorf("sample %s: labelled inspection %s: %w", e.ID, ref, err)
				continue
			}
			o.Inspection = in
		}
		return nil
	})
	for i := range out {
		o := &out[i]
		if err != nil && o.Err == nil {
			o.Err = fmt.Errorf("sample %s: %w", entries[i].ID, err)
		}
		if o.Err != nil || o.Inspection.Image == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.imgDir, o.Inspection.Image))
		switch {
		case errors.Is(err, os.ErrNotExist): // retention removed it meanwhile
		case err != nil:
			o.Err = fmt.Errorf("sample %s: image of %s: %w", entries[i].ID, o.Inspection.ID, err)
		default:
			o.JPEG = b
		}
	}
	return out
}

// Ack removes the entries the collector acknowledged, by ID, in one
// transaction, and returns how many were pending. Unknown or already
// acknowledged IDs are ignored, so Ack is idempotent. Call it only on the
// collector's application-level acknowledgement, not on PUBACK.
func (s *Store) Ack(ctx context.Context, ids ...string) (int, error) {
	var n int
	err := s.submit(ctx, func(w *wtx) error {
		n = 0
		for _, id := range ids {
			seq := w.tx.Bucket(bOutboxID).Get([]byte(id))
			if seq == nil {
				continue
			}
			if _, _, err := s.removeOutboxTx(w, bytes.Clone(seq)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("ack: %w", err)
	}
	return n, nil
}

// removeOutboxTx deletes one entry and its index rows; it returns the entry
// and the bytes its rows took (for the budget estimate).
func (s *Store) removeOutboxTx(w *wtx, seq []byte) (OutboxEntry, int64, error) {
	ob := w.tx.Bucket(bOutbox)
	v := ob.Get(seq)
	if v == nil {
		return OutboxEntry{}, 0, nil
	}
	var e OutboxEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return e, 0, fmt.Errorf("decode outbox %x: %w", seq, err)
	}
	size := int64(len(seq) + len(v) + len(e.ID) + len(seq))
	if err := ob.Delete(seq); err != nil {
		return e, 0, err
	}
	if err := w.tx.Bucket(bOutboxID).Delete([]byte(e.ID)); err != nil {
		return e, 0, err
	}
	if e.Ref != "" {
		rk := refKey(e.Ref, seq)
		size += int64(len(rk))
		if err := w.tx.Bucket(bPendingRef).Delete(rk); err != nil {
			return e, 0, err
		}
	}
	w.add(outboxCounter(e.Kind), -1)
	return e, size, nil
}

// pendingKinds lists the kinds of the pending entries that reference id,
// with their sequence keys.
func pendingRefs(tx *bolt.Tx, id string) (seqs [][]byte, kinds []Kind) {
	prefix := refKey(id, nil)
	c := tx.Bucket(bPendingRef).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		seqs = append(seqs, bytes.Clone(k[len(prefix):]))
		kinds = append(kinds, Kind(v))
	}
	return seqs, kinds
}

// Acked reports whether an outbox entry ID is no longer pending.
func (s *Store) Acked(id string) (bool, error) {
	var pending bool
	err := s.view(func(tx *bolt.Tx) error {
		pending = tx.Bucket(bOutboxID).Get([]byte(id)) != nil
		return nil
	})
	return !pending, err
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return b.Put(k, data)
}
