package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/linesight/linesight/agent/policy"
)

func TestPutGetRoundTrip(t *testing.T) {
	s := openT(t, Options{})
	now := time.Date(2025, 3, 1, 8, 0, 0, 123456789, time.UTC)
	in := rec(s, now, "cam1", true)
	in.Detail = "p_good 0.55 between 0.2 and 0.9"
	in.Audit = false
	img := []byte("\xff\xd8 fake jpeg \xff\xd9")
	mustPut(t, s, in, img)

	got, err := s.Get(in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(in.Time) {
		t.Fatalf("time %v, want %v", got.Time, in.Time)
	}
	got.Time = in.Time
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, in)
	}
	if got.Image == "" || got.ImageBytes != int64(len(img)) {
		t.Fatalf("image reference %q %d", got.Image, got.ImageBytes)
	}
	b, err := s.Image(in.ID)
	if err != nil || !bytes.Equal(b, img) {
		t.Fatalf("image %q %v", b, err)
	}
	if tm, _ := IDTime(in.ID); !tm.Equal(now) {
		t.Fatalf("IDTime %v", tm)
	}

	// Redelivery of the same ID is harmless: the first record stays.
	dup := *in
	dup.Camera = "other"
	mustPut(t, s, &dup, img)
	got, _ = s.Get(in.ID)
	if got.Camera != "cam1" {
		t.Fatalf("duplicate overwrote the record: camera %q", got.Camera)
	}
	st, _ := s.Stats()
	if st.Inspections != 1 || st.Queue != 1 || st.Images != 1 || st.Usage.ImageBytes != int64(len(img)) {
		t.Fatalf("stats after duplicate: %+v", st)
	}

	_, err = s.Get(s.NewID(now))
	wantErr(t, err, ErrNotFound)
	bad := rec(s, now, "cam1", false)
	bad.ID = "../../etc/passwd"
	wantErr(t, s.Put(ctx, bad, nil), ErrInvalid)
	bad = rec(s, now, "", false)
	wantErr(t, s.Put(ctx, bad, nil), ErrInvalid)
}

func TestIDsSortByTime(t *testing.T) {
	s := openT(t, Options{})
	t0 := time.Unix(1700000000, 0)
	var ids []string
	for i := 0; i < 100; i++ {
		ids = append(ids, s.NewID(t0.Add(time.Duration(i*7919%100)*time.Microsecond)))
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		a, _ := IDTime(sorted[i-1])
		b, _ := IDTime(sorted[i])
		if a.After(b) {
			t.Fatalf("%s sorts before %s but is later", sorted[i-1], sorted[i])
		}
	}
	if len(slices.Compact(sorted)) != 100 {
		t.Fatal("duplicate IDs")
	}
}

func TestQueueOrderAndFilters(t *testing.T) {
	s := openT(t, Options{})
	t0 := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	type spec struct {
		min    int
		cam    string
		reason policy.Reason
		audit  bool
	}
	specs := []spec{
		{5, "cam1", policy.ReasonUncertain, false},
		{1, "cam2", policy.ReasonBrightness, false},
		{3, "cam1", policy.ReasonConfidentPass, true},
		{2, "cam1", policy.ReasonUncertain, false},
		{4, "cam2", policy.ReasonUncertain, false},
	}
	ids := map[int]string{}
	for _, sp := range specs { // written out of time order
		// As policy.Decide marks them: an audit sample is an automatic
		// decision with Review and Audit both set.
		in := rec(s, t0.Add(time.Duration(sp.min)*time.Minute), sp.cam, true)
		in.Reason, in.Audit = sp.reason, sp.audit
		if sp.audit {
			in.Verdict = policy.Pass
		}
		mustPut(t, s, in, nil)
		ids[sp.min] = in.ID
	}
	mustPut(t, s, rec(s, t0, "cam1", false), nil) // automatic, not queued

	mins := func(items []QueueItem) []int {
		var out []int
		for _, q := range items {
			for m, id := range ids {
				if id == q.ID {
					out = append(out, m)
				}
			}
		}
		return out
	}
	yes, no := true, false
	for _, tc := range []struct {
		name string
		f    QueueFilter
		want []int
	}{
		{"all oldest first", QueueFilter{}, []int{1, 2, 3, 4, 5}},
		{"camera", QueueFilter{Camera: "cam1"}, []int{2, 3, 5}},
		{"reason", QueueFilter{Reason: policy.ReasonUncertain}, []int{2, 4, 5}},
		{"camera and reason", QueueFilter{Camera: "cam2", Reason: policy.ReasonUncertain}, []int{4}},
		{"audit only", QueueFilter{Audit: &yes}, []int{3}},
		{"deferred only", QueueFilter{Audit: &no}, []int{1, 2, 4, 5}},
		{"no match", QueueFilter{Camera: "cam9"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items, err := s.Queue(tc.f, 100)
			if err != nil {
				t.Fatal(err)
			}
			if got := mins(items); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	items, _ := s.Queue(QueueFilter{}, 2)
	if len(items) != 2 {
		t.Fatalf("limit: %d items", len(items))
	}
}

func TestLeasesTwoInspectors(t *testing.T) {
	clk := newClock()
	s := openT(t, Options{Now: clk.Now, LeaseFor: time.Minute})
	t0 := clk.Now()
	a := rec(s, t0, "cam1", true)
	b := rec(s, t0.Add(time.Second), "cam1", true)
	c := rec(s, t0.Add(2*time.Second), "cam2", true)
	for _, in := range []*Inspection{a, b, c} {
		mustPut(t, s, in, nil)
	}

	qa, ina, err := s.Next(ctx, "alice", QueueFilter{}, 0)
	if err != nil || qa.ID != a.ID || ina.ID != a.ID || qa.LeaseBy != "alice" {
		t.Fatalf("alice next: %+v %v", qa, err)
	}
	qb, _, err := s.Next(ctx, "bob", QueueFilter{}, 0)
	if err != nil || qb.ID != b.ID {
		t.Fatalf("bob should get the next item, got %+v %v", qb, err)
	}
	// Alice asking again gets her own item back (still the oldest free to her).
	if q, _, _ := s.Next(ctx, "alice", QueueFilter{}, 0); q.ID != a.ID {
		t.Fatalf("alice again got %s", q.ID)
	}
	_, err = s.Claim(ctx, a.ID, "bob", 0)
	wantErr(t, err, ErrLeaseHeld)
	_, err = s.Label(ctx, LabelInput{ItemID: a.ID, By: "bob", Class: "crack"})
	wantErr(t, err, ErrLeaseHeld)
	if _, _, err := s.Next(ctx, "carol", QueueFilter{Camera: "cam1"}, 0); !errors.Is(err, ErrQueueEmpty) {
		t.Fatalf("carol on cam1: %v, want ErrQueueEmpty", err)
	}

	// Alice labels; bob, who saw the item leased, is now told it is labelled.
	if _, err := s.Label(ctx, LabelInput{ItemID: a.ID, By: "alice", Class: "crack"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Claim(ctx, a.ID, "bob", 0)
	wantErr(t, err, ErrAlreadyLabelled)
	_, err = s.Label(ctx, LabelInput{ItemID: a.ID, By: "bob", Class: "free"})
	wantErr(t, err, ErrAlreadyLabelled)

	// Bob's lease expires: carol may take his item.
	clk.Advance(61 * time.Second)
	if q, err := s.Claim(ctx, b.ID, "carol", 0); err != nil || q.LeaseBy != "carol" {
		t.Fatalf("claim after expiry: %+v %v", q, err)
	}
	// Skip: carol releases, bob takes it back.
	if err := s.Release(ctx, b.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, b.ID, "bob", 0); err != nil {
		t.Fatal(err)
	}
	_, err = s.Claim(ctx, "0000000000000001-x", "bob", 0)
	wantErr(t, err, ErrNotFound)
}

func TestConcurrentNextNeverSharesAnItem(t *testing.T) {
	s := openT(t, Options{NoSync: true})
	t0 := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	const n = 60
	for i := 0; i < n; i++ {
		mustPut(t, s, rec(s, t0.Add(time.Duration(i)*time.Second), "cam1", true), nil)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for _, who := range []string{"alice", "bob", "carol", "dave"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				q, _, err := s.Next(ctx, who, QueueFilter{}, time.Hour)
				if errors.Is(err, ErrQueueEmpty) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, ok := seen[q.ID]; ok {
					t.Errorf("%s leased to %s and %s", q.ID, prev, who)
				}
				seen[q.ID] = who
				mu.Unlock()
				if _, err := s.Label(ctx, LabelInput{ItemID: q.ID, By: who, Class: "free"}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st, _ := s.Stats()
	if len(seen) != n || st.Labels != n || st.Queue != 0 || st.Outbox[KindLabel] != n {
		t.Fatalf("seen %d, stats %+v", len(seen), st)
	}
}

func TestLabelCommitsLabelQueueAndOutboxTogether(t *testing.T) {
	clk := newClock()
	s := openT(t, Options{Now: clk.Now})
	in := rec(s, clk.Now(), "cam1", true)
	in.Top = "crack"
	mustPut(t, s, in, []byte("jpeg"))

	l, err := s.Label(ctx, LabelInput{ItemID: in.ID, By: "alice", Class: "blowhole", Note: "edge"})
	if err != nil {
		t.Fatal(err)
	}
	want := &Label{ID: in.ID + "-l1", ItemID: in.ID, Camera: "cam1", By: "alice", At: clk.Now(), Class: "blowhole",
		Note: "edge", Revision: 1, Suggested: "crack", ModelVerdict: policy.Defer, Model: in.Model}
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("label\n got %+v\nwant %+v", l, want)
	}
	stored, err := s.GetLabel(in.ID)
	if err != nil || !stored.At.Equal(want.At) || stored.Class != "blowhole" {
		t.Fatalf("stored label %+v %v", stored, err)
	}
	if q, _ := s.Queue(QueueFilter{}, 10); len(q) != 0 {
		t.Fatalf("item still queued: %+v", q)
	}
	p, _ := s.Pending(0, 10)
	if len(p) != 1 || p[0].ID != "label-"+l.ID || p[0].Kind != KindLabel || p[0].Ref != in.ID {
		t.Fatalf("outbox %+v", p)
	}
	var sent Label
	if err := json.Unmarshal(p[0].Payload, &sent); err != nil || sent.Class != "blowhole" || sent.Suggested != "crack" {
		t.Fatalf("payload %s %v", p[0].Payload, err)
	}
	st, _ := s.Stats()
	if st.Labels != 1 || st.Queue != 0 || st.Outbox[KindLabel] != 1 {
		t.Fatalf("stats %+v", st)
	}

	// A label that fails leaves nothing behind, even when it shares a
	// group commit with labels that succeed.
	var items []*Inspection
	for i := 0; i < 20; i++ {
		it := rec(s, clk.Now().Add(time.Duration(i+1)*time.Second), "cam2", true)
		mustPut(t, s, it, nil)
		items = append(items, it)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(items)+1)
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Label(ctx, LabelInput{ItemID: it.ID, By: "bob", Class: "free"})
		}()
	}
	wg.Add(1)
	go func() { // already labelled by alice
		defer wg.Done()
		_, errs[len(items)] = s.Label(ctx, LabelInput{ItemID: in.ID, By: "bob", Class: "free"})
	}()
	wg.Wait()
	for i, err := range errs[:len(items)] {
		if err != nil {
			t.Fatalf("label %d: %v", i, err)
		}
	}
	wantErr(t, errs[len(items)], ErrAlreadyLabelled)
	st, _ = s.Stats()
	p, _ = s.Pending(0, 100)
	if st.Labels != 21 || st.Queue != 0 || len(p) != 21 || st.Outbox[KindLabel] != 21 {
		t.Fatalf("after batch: stats %+v, %d pending", st, len(p))
	}
	if l, _ := s.GetLabel(in.ID); l.By != "alice" {
		t.Fatalf("label overwritten by %s", l.By)
	}
	_, err = s.Label(ctx, LabelInput{ItemID: s.NewID(clk.Now()), By: "bob", Class: "free"})
	wantErr(t, err, ErrNotFound)
	_, err = s.Label(ctx, LabelInput{ItemID: items[0].ID, By: "", Class: "free"})
	wantErr(t, err, ErrInvalid)
}

func TestUndoAndCorrect(t *testing.T) {
	clk := newClock()
	s := openT(t, Options{Now: clk.Now, UndoWindow: time.Minute})
	in := rec(s, clk.Now(), "cam1", true)
	mustPut(t, s, in, nil)
	if _, err := s.Label(ctx, LabelInput{ItemID: in.ID, By: "alice", Class: "crack"}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.Undo(ctx, in.ID, "bob"), ErrNotYourLabel)
	if err := s.Undo(ctx, in.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetLabel(in.ID)
	wantErr(t, err, ErrNotFound)
	if p, _ := s.Pending(0, 10); len(p) != 0 {
		t.Fatalf("undo left outbox entries %+v", p)
	}
	q, _ := s.Queue(QueueFilter{}, 10)
	if len(q) != 1 || q[0].ID != in.ID || q[0].LeaseBy != "alice" {
		t.Fatalf("item not back in queue leased to alice: %+v", q)
	}
	wantErr(t, s.Undo(ctx, in.ID, "alice"), ErrNotFound)

	// Label again; too late to undo.
	l, err := s.Label(ctx, LabelInput{ItemID: in.ID, By: "alice", Class: "free"})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	wantErr(t, s.Undo(ctx, in.ID, "alice"), ErrUndoExpired)

	// Within the window but already synced.
	in2 := rec(s, clk.Now(), "cam1", true)
	mustPut(t, s, in2, nil)
	l2, _ := s.Label(ctx, LabelInput{ItemID: in2.ID, By: "alice", Class: "free"})
	if n, err := s.Ack(ctx, l2.OutboxID()); n != 1 || err != nil {
		t.Fatalf("ack %d %v", n, err)
	}
	wantErr(t, s.Undo(ctx, in2.ID, "alice"), ErrAlreadySynced)

	// A correcting label supersedes it with its own outbox entry.
	c, err := s.Correct(ctx, LabelInput{ItemID: in2.ID, By: "alice", Class: "crack"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Revision != 2 || c.Supersedes != l2.ID || c.ID != in2.ID+"-l2" {
		t.Fatalf("correction %+v", c)
	}
	p, _ := s.Pending(0, 10)
	if len(p) != 2 || p[0].ID != l.OutboxID() || p[1].ID != c.OutboxID() {
		t.Fatalf("outbox %+v", p)
	}
	// Undoing the correction restores the synced label.
	if err := s.Undo(ctx, in2.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	back, _ := s.GetLabel(in2.ID)
	if back.ID != l2.ID || back.Class != "free" {
		t.Fatalf("after undoing the correction: %+v", back)
	}
	st, _ := s.Stats()
	if st.Labels != 2 || st.Outbox[KindLabel] != 1 {
		t.Fatalf("stats %+v", st)
	}
	_, err = s.Correct(ctx, LabelInput{ItemID: rec(s, clk.Now(), "c", true).ID, By: "a", Class: "x"})
	wantErr(t, err, ErrNotFound)
}

func TestOutboxOrderAndAck(t *testing.T) {
	s := openT(t, Options{DecisionsToOutbox: true})
	t0 := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	var want []string
	for i := 0; i < 5; i++ {
		in := rec(s, t0.Add(time.Duration(i)*time.Second), "cam1", false)
		mustPut(t, s, in, nil)
		want = append(want, "decision-"+in.ID)
		ev := OutboxEntry{ID: "ev-" + in.ID, Kind: KindEvent, Payload: json.RawMessage(`{"alarm":"drift"}`)}
		if err := s.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
		want = append(want, ev.ID)
	}
	// Appending the same ID again is a no-op.
	if err := s.Append(ctx, OutboxEntry{ID: want[1], Kind: KindEvent}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.Append(ctx, OutboxEntry{ID: "x", Kind: KindLabel}), ErrInvalid)
	wantErr(t, s.Append(ctx, OutboxEntry{ID: "x", Kind: KindEvent, Payload: []byte("{")}), ErrInvalid)

	ids := func(es []OutboxEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	all, _ := s.Pending(0, 100)
	if !slices.Equal(ids(all), want) {
		t.Fatalf("order\n got %v\nwant %v", ids(all), want)
	}
	var d Inspection
	if err := json.Unmarshal(all[0].Payload, &d); err != nil || d.ID != all[0].Ref {
		t.Fatalf("decision payload: %v", err)
	}
	// Paging with after.
	var paged []OutboxEntry
	var after uint64
	for {
		page, err := s.Pending(after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1].Seq
	}
	if !slices.Equal(ids(paged), want) {
		t.Fatalf("paged %v", ids(paged))
	}
	// Ack removes only the acknowledged ones, idempotently.
	n, err := s.Ack(ctx, want[0], want[3], "unknown")
	if n != 2 || err != nil {
		t.Fatalf("ack: %d %v", n, err)
	}
	n, _ = s.Ack(ctx, want[0], want[3])
	if n != 0 {
		t.Fatalf("second ack removed %d", n)
	}
	rest, _ := s.Pending(0, 100)
	wantRest := slices.Concat(want[1:3], want[4:])
	if !slices.Equal(ids(rest), wantRest) {
		t.Fatalf("after ack %v, want %v", ids(rest), wantRest)
	}
	if ok, _ := s.Acked(want[0]); !ok {
		t.Fatal("Acked false after ack")
	}
	st, _ := s.Stats()
	if st.Outbox[KindDecision] != 4 || st.Outbox[KindEvent] != 4 || st.OutboxLen() != 8 {
		t.Fatalf("counts %+v", st.Outbox)
	}
	// Sequences keep growing after deletes: a new entry sorts last.
	if err := s.Append(ctx, OutboxEntry{ID: "late", Kind: KindTelemetry}); err != nil {
		t.Fatal(err)
	}
	rest, _ = s.Pending(rest[len(rest)-1].Seq, 10)
	if len(rest) != 1 || rest[0].ID != "late" {
		t.Fatalf("late entry %+v", rest)
	}
}

func TestCloseCommitsSubmittedAndRefusesNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ls.db")
	s, err := Open(path, Options{RetentionEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				in := rec(s, t0.Add(time.Duration(g*100000+i)), "cam1", false)
				err := s.Put(ctx, in, nil)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, in.ID)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	wantErr(t, s.Put(ctx, rec(s, t0, "cam1", false), nil), ErrClosed)
	_, err = s.Get("x")
	wantErr(t, err, ErrClosed)

	s2, err := Open(path, Options{RetentionEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, id := range acked {
		if _, err := s2.Get(id); err != nil {
			t.Fatalf("acknowledged %s lost: %v", id, err)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no Put completed before Close")
	}
}

func TestImagesConsistency(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ls.db")
	s, err := Open(path, Options{RetentionEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 1, 23, 59, 59, 0, time.UTC) // two day folders
	var withImg []string
	for i := 0; i < 6; i++ {
		in := rec(s, t0.Add(time.Duration(i)*time.Second/2), "cam1", true)
		mustPut(t, s, in, []byte("jpeg-"+in.ID))
		withImg = append(withImg, in.ID)
	}
	s.Close()

	// Leftovers of a crash: an image written but never committed, a
	// temporary file, and a file in the wrong place.
	day := filepath.Join(path+".images", "20250301")
	orphan := filepath.Join(day, "18271a2b3c4d5e6f-dead-00000001.jpg")
	tmp := filepath.Join(day, withImg[0]+".123.tmp")
	misplaced := filepath.Join(path+".images", "20240101", withImg[0]+".jpg")
	for _, p := range []string{orphan, tmp, misplaced} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err = Open(path, Options{RetentionEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range []string{orphan, tmp, misplaced} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s not swept: %v", p, err)
		}
	}
	st, _ := s.Stats()
	if st.OrphansSwept != 3 {
		t.Fatalf("orphans swept %d", st.OrphansSwept)
	}
	assertImagesConsistent(t, s)
	for _, id := range withImg {
		if b, err := s.Image(id); err != nil || string(b) != "jpeg-"+id {
			t.Fatalf("image %s: %q %v", id, b, err)
		}
	}
	// A failed Put (invalid record) writes no image at all.
	bad := rec(s, t0, "", true)
	wantErr(t, s.Put(ctx, bad, []byte("jpeg")), ErrInvalid)
	assertImagesConsistent(t, s)
}

// assertImagesConsistent: every record's image exists, every file has a
// record pointing to it, and the byte count matches.
func assertImagesConsistent(t *testing.T, s *Store) {
	t.Helper()
	files := map[string]int64{}
	filepath.WalkDir(s.ImageDir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			info, _ := d.Info()
			rel, _ := filepath.Rel(s.ImageDir(), p)
			files[filepath.ToSlash(rel)] = info.Size()
		}
		return nil
	})
	recs, err := s.Recent("", 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	referenced := 0
	for _, in := range recs {
		if in.Image == "" {
			continue
		}
		referenced++
		size, ok := files[in.Image]
		if !ok {
			t.Errorf("record %s points to missing image %s", in.ID, in.Image)
		}
		total += size
	}
	if referenced != len(files) {
		t.Errorf("%d files, %d referenced", len(files), referenced)
	}
	st, _ := s.Stats()
	if st.Usage.ImageBytes != total || st.Images != uint64(referenced) {
		t.Errorf("image accounting: %d bytes %d images, files hold %d bytes %d images", st.Usage.ImageBytes, st.Images, total, referenced)
	}
}

func TestFromDecisionQueuesDeferredAndAudited(t *testing.T) {
	s := openT(t, Options{})
	cfg := policy.Config{Level: policy.Partial, PassThreshold: 0.9, RejectThreshold: 0.9, FailSafe: policy.Reject, AuditSample: 0.5}
	t0 := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	cases := []struct {
		probs       []float64
		draw        float64
		queued, aud bool
	}{
		{[]float64{0.99, 0.01}, 0.9, false, false}, // confident pass, not sampled
		{[]float64{0.99, 0.01}, 0.1, true, true},   // confident pass, audit-sampled
		{[]float64{0.6, 0.4}, 0.9, true, false},    // uncertain: deferred
	}
	for i, c := range cases {
		d := policy.Decide(cfg, policy.Input{Labels: []string{"free", "crack"}, Probs: c.probs, Good: []string{"free"}, AuditDraw: c.draw})
		in := &Inspection{ID: s.NewID(t0.Add(time.Duration(i) * time.Second)), Time: t0, Camera: "cam1"}
		in.FromDecision(d)
		mustPut(t, s, in, nil)
		q, _ := s.Queue(QueueFilter{}, 10)
		found := slices.IndexFunc(q, func(q QueueItem) bool { return q.ID == in.ID })
		if (found >= 0) != c.queued || found >= 0 && q[found].Audit != c.aud {
			t.Fatalf("case %d: decision %+v: queued=%v (%+v)", i, d, found >= 0, q)
		}
		got, _ := s.Get(in.ID)
		if got.Verdict != d.Verdict || got.Reason != d.Reason || got.ModelVerdict != d.Model || got.Top != d.Top {
			t.Fatalf("case %d: record %+v for decision %+v", i, got, d)
		}
	}
}
