package store

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// request is one caller's share of a group commit.
type request struct {
	fn   func(*wtx) error
	dirs []string // directories to fsync before the transaction commits
	done chan error
}

// wtx is one write transaction attempt: the bbolt transaction, counter
// deltas flushed into the meta bucket before commit, and work to do only
// after the commit succeeded (removing image files).
type wtx struct {
	tx    *bolt.Tx
	now   time.Time
	delta map[string]int64
	after []func()
}

func (w *wtx) add(name string, d int64) {
	if d != 0 {
		w.delta[name] += d
	}
}

func (w *wtx) flush() error {
	meta := w.tx.Bucket(bMeta)
	for k, d := range w.delta {
		v := int64(getU64(meta.Get([]byte(k)))) + d
		if v < 0 {
			v = 0
		}
		if err := meta.Put([]byte(k), u64(uint64(v))); err != nil {
			return fmt.Errorf("counter %s: %w", k, err)
		}
	}
	return nil
}

// submit hands fn to the group-commit writer and waits until the
// transaction that ran it has committed (nil) or failed. fn runs on the
// writer goroutine, possibly more than once (when another request in the
// same batch fails the batch is retried without it), so it must derive
// everything from the transaction and only write results it owns.
// If ctx ends first, submit returns ctx.Err(): the request may still commit.
func (s *Store) submit(ctx context.Context, fn func(*wtx) error, dirs ...string) error {
	r := &request{fn: fn, dirs: dirs, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeLoop is the single writer: it takes every request waiting (up to
// MaxBatch), runs them in one bbolt transaction and commits it with one
// fsync. While a commit is in flight the next batch gathers, so batches
// grow with load without any timer.
func (s *Store) writeLoop() {
	defer s.wg.Done()
	batch := make([]*request, 0, s.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-s.stop:
			// Close holds no sender: drain what is buffered, then exit.
			for {
				select {
				case r := <-s.reqs:
					s.commit([]*request{r})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

// commit runs batch in one transaction. A request whose fn fails is
// answered with its error and the rest retried in a fresh transaction, so
// one bad request never fails or half-applies another.
func (s *Store) commit(batch []*request) {
	batch = slices.Clone(batch)
	for len(batch) > 0 {
		tx, err := s.db.Begin(true)
		if err != nil {
			s.answer(batch, fmt.Errorf("begin: %w", err))
			return
		}
		w := &wtx{tx: tx, now: s.opts.Now(), delta: map[string]int64{}}
		failed, ferr := -1, error(nil)
		for i, r := range batch {
			if err := r.fn(w); err != nil {
				failed, ferr = i, err
				break
			}
		}
		if failed >= 0 {
			_ = tx.Rollback()
			batch[failed].done <- ferr
			batch = slices.Delete(batch, failed, failed+1)
			continue
		}
		if err := w.flush(); err != nil {
			_ = tx.Rollback()
			s.answer(batch, err)
			return
		}
		// Images named by this transaction were written and renamed by
		// their callers; make the renames durable before the records
		// that reference them.
		if err := s.syncDirs(batch); err != nil {
			_ = tx.Rollback()
			s.answer(batch, err)
			return
		}
		if err := tx.Commit(); err != nil {
			s.answer(batch, fmt.Errorf("commit: %w", err))
			return
		}
		s.commits.Add(1)
		s.joined.Add(uint64(len(batch)))
		for _, f := range w.after {
			f()
		}
		s.answer(batch, nil)
		return
	}
}

func (s *Store) answer(batch []*request, err error) {
	for _, r := range batch {
		r.done <- err
	}
}

func (s *Store) syncDirs(batch []*request) error {
	if s.opts.NoSync {
		return nil
	}
	var seen map[string]bool
	for _, r := range batch {
		for _, d := range r.dirs {
			if seen[d] {
				continue
			}
			if seen == nil {
				seen = map[string]bool{}
			}
			seen[d] = true
			if err := syncDir(d); err != nil {
				return err
			}
		}
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// view runs a read-only transaction.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return s.db.View(fn)
}
