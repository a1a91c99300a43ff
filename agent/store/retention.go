package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Deleted counts what retention removed, by object. The counters are exact:
// they live in the meta bucket and change in the same transaction as the
// deletions they count, so they survive restarts and never drift.
type Deleted struct {
	Images      uint64 `json:"images"`      // JPEG files (with or without their record)
	Inspections uint64 `json:"inspections"` // inspection records
	Unreviewed  uint64 `json:"unreviewed"`  // of Inspections, those still waiting in the review queue
	Labels      uint64 `json:"labels"`      // synced labels deleted with their inspection
	Outbox      uint64 `json:"outbox"`      // entries dropped before acknowledgement (never a label)
}

func (d *Deleted) plus(o Deleted) {
	d.Images += o.Images
	d.Inspections += o.Inspections
	d.Unreviewed += o.Unreviewed
	d.Labels += o.Labels
	d.Outbox += o.Outbox
}

// Retention causes, as used in the counter names ("del/<cause>/<what>").
const (
	causeAge    = "age"
	causeBudget = "budget"
)

func delKey(cause, what string) string { return "del/" + cause + "/" + what }

func (w *wtx) deleted(cause, what string) { w.add(delKey(cause, what), 1) }

func deletedFrom(delta map[string]int64, cause string) Deleted {
	g := func(what string) uint64 { return uint64(delta[delKey(cause, what)]) }
	return Deleted{Images: g("images"), Inspections: g("inspections"), Unreviewed: g("unreviewed"), Labels: g("labels"), Outbox: g("outbox")}
}

// RetainResult is what one Retain call removed.
type RetainResult struct {
	Age, Budget Deleted
	// Over is true when the budget still is exceeded after everything
	// deletable was deleted (what is left is unsynced labels and their
	// images, or bbolt's own pages).
	Over bool
}

// retainChunk bounds one retention transaction so that Puts are not held
// behind a long delete.
const retainChunk = 500

func (s *Store) retentionLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.RetentionEvery)
	defer t.Stop()
	for {
		if _, err := s.Retain(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("retention failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Retain applies the age limit, then the disk budget (see doc.go for the
// order). The background loop calls it every Options.RetentionEvery; tests
// and the CLI may call it directly. It never deletes a human label whose
// outbox entry is pending, nor that entry, nor its inspection and image.
func (s *Store) Retain(ctx context.Context) (RetainResult, error) {
	s.retainMu.Lock() // one retention at a time: the budget is measured, then freed
	defer s.retainMu.Unlock()
	var res RetainResult
	if s.opts.MaxAge > 0 {
		d, err := s.retainAge(ctx)
		res.Age = d
		if err != nil {
			return res, fmt.Errorf("retain by age: %w", err)
		}
	}
	if s.opts.MaxBytes > 0 {
		d, over, err := s.retainBudget(ctx)
		res.Budget, res.Over = d, over
		if err != nil {
			return res, fmt.Errorf("retain by budget: %w", err)
		}
	}
	return res, nil
}

func (s *Store) retainAge(ctx context.Context) (Deleted, error) {
	cutoffT := s.opts.Now().Add(-s.opts.MaxAge)
	cutoff := timeKey(cutoffT)
	// Inspections older than the limit (keys are time-ordered).
	total, err := s.chunked(ctx, causeAge, func(w *wtx, from []byte) ([]byte, error) {
		ids, next := scanKeys(w.tx.Bucket(bInspections), from, retainChunk, func(k []byte) (bool, bool) {
			if bytes.Compare(k, cutoff) >= 0 {
				return false, true
			}
			return !protected(w.tx, string(k)), false
		})
		for _, id := range ids {
			if _, err := s.deleteInspectionTx(w, id, causeAge); err != nil {
				return nil, err
			}
		}
		return next, nil
	})
	if err != nil {
		return total, err
	}
	// Outbox entries (events, telemetry, decisions) older than the limit.
	got, err := s.chunked(ctx, causeAge, func(w *wtx, from []byte) ([]byte, error) {
		ob := w.tx.Bucket(bOutbox)
		seqs, next := scanKeys(ob, from, retainChunk, func(k []byte) (bool, bool) {
			var e OutboxEntry
			if json.Unmarshal(ob.Get(k), &e) != nil || e.Kind == KindLabel {
				return false, false
			}
			if !e.Time.Before(cutoffT) {
				return false, true // commit order is nearly time order
			}
			return true, false
		})
		for _, k := range seqs {
			if _, _, err := s.removeOutboxTx(w, []byte(k)); err != nil {
				return nil, err
			}
			w.deleted(causeAge, "outbox")
		}
		return next, nil
	})
	total.plus(got)
	return total, err
}

// chunked runs step in one transaction per chunk of a scan, starting from
// the first key, until step returns no next key; it adds up what each
// chunk deleted under cause. Small transactions keep retention from
// holding the writer for long.
func (s *Store) chunked(ctx context.Context, cause string, step func(w *wtx, from []byte) (next []byte, err error)) (Deleted, error) {
	var total Deleted
	var from []byte
	for {
		var got Deleted
		var next []byte
		err := s.submit(ctx, func(w *wtx) error {
			var err error
			if next, err = step(w, from); err != nil {
				return err
			}
			got = deletedFrom(w.delta, cause)
			return nil
		})
		if err != nil {
			return total, err
		}
		total.plus(got)
		if next == nil {
			return total, nil
		}
		from = next
	}
}

// scanKeys walks b from `from` (inclusive; nil: first) and collects up to
// limit keys for which keep says take; stop ends the walk. It returns the
// key to resume from, or nil when the walk is over.
func scanKeys(b *bolt.Bucket, from []byte, limit int, keep func(k []byte) (take, stop bool)) ([]string, []byte) {
	var out []string
	c := b.Cursor()
	k, _ := c.First()
	if from != nil {
		k, _ = c.Seek(from)
	}
	for ; k != nil; k, _ = c.Next() {
		if len(out) >= limit {
			return out, bytes.Clone(k)
		}
		take, stop := keep(k)
		if stop {
			return out, nil
		}
		if take {
			out = append(out, string(k))
		}
	}
	return out, nil
}

// protected: the inspection has a label outbox entry not yet acknowledged.
func protected(tx *bolt.Tx, id string) bool {
	_, kinds := pendingRefs(tx, id)
	for _, k := range kinds {
		if k == KindLabel {
			return true
		}
	}
	return false
}

// synced: nothing pending in the outbox refers to the inspection.
func synced(tx *bolt.Tx, id string) bool {
	prefix := refKey(id, nil)
	k, _ := tx.Bucket(bPendingRef).Cursor().Seek(prefix)
	return k == nil || !bytes.HasPrefix(k, prefix)
}

// deleteInspectionTx removes a record and everything hanging from it: its
// queue entry, its (synced) label, its pending non-label outbox entries and
// its image (the file goes after commit; a crash before that leaves an
// orphan the next Open sweeps). The caller has checked !protected.
// It returns an estimate of the bytes freed.
func (s *Store) deleteInspectionTx(w *wtx, id, cause string) (int64, error) {
	key := []byte(id)
	v := w.tx.Bucket(bInspections).Get(key)
	if v == nil {
		return 0, nil
	}
	freed := int64(len(key) + len(v))
	if q := w.tx.Bucket(bQueue).Get(key); q != nil {
		freed += int64(len(key) + len(q))
		if err := w.tx.Bucket(bQueue).Delete(key); err != nil {
			return 0, err
		}
		w.add(cQueue, -1)
		w.deleted(cause, "unreviewed")
	}
	if l := w.tx.Bucket(bLabels).Get(key); l != nil {
		freed += int64(len(key) + len(l))
		if err := w.tx.Bucket(bLabels).Delete(key); err != nil {
			return 0, err
		}
		w.add(cLabels, -1)
		w.deleted(cause, "labels")
	}
	seqs, kinds := pendingRefs(w.tx, id)
	for i, seq := range seqs {
		if kinds[i] == KindLabel {
			return 0, fmt.Errorf("refusing to delete %s: unsynced label", id)
		}
		_, n, err := s.removeOutboxTx(w, seq)
		if err != nil {
			return 0, err
		}
		freed += n
		w.deleted(cause, "outbox")
	}
	n, err := s.dropImageTx(w, id, cause)
	if err != nil {
		return 0, err
	}
	freed += n
	if err := w.tx.Bucket(bInspections).Delete(key); err != nil {
		return 0, err
	}
	w.add(cInspections, -1)
	w.deleted(cause, "inspections")
	return freed, nil
}

// dropImageTx removes an inspection's image from the index and schedules
// the file's removal after commit. The record itself is left to the caller.
func (s *Store) dropImageTx(w *wtx, id, cause string) (int64, error) {
	idx := w.tx.Bucket(bImages)
	v := idx.Get([]byte(id))
	if v == nil {
		return 0, nil
	}
	size := int64(getU64(v))
	if err := idx.Delete([]byte(id)); err != nil {
		return 0, err
	}
	w.add(cImages, -1)
	w.deleted(cause, "images")
	p := filepath.Join(s.imgDir, imageRel(id))
	w.after = append(w.after, func() {
		if err := os.Remove(p); err == nil || os.IsNotExist(err) {
			s.imgBytes.Add(-size)
		}
	})
	return size + int64(len(id)+8), nil
}

// purgeImageTx drops the image but keeps the record, marking it purged.
func (s *Store) purgeImageTx(w *wtx, id, cause string) (int64, error) {
	in, err := getInspection(w.tx, id)
	if err != nil {
		return 0, err
	}
	freed, err := s.dropImageTx(w, id, cause)
	if err != nil {
		return 0, err
	}
	in.Image, in.ImagePurged = "", true
	return freed, putJSON(w.tx.Bucket(bInspections), []byte(id), in)
}

// budgetStep is one category of the deletion order.
type budgetStep struct {
	name   string
	bucket []byte
	// take decides whether key k is deleted in this category.
	take func(tx *bolt.Tx, k []byte) bool
	// del deletes it and returns the bytes freed.
	del func(w *wtx, k []byte) (int64, error)
}

func (s *Store) budgetSteps() []budgetStep {
	inQueue := func(tx *bolt.Tx, k []byte) bool { return tx.Bucket(bQueue).Get(k) != nil }
	labelled := func(tx *bolt.Tx, k []byte) bool { return tx.Bucket(bLabels).Get(k) != nil }
	imagesAuto := budgetStep{"images of synced automatic decisions", bImages,
		func(tx *bolt.Tx, k []byte) bool {
			return !inQueue(tx, k) && !labelled(tx, k) && synced(tx, string(k))
		},
		func(w *wtx, k []byte) (int64, error) { return s.purgeImageTx(w, string(k), causeBudget) }}
	imagesLabelled := budgetStep{"images of synced labels", bImages,
		func(tx *bolt.Tx, k []byte) bool {
			return !inQueue(tx, k) && labelled(tx, k) && synced(tx, string(k))
		},
		func(w *wtx, k []byte) (int64, error) { return s.purgeImageTx(w, string(k), causeBudget) }}
	records := budgetStep{"synced inspections", bInspections,
		func(tx *bolt.Tx, k []byte) bool { return !inQueue(tx, k) && synced(tx, string(k)) },
		func(w *wtx, k []byte) (int64, error) { return s.deleteInspectionTx(w, string(k), causeBudget) }}
	outbox := budgetStep{"unsent decisions, events and telemetry", bOutbox,
		func(tx *bolt.Tx, k []byte) bool {
			var e OutboxEntry
			return json.Unmarshal(tx.Bucket(bOutbox).Get(k), &e) == nil && e.Kind != KindLabel
		},
		func(w *wtx, k []byte) (int64, error) {
			_, n, err := s.removeOutboxTx(w, k)
			w.deleted(causeBudget, "outbox")
			return n, err
		}}
	unreviewed := budgetStep{"unreviewed queue items", bQueue,
		func(tx *bolt.Tx, k []byte) bool { return !protected(tx, string(k)) },
		func(w *wtx, k []byte) (int64, error) { return s.deleteInspectionTx(w, string(k), causeBudget) }}
	// Dropping unsent outbox entries makes their inspections synced, so the
	// first three categories run again before unreviewed items go.
	return []budgetStep{imagesAuto, imagesLabelled, records, outbox, imagesAuto, imagesLabelled, records, unreviewed}
}

func (s *Store) retainBudget(ctx context.Context) (Deleted, bool, error) {
	var total Deleted
	u, err := s.Usage()
	if err != nil {
		return total, false, err
	}
	if u.Total() <= s.opts.MaxBytes {
		return total, false, nil
	}
	need := u.Total() - int64(float64(s.opts.MaxBytes)*(1-s.opts.Headroom))
	s.log.Info("over disk budget", "used", u.Total(), "budget", s.opts.MaxBytes, "freeing", need)
	for _, st := range s.budgetSteps() {
		var from []byte
		for need > 0 {
			var got Deleted
			var freed int64
			var next []byte
			err := s.submit(ctx, func(w *wtx) error {
				freed, next = 0, nil
				c := w.tx.Bucket(st.bucket).Cursor()
				k, _ := c.First()
				if from != nil {
					k, _ = c.Seek(from)
				}
				var keys [][]byte
				for ; k != nil; k, _ = c.Next() {
					if len(keys) >= retainChunk {
						next = bytes.Clone(k)
						break
					}
					if st.take(w.tx, k) {
						keys = append(keys, bytes.Clone(k))
					}
				}
				for _, k := range keys {
					if freed >= need {
						next = k
						break
					}
					n, err := st.del(w, k)
					if err != nil {
						return fmt.Errorf("%s: %w", st.name, err)
					}
					freed += n
				}
				got = deletedFrom(w.delta, causeBudget)
				return nil
			})
			if err != nil {
				return total, true, err
			}
			total.plus(got)
			need -= freed
			if next == nil {
				break
			}
			from = next
		}
		if need <= 0 {
			return total, false, nil
		}
	}
	return total, true, nil
}
