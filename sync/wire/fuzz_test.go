package wire

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// Every decoder is fuzzed; the golden files are the seeds, so `go test`
// runs them as ordinary cases. A decoder may refuse anything, but must not
// panic, and what it accepts must re-encode and decode to the same thing.
func seeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":99,"type":"x"}`))
	f.Add([]byte(`null`))
}

func FuzzDecodeStatus(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = DecodeStatus(b) })
}

func FuzzDecodeTelemetry(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = DecodeTelemetry(b) })
}

func FuzzDecodeEvent(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = DecodeEvent(b) })
}

func FuzzDecodeDecision(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = DecodeDecision(b) })
}

func FuzzDecodeSample(f *testing.F) {
	seeds(f)
	frames, _ := filepath.Glob(filepath.Join("testdata", "*.bin"))
	for _, p := range frames {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\x00LSF\x01\x00\x00\x00\x02{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSameAsJSON(t, b)
		e, s, err := DecodeSample(b)
		if err != nil {
			return
		}
		if !ValidID(s.Class) || !ValidRecordID(s.ItemID) || !ValidRecordID(e.ID) {
			t.Fatalf("accepted unsafe names: %+v", s)
		}
		again, err := Encode(e, s)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		_, s2, err := DecodeSample(again)
		if err != nil || s2.LabelID != s.LabelID {
			t.Fatalf("re-decode: %v", err)
		}
		// Whichever it came as, its frame decodes to what its JSON does.
		framed, err := EncodeSampleFrame(e, &s)
		if err != nil {
			t.Fatalf("encode frame: %v", err)
		}
		if _, s3, err := DecodeSample(framed); err != nil || !reflect.DeepEqual(s3, s2) {
			t.Fatalf("frame round trip: %v\n got %+v\nwant %+v", err, s3, s2)
		}
	})
}

func FuzzDecodeCommand(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, c, err := DecodeCommand(b)
		if err == nil && c.Op != OpRollback && c.Op != OpPromote && !ValidID(c.Camera) {
			t.Fatalf("accepted command with camera %q", c.Camera)
		}
	})
}

func FuzzDecodeConfig(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = DecodeConfig(b) })
}

func FuzzDecodeAck(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = DecodeAck(b) })
}
