package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func modelOffer() ModelOffer {
	return ModelOffer{
		Release:   json.RawMessage(`{"format":1,"offer":"0a1b2c3d","name":"tilenet","version":"4"}`),
		KeyID:     "ed25519:0011223344556677",
		Signature: bytes.Repeat([]byte{7}, 64),
		URL:       "https://models.example/tilenet/4",
	}
}

// TestModelGolden encodes every model message and compares with
// testdata/model-*.json (go test -update rewrites them).
func TestModelGolden(t *testing.T) {
	msgs := []struct {
		name string
		env  Envelope
		body any
	}{
		{"model-offer", Envelope{Type: TypeModelOffer, ID: "offer-0a1b2c3d", Time: t0}, modelOffer()},
		{"model-request", Envelope{Type: TypeModelRequest, Device: "d1", Time: t0}, ModelRequest{Offer: "0a1b2c3d", Chunks: []int{0, 1, 5}}},
		{"model-chunk", Envelope{Type: TypeModelChunk, Time: t0}, NewModelChunk("0a1b2c3d", 5, []byte("onnx bytes"))},
		{"model-state", Envelope{Type: TypeModelState, Device: "d1", Time: t0}, ModelState{State: ModelShadow, Offer: "0a1b2c3d",
			Model: ModelRef{"tilenet", "4"}, Active: ModelRef{"tilenet", "3"}, Previous: ModelRef{"tilenet", "2"}, Have: 12, Total: 12,
			Shadow: &ShadowStats{Frames: 250, Agreement: 0.98, ActiveLatencyMS: 4.1, ShadowLatencyMS: 4.5, LatencyRatio: 1.1, ActiveAutomation: 0.9, ShadowAutomation: 0.94}}},
		{"model-state-rejected", Envelope{Type: TypeModelState, Device: "d1", Time: t0}, ModelState{State: ModelRejected, Offer: "0a1b2c3d",
			Model: ModelRef{"tilenet", "1"}, Active: ModelRef{"tilenet", "3"}, Code: "older-version", Error: "version 1 is older than the active 3"}},
	}
	for _, m := range msgs {
		golden(t, m.name, m.env, m.body)
	}
	// The offer's signed bytes survive the envelope untouched.
	b, _ := os.ReadFile(filepath.Join("testdata", "model-offer.json"))
	_, o, err := DecodeModelOffer(b)
	if err != nil || !bytes.Equal(o.Release, modelOffer().Release) {
		t.Fatalf("offer round trip: %v, release %s", err, o.Release)
	}
	if _, s, err := DecodeModelState(mustRead(t, "model-state.json")); err != nil || s.Shadow.Frames != 250 {
		t.Fatalf("state round trip: %v %+v", err, s)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestModelDecodeErrors(t *testing.T) {
	enc := func(typ string, body any) []byte {
		b, err := Encode(Envelope{Type: typ, Time: t0}, body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	short := modelOffer()
	short.Signature = short.Signature[:10]
	ftp := modelOffer()
	ftp.URL = "ftp://x/y"
	badChunk := NewModelChunk("o1", 0, []byte("abc"))
	badChunk.Data[0] = 'x'
	big := NewModelChunk("o1", 0, make([]byte, MaxChunkData+1))
	cases := []struct {
		name   string
		decode func([]byte) error
		data   []byte
		want   error
	}{
		{"offer short signature", offerErr, enc(TypeModelOffer, short), ErrMalformed},
		{"offer ftp url", offerErr, enc(TypeModelOffer, ftp), ErrMalformed},
		{"offer as chunk", offerErr, enc(TypeModelChunk, NewModelChunk("o1", 0, []byte("a"))), ErrMalformed},
		{"offer newer version", offerErr, []byte(`{"v":2,"type":"model.offer","body":{}}`), ErrVersion},
		{"offer too large", offerErr, append([]byte(`{"v":1,"type":"model.offer","body":"`), bytes.Repeat([]byte("a"), MaxMessage)...), ErrTooLarge},
		{"chunk checksum", chunkErr, enc(TypeModelChunk, badChunk), ErrChecksum},
		{"chunk negative index", chunkErr, enc(TypeModelChunk, ModelChunk{Offer: "o1", Index: -1, Data: []byte("a"), SHA256: SHA256([]byte("a"))}), ErrMalformed},
		{"chunk bad offer", chunkErr, enc(TypeModelChunk, NewModelChunk("../x", 0, []byte("a"))), ErrMalformed},
		{"chunk over MaxChunkData", chunkErr, enc(TypeModelChunk, big), ErrTooLarge},
		{"request empty", requestErr, enc(TypeModelRequest, ModelRequest{Offer: "o1"}), ErrMalformed},
		{"request too many", requestErr, enc(TypeModelRequest, ModelRequest{Offer: "o1", Chunks: make([]int, MaxRequestChunk+1)}), ErrMalformed},
		{"state unknown", stateErr, enc(TypeModelState, ModelState{State: "exploded"}), ErrMalformed},
	}
	for _, c := range cases {
		if err := c.decode(c.data); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func offerErr(b []byte) error   { _, _, err := DecodeModelOffer(b); return err }
func chunkErr(b []byte) error   { _, _, err := DecodeModelChunk(b); return err }
func requestErr(b []byte) error { _, _, err := DecodeModelRequest(b); return err }
func stateErr(b []byte) error   { _, _, err := DecodeModelState(b); return err }

func TestModelTopics(t *testing.T) {
	cases := []struct {
		topic string
		want  ModelAddress
		err   bool
	}{
		{"linesight/v1/p1/d1/model/offer", ModelAddress{Site: "p1", Device: "d1", Kind: KindModelOffer}, false},
		{"linesight/v1/p1/d1/model/request", ModelAddress{Site: "p1", Device: "d1", Kind: KindModelRequest}, false},
		{"linesight/v1/p1/d1/model/chunk", ModelAddress{Site: "p1", Device: "d1", Kind: KindModelChunk}, false},
		{"linesight/v1/p1/groups/line-a/model/offer", ModelAddress{Site: "p1", Group: "line-a", Kind: KindModelOffer}, false},
		{"linesight/v1/p1/groups/line-a/model/chunk", ModelAddress{}, true},
		{"linesight/v1/p1/groups/model/offer", ModelAddress{}, true},
		{"linesight/v1/p1/d1/model/other", ModelAddress{}, true},
		{"linesight/v1/p1/d1/status", ModelAddress{}, true},
		{"linesight/v1/+/d1/model/offer", ModelAddress{}, true},
	}
	for _, c := range cases {
		got, err := ParseModelTopic(c.topic)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseModelTopic(%q) = %+v, %v", c.topic, got, err)
		}
		if err != nil && !errors.Is(err, ErrTopic) {
			t.Errorf("%q: %v does not wrap ErrTopic", c.topic, err)
		}
	}
	if g := GroupTopic("p1", "line-a", KindModelOffer); !strings.HasSuffix(g, "p1/groups/line-a/model/offer") {
		t.Errorf("GroupTopic = %s", g)
	}
}

func FuzzDecodeModelOffer(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, o, err := DecodeModelOffer(b)
		if err != nil {
			return
		}
		re, err := Encode(e, o)
		if err != nil {
			return // a body that grows when re-encoded past the limit
		}
		if _, o2, err := DecodeModelOffer(re); err != nil || !bytes.Equal(o2.Signature, o.Signature) || o2.KeyID != o.KeyID {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func FuzzDecodeModelChunk(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, c, err := DecodeModelChunk(b)
		if err == nil && (SHA256(c.Data) != c.SHA256 || len(c.Data) > MaxChunkData) {
			t.Fatal("accepted a chunk whose data does not match")
		}
	})
}

func FuzzDecodeModelRequest(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, r, err := DecodeModelRequest(b)
		if err == nil && (len(r.Chunks) == 0 || len(r.Chunks) > MaxRequestChunk) {
			t.Fatal("accepted a request out of bounds")
		}
	})
}

func FuzzDecodeModelState(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = DecodeModelState(b) })
}

func FuzzParseModelTopic(f *testing.F) {
	f.Add("linesight/v1/p1/d1/model/offer")
	f.Add("linesight/v1/p1/groups/g/model/offer")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseModelTopic(s)
		if err != nil {
			return
		}
		var back string
		if a.Group != "" {
			back = GroupTopic(a.Site, a.Group, a.Kind)
		} else {
			back = Topic(a.Site, a.Device, a.Kind)
		}
		if back != s {
			t.Fatalf("%q parsed to %+v, rebuilt as %q", s, a, back)
		}
	})
}
