package store

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixture builds, on a clock at t0, one item of every retention category,
// all two days old, each with a 10,000-byte image:
//
//	auto       automatic decision, nothing pending
//	labelled   labelled, label acknowledged
//	unsynced   labelled, label pending             (must survive)
//	corrected  label acked, correction pending     (must survive)
//	undone     labelled then undone: back in queue, unreviewed
//	queued     deferred, never reviewed
//	decided    automatic, its decision entry pending (DecisionsToOutbox)
//
// plus an old event in the outbox.
type fixture struct {
	clk  *clock
	path string
	ids  map[string]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clk: newClock(), path: filepath.Join(t.TempDir(), "ls.db"), ids: map[string]string{}}
	s, err := Open(f.path, Options{Now: f.clk.Now, RetentionEvery: -1, UndoWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := f.clk.Now()
	img := []byte(strings.Repeat("x", 10000))
	put := func(name string, review bool) string {
		in := rec(s, t0.Add(time.Duration(len(f.ids))*time.Second), "cam1", review)
		mustPut(t, s, in, img)
		f.ids[name] = in.ID
		return in.ID
	}
	label := func(id string) *Label {
		l, err := s.Label(ctx, LabelInput{ItemID: id, By: "alice", Class: "crack"})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	put("auto", false)
	l := label(put("labelled", true))
	s.Ack(ctx, l.OutboxID())
	label(put("unsynced", true))
	id := put("corrected", true)
	l = label(id)
	s.Ack(ctx, l.OutboxID())
	if _, err := s.Correct(ctx, LabelInput{ItemID: id, By: "bob", Class: "free"}); err != nil {
		t.Fatal(err)
	}
	id = put("undone", true)
	label(id)
	if err := s.Undo(ctx, id, "alice"); err != nil {
		t.Fatal(err)
	}
	put("queued", true)
	in := rec(s, t0.Add(10*time.Second), "cam1", false)
	mustPut(t, s, in, img)
	f.ids["decided"] = in.ID
	if err := s.Append(ctx, OutboxEntry{ID: "decision-" + in.ID, Kind: KindDecision, Ref: in.ID, Time: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, OutboxEntry{ID: "ev1", Kind: KindEvent, Time: t0}); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(48 * time.Hour)
	return f
}

func (f *fixture) open(t *testing.T, opts Options) *Store {
	t.Helper()
	opts.Now, opts.RetentionEvery = f.clk.Now, -1
	s, err := Open(f.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// assertUnsyncedLabelsKept: every pending label entry, its label, record
// and image are still there.
func assertUnsyncedLabelsKept(t *testing.T, s *Store, f *fixture) {
	t.Helper()
	for _, name := range []string{"unsynced", "corrected"} {
		id := f.ids[name]
		l, err := s.GetLabel(id)
		if err != nil {
			t.Fatalf("%s: label deleted: %v", name, err)
		}
		if ok, _ := s.Acked(l.OutboxID()); ok {
			t.Fatalf("%s: outbox entry %s deleted", name, l.OutboxID())
		}
		if _, err := s.Image(id); err != nil {
			t.Fatalf("%s: image deleted: %v", name, err)
		}
	}
	p, _ := s.Pending(0, 100)
	n := 0
	for _, e := range p {
		if e.Kind == KindLabel {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d label entries pending, want 2", n)
	}
	checkDB(t, s.DB())
	assertImagesConsistent(t, s)
}

func TestRetentionNeverDeletesUnsyncedLabel(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxAge   time.Duration
		maxBytes int64
		young    bool // records are younger than maxAge
	}{
		{"age only", 24 * time.Hour, 0, false},
		{"budget of one byte", 0, 1, false},
		{"age and budget", 24 * time.Hour, 1, false},
		{"budget, young records", 30 * 24 * time.Hour, 1, true},
		{"age and a generous budget", time.Hour, 1 << 40, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.open(t, Options{MaxAge: tc.maxAge, MaxBytes: tc.maxBytes})
			res, err := s.Retain(ctx)
			if err != nil {
				t.Fatal(err)
			}
			assertUnsyncedLabelsKept(t, s, f)
			// Everything else is deletable; when the limits are this tight it all goes.
			for _, name := range []string{"auto", "labelled", "undone", "queued", "decided"} {
				if _, err := s.Get(f.ids[name]); err == nil {
					t.Errorf("%s survived (result %+v)", name, res)
				}
			}
			st, _ := s.Stats()
			if st.Inspections != 2 || st.Images != 2 || st.Queue != 0 || st.Labels != 2 || st.OutboxLen() != 2 {
				t.Fatalf("left: %+v", st)
			}
			// Running again deletes nothing more; the unsynced labels still hold.
			res2, err := s.Retain(ctx)
			if err != nil || res2.Age != (Deleted{}) || res2.Budget != (Deleted{}) {
				t.Fatalf("second run: %+v %v", res2, err)
			}
			if tc.maxBytes == 1 && !res2.Over {
				t.Fatal("a one-byte budget cannot be met while labels are unsynced: Over should be true")
			}
			// Once the collector acknowledges them, they may go too.
			for _, name := range []string{"unsynced", "corrected"} {
				l, _ := s.GetLabel(f.ids[name])
				s.Ack(ctx, l.OutboxID())
			}
			if _, err := s.Retain(ctx); err != nil {
				t.Fatal(err)
			}
			if st, _ := s.Stats(); st.Inspections != 0 {
				t.Fatalf("after ack: %d inspections left", st.Inspections)
			}
		})
	}
}

func TestRetentionExactCountersAge(t *testing.T) {
	f := newFixture(t)
	s := f.open(t, Options{MaxAge: 24 * time.Hour})
	res, err := s.Retain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// auto, labelled, undone, queued, decided go; labelled carries its
	// synced label; undone and queued were unreviewed; decided drops its
	// pending decision entry, and the old event goes by age.
	want := Deleted{Images: 5, Inspections: 5, Unreviewed: 2, Labels: 1, Outbox: 2}
	if res.Age != want {
		t.Fatalf("deleted %+v, want %+v", res.Age, want)
	}
	st, _ := s.Stats()
	if st.DeletedByAge != want || st.DeletedByBudget != (Deleted{}) {
		t.Fatalf("stats %+v", st)
	}
	// Exact across restarts.
	s.Close()
	s = f.open(t, Options{})
	if st, _ := s.Stats(); st.DeletedByAge != want {
		t.Fatalf("after reopen %+v", st.DeletedByAge)
	}
}

func TestRetentionBudgetOrder(t *testing.T) {
	f := newFixture(t)
	// step reopens the file with a budget `need` bytes under its use and
	// no headroom, so retention frees just what is asked.
	step := func(need int64) (*Store, RetainResult) {
		u, _ := func() (Usage, error) { s := f.open(t, Options{}); defer s.Close(); return s.Usage() }()
		s := f.open(t, Options{MaxBytes: max(u.Total()-need, 1), Headroom: 1e-12})
		res, err := s.Retain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s, res
	}
	// 1. 15,000 bytes: the auto image (10,042 bytes counted), then the
	// labelled item's image; records stay, marked ImagePurged.
	s, res := step(15000)
	if want := (Deleted{Images: 2}); res.Budget != want {
		t.Fatalf("first cut %+v, want %+v", res.Budget, want)
	}
	auto, _ := s.Get(f.ids["auto"])
	lab, _ := s.Get(f.ids["labelled"])
	if auto == nil || !auto.ImagePurged || auto.Image != "" || lab == nil || !lab.ImagePurged {
		t.Fatalf("images of auto and labelled should be purged, records kept: %+v %+v", auto, lab)
	}
	if q, _ := s.Get(f.ids["queued"]); q.Image == "" {
		t.Fatal("queued image went before its turn")
	}
	assertImagesConsistent(t, s)
	s.Close()

	// 2. A little more: synced records go next (auto, then labelled with
	// its label); the pending decision entry and the queue are untouched.
	s, res = step(100)
	if want := (Deleted{Inspections: 1}); res.Budget != want {
		t.Fatalf("second cut %+v, want %+v", res.Budget, want)
	}
	if _, err := s.Get(f.ids["auto"]); err == nil {
		t.Fatal("oldest synced record should be gone")
	}
	s.Close()

	// 3. Everything: labelled record, then outbox entries (decision,
	// event), the decided record and its image, then the unreviewed queue.
	s, res = step(1 << 30)
	want := Deleted{Images: 3, Inspections: 4, Unreviewed: 2, Labels: 1, Outbox: 2}
	if res.Budget != want || !res.Over {
		t.Fatalf("third cut %+v over=%v, want %+v", res.Budget, res.Over, want)
	}
	st, _ := s.Stats()
	total := Deleted{Images: 5, Inspections: 5, Unreviewed: 2, Labels: 1, Outbox: 2}
	if st.DeletedByBudget != total {
		t.Fatalf("counters %+v, want %+v", st.DeletedByBudget, total)
	}
	assertUnsyncedLabelsKept(t, s, f)
}

func TestBackgroundRetention(t *testing.T) {
	f := newFixture(t)
	s, err := Open(f.path, Options{Now: f.clk.Now, MaxAge: 24 * time.Hour, RetentionEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := s.Stats()
		if st.DeletedByAge.Inspections == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background retention did not run: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMigrationFromV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	makeV1(t, path)
	s, err := Open(path, Options{RetentionEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.SchemaVersion(); v != schemaVersion {
		t.Fatalf("schema %d", v)
	}
	st, _ := s.Stats()
	if st.Inspections != 3 || st.Queue != 1 || st.Labels != 1 || st.Images != 1 || st.Outbox[KindLabel] != 1 || st.Outbox[KindEvent] != 1 {
		t.Fatalf("counters after migration %+v", st)
	}
	if st.Usage.ImageBytes != 4 {
		t.Fatalf("image bytes %d", st.Usage.ImageBytes)
	}
	// The new indexes work on the old data: Ack by ID, protection of the
	// unsynced label, the queue.
	if b, err := s.Image(v1IDs[0]); err != nil || string(b) != "jpeg" {
		t.Fatalf("image %q %v", b, err)
	}
	q, _, err := s.Next(ctx, "alice", QueueFilter{}, 0)
	if err != nil || q.ID != v1IDs[2] {
		t.Fatalf("queue %+v %v", q, err)
	}
	err = s.view(func(tx *boltTx) error {
		if !protected(tx, v1IDs[1]) || protected(tx, v1IDs[0]) {
			t.Error("pending_ref index not rebuilt")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Ack(ctx, "label-"+v1IDs[1]+"-l1", "ev-old"); n != 2 || err != nil {
		t.Fatalf("ack on migrated outbox: %d %v", n, err)
	}
	checkDB(t, s.DB())
	// A file from the future is refused.
	s.Close()
	db := openBolt(t, path)
	db.Update(func(tx *boltTx) error { return tx.Bucket(bMeta).Put(keySchema, u64(schemaVersion+1)) })
	db.Close()
	_, err = Open(path, Options{})
	wantErr(t, err, ErrSchemaTooNew)
}

var v1IDs = []string{"1822a0f000000000-0001-00000001", "1822a0f000000001-0001-00000002", "1822a0f000000002-0001-00000003"}

// makeV1 writes a schema-1 file by hand: no indexes, no counters.
func makeV1(t *testing.T, path string) {
	t0 := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	db := openBolt(t, path)
	defer db.Close()
	err := db.Update(func(tx *boltTx) error {
		if err := migrateV1(tx); err != nil {
			return err
		}
		tx.Bucket(bMeta).Put(keySchema, u64(1))
		ins := tx.Bucket(bInspections)
		for i, id := range v1IDs {
			in := Inspection{ID: id, Time: t0, Camera: "cam1", Review: i > 0}
			if i == 0 {
				in.Image, in.ImageBytes = imageRel(id), 4
			}
			b, _ := json.Marshal(in)
			ins.Put([]byte(id), b)
		}
		q, _ := json.Marshal(QueueItem{ID: v1IDs[2], Time: t0, Camera: "cam1"})
		tx.Bucket(bQueue).Put([]byte(v1IDs[2]), q)
		l := Label{ID: v1IDs[1] + "-l1", ItemID: v1IDs[1], By: "alice", Class: "crack", Revision: 1}
		lb, _ := json.Marshal(l)
		tx.Bucket(bLabels).Put([]byte(v1IDs[1]), lb)
		ob := tx.Bucket(bOutbox)
		for _, e := range []OutboxEntry{
			{ID: l.OutboxID(), Kind: KindLabel, Ref: v1IDs[1], Time: t0, Payload: lb},
			{ID: "ev-old", Kind: KindEvent, Time: t0},
		} {
			n, _ := ob.NextSequence()
			b, _ := json.Marshal(e)
			ob.Put(u64(n), b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(path+".images", imageRel(v1IDs[0]))
	mkdirWrite(t, p, "jpeg")
}
