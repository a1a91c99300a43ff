package wire

import (
	"math/rand"
	"testing"
)

// bigSample is sample() with a size-byte pseudo-JPEG.
func bigSample(size int) Sample {
	s := sample()
	img := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(img)
	copy(img, "\xff\xd8\xff")
	s.Image = NewImage(img)
	return s
}

var sampleEnv = Envelope{Type: TypeSample, ID: "label-0000000000000001-abcd-00000001-l1", Device: "d1", Time: t0, Ack: true}

// BenchmarkSample: one 50 KB sample encoded as the uplink builds it (the
// image's sha256 is computed by NewImage, outside the loop) and decoded as
// the collector checks it, as JSON (envelope, body, base64, sha256) and as
// a frame (the JPEG's bytes after the JSON head: head, sha256).
func BenchmarkSample(b *testing.B) {
	for _, c := range []struct {
		name   string
		encode func(Envelope, *Sample) ([]byte, error)
	}{{"json", func(e Envelope, s *Sample) ([]byte, error) { return Encode(e, s) }}, {"frame", EncodeSampleFrame}} {
		s := bigSample(50 << 10)
		b.Run(c.name+"/encode", func(b *testing.B) {
			b.SetBytes(50 << 10)
			for b.Loop() {
				if _, err := c.encode(sampleEnv, &s); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			data, err := c.encode(sampleEnv, &s)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(50 << 10)
			for b.Loop() {
				if _, _, err := DecodeSample(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
