package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestSamples: a label entry comes back with its label, its inspection and
// its JPEG; each entry that cannot become a sample says why, without
// failing the others of the batch.
func TestSamples(t *testing.T) {
	clk := newClock()
	s := openT(t, Options{Now: clk.Now})
	label := func(img []byte) (*Inspection, OutboxEntry) {
		t.Helper()
		in := rec(s, clk.Now(), "cam1", true)
		mustPut(t, s, in, img)
		clk.Advance(1)
		l, err := s.Label(ctx, LabelInput{ItemID: in.ID, By: "ana", Class: "crack"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Pending(0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p {
			if e.ID == l.OutboxID() {
				in, err = s.Get(in.ID)
				if err != nil {
					t.Fatal(err)
				}
				return in, e
			}
		}
		t.Fatalf("no outbox entry for %s", l.ID)
		return nil, OutboxEntry{}
	}
	withImage, e1 := label([]byte("jpeg-1"))
	noImage, e2 := label(nil)
	purged, e3 := label([]byte("jpeg-3"))
	if err := os.Remove(filepath.Join(s.ImageDir(), purged.Image)); err != nil {
		t.Fatal(err)
	}
	gone := e1
	gone.ID, gone.Ref = "label-gone", "0000000000000000-none-00000000"
	badPayload := e1
	badPayload.ID, badPayload.Payload = "label-bad", json.RawMessage(`[]`)
	event := OutboxEntry{ID: "ev-1", Kind: KindEvent, Payload: json.RawMessage(`{}`)}

	entries := []OutboxEntry{e1, e2, e3, gone, badPayload, event}
	got := s.Samples(entries)
	if len(got) != len(entries) {
		t.Fatalf("%d results for %d entries", len(got), len(entries))
	}
	for i, tc := range []struct {
		in   *Inspection
		jpeg []byte
		err  error // nil: no error; errAny: some error
	}{
		{withImage, []byte("jpeg-1"), nil},
		{noImage, nil, nil},
		{purged, nil, nil},
		{nil, nil, ErrNotFound},
		{nil, nil, errAny},
		{nil, nil, ErrInvalid},
	} {
		g := got[i]
		switch {
		case tc.err == nil && g.Err != nil:
			t.Fatalf("%s: %v", entries[i].ID, g.Err)
		case tc.err == errAny && g.Err == nil,
			tc.err != nil && tc.err != errAny && !errors.Is(g.Err, tc.err):
			t.Fatalf("%s: error %v, want %v", entries[i].ID, g.Err, tc.err)
		case tc.err != nil:
			continue
		}
		if g.Inspection.ID != tc.in.ID || g.Label.ItemID != tc.in.ID || g.Label.Class != "crack" {
			t.Fatalf("%s: label %+v inspection %+v", entries[i].ID, g.Label, g.Inspection)
		}
		if !bytes.Equal(g.JPEG, tc.jpeg) || (tc.jpeg == nil) != (g.JPEG == nil) {
			t.Fatalf("%s: jpeg %q, want %q", entries[i].ID, g.JPEG, tc.jpeg)
		}
	}
}

// errAny stands for "some error" in table tests.
var errAny = errors.New("any error")
