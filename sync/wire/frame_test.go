package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var frameEnv = Envelope{Type: TypeSample, ID: "label-0000000000000001-abcd-00000001-l1", Device: "d1", Time: t0, Ack: true}

func mustFrame(t testing.TB, e Envelope, s Sample) []byte {
	t.Helper()
	b, err := EncodeSampleFrame(e, &s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFrameGolden: the frame of the golden sample, byte for byte; its head
// is the JSON envelope with the image's data null, its tail the JPEG.
func TestFrameGolden(t *testing.T) {
	b := mustFrame(t, frameEnv, sample())
	path := filepath.Join("testdata", "sample-frame.bin")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("frame encoding changed:\n got %q\nwant %q", b, want)
	}
	if !IsFrame(want) || IsFrame([]byte(`{"v":1}`)) {
		t.Fatal("IsFrame")
	}
	n := binary.BigEndian.Uint32(want[5:9])
	head, jpeg := want[9:9+n], want[9+n:]
	if !bytes.Contains(head, []byte(`"data":null}}}`)) || !bytes.Equal(jpeg, sample().Image.Data) {
		t.Fatalf("head %s, tail %q", head, jpeg)
	}
}

// TestFrameSameAsJSON: a frame decodes to the sample its JSON envelope
// decodes to, with or without an image.
func TestFrameSameAsJSON(t *testing.T) {
	noImage := sample()
	noImage.Image = nil
	empty := sample()
	empty.Image = NewImage([]byte{})
	for _, tc := range []struct {
		name string
		s    Sample
	}{
		{"golden", sample()},
		{"50 KB", bigSample(50 << 10)},
		{"no image", noImage},
		{"empty image", empty},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js, err := Encode(frameEnv, tc.s)
			if err != nil {
				t.Fatal(err)
			}
			je, jsm, jerr := DecodeSample(js)
			fe, fsm, ferr := DecodeSample(mustFrame(t, frameEnv, tc.s))
			if jerr != nil || ferr != nil {
				t.Fatalf("json %v, frame %v", jerr, ferr)
			}
			je.Body, fe.Body = nil, nil // the frame's body has no image data
			if !reflect.DeepEqual(je, fe) || !reflect.DeepEqual(jsm, fsm) {
				t.Fatalf("frame differs from JSON:\nframe %+v %+v\n json %+v %+v", fe, fsm, je, jsm)
			}
		})
	}
}

func TestFrameErrors(t *testing.T) {
	good := mustFrame(t, frameEnv, sample())
	n := int(binary.BigEndian.Uint32(good[5:9]))
	head := good[9 : 9+n]
	frame := func(version byte, head, tail []byte) []byte {
		b := append([]byte("\x00LSF"), version, 0, 0, 0, 0)
		binary.BigEndian.PutUint32(b[5:], uint32(len(head)))
		return append(append(b, head...), tail...)
	}
	with := func(old, new string) []byte {
		return bytes.Replace(head, []byte(old), []byte(new), 1)
	}
	bad := sample()
	bad.Class = "../etc"
	lenient := func(n uint32) []byte {
		b := bytes.Clone(good)
		binary.BigEndian.PutUint32(b[5:], n)
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"short", []byte("\x00LSF\x01\x00"), ErrMalformed},
		{"newer frame", frame(2, head, sample().Image.Data), ErrVersion},
		{"frame version 0", frame(0, head, sample().Image.Data), ErrMalformed},
		{"head past the end", lenient(uint32(len(good))), ErrMalformed},
		{"head too large", lenient(MaxMessage + 1), ErrTooLarge},
		{"head not json", frame(1, []byte("{"), nil), ErrMalformed},
		{"newer envelope", frame(1, with(`"v":1`, `"v":2`), sample().Image.Data), ErrVersion},
		{"not a sample", frame(1, with(`"type":"sample"`, `"type":"ack"`), sample().Image.Data), ErrMalformed},
		{"data in the head", frame(1, with(`"data":null`, `"data":"AAAA"`), sample().Image.Data), ErrMalformed},
		{"bytes without an image", frame(1, mustFrame(t, frameEnv, Sample{LabelID: "x", ItemID: "y", Class: "ok"})[9:], []byte("x")), ErrMalformed},
		{"checksum", frame(1, head, append(bytes.Clone(sample().Image.Data), 0)), ErrChecksum},
		{"truncated image", good[:len(good)-1], ErrChecksum},
		{"class path", mustFrame(t, frameEnv, bad), ErrMalformed},
		{"no id", mustFrame(t, Envelope{Type: TypeSample, Time: t0}, sample()), ErrMalformed},
		{"image too large", frame(1, head, make([]byte, MaxImage+1)), ErrTooLarge},
	} {
		if _, _, err := DecodeSample(tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	big := sample()
	big.Image = NewImage(make([]byte, MaxImage+1))
	if _, err := EncodeSampleFrame(frameEnv, &big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("encode over the limit: %v", err)
	}
}
