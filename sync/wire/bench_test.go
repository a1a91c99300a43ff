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

// BenchmarkEncodeSample: one 50 KB sample as the uplink builds it (the
// image's sha256 is computed by NewImage, outside the loop).
func BenchmarkEncodeSample(b *testing.B) {
	s := bigSample(50 << 10)
	b.SetBytes(50 << 10)
	for b.Loop() {
		if _, err := Encode(sampleEnv, &s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeSample: one 50 KB sample as the collector checks it
// (envelope, body, base64, sha256).
func BenchmarkDecodeSample(b *testing.B) {
	s := bigSample(50 << 10)
	data, err := Encode(sampleEnv, &s)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(50 << 10)
	for b.Loop() {
		if _, _, err := DecodeSample(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeSampleFrame: the same sample as a frame (the JPEG's bytes
// after the JSON head, no base64).
func BenchmarkEncodeSampleFrame(b *testing.B) {
	s := bigSample(50 << 10)
	b.SetBytes(50 << 10)
	for b.Loop() {
		if _, err := EncodeSampleFrame(sampleEnv, &s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeSampleFrame: the same checks on a frame (head, sha256).
func BenchmarkDecodeSampleFrame(b *testing.B) {
	s := bigSample(50 << 10)
	data, err := EncodeSampleFrame(sampleEnv, &s)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(50 << 10)
	for b.Loop() {
		if _, _, err := DecodeSample(data); err != nil {
			b.Fatal(err)
		}
	}
}
