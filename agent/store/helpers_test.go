package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/linesight/linesight/agent/policy"
	bolt "go.etcd.io/bbolt"
)

// clock is an injectable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openT(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.RetentionEvery == 0 {
		opts.RetentionEvery = -1
	}
	s, err := Open(filepath.Join(t.TempDir(), "ls.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rec builds an inspection at time at.
func rec(s *Store, at time.Time, camera string, review bool) *Inspection {
	in := &Inspection{
		ID: s.NewID(at), Time: at, Camera: camera, PartID: "p-" + at.Format("150405.000"),
		Model:  ModelRef{Name: "tiles", Version: "1.2.0"},
		Scores: []Score{{"free", 0.55}, {"crack", 0.40}, {"blowhole", 0.05}},
		Top:    "free", Verdict: policy.Pass, Reason: policy.ReasonConfidentPass, Level: policy.Partial,
		ModelVerdict: policy.Pass,
		Timings:      map[string]time.Duration{"inference": 3 * time.Millisecond, "policy": 10 * time.Microsecond},
	}
	if review {
		in.Verdict, in.Reason, in.Review, in.ModelVerdict = policy.Defer, policy.ReasonUncertain, true, policy.Defer
	}
	return in
}

func mustPut(t testing.TB, s *Store, in *Inspection, img []byte) {
	t.Helper()
	if err := s.Put(context.Background(), in, img); err != nil {
		t.Fatal(err)
	}
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// checkDB runs bbolt's consistency check on an open store.
func checkDB(t testing.TB, db *bolt.DB) {
	t.Helper()
	err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var ctx = context.Background()

type boltTx = bolt.Tx

func openBolt(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func mkdirWrite(t testing.TB, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
