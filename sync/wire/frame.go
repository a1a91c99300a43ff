package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// A sample frame carries a sample with its JPEG as raw bytes instead of
// base64 in JSON: a third fewer bytes through every hop, and neither end
// encodes, decodes or scans the base64. A device sends frames only to a
// collector that said it takes them (AcceptSampleFrame in an Ack); the
// JSON envelope stays the default and every decoder still takes it.
//
//	offset 0  4 bytes  magic "\x00LSF" (no JSON text starts with a NUL)
//	       4  1 byte   frame version, 1
//	       5  4 bytes  head length n, big-endian
//	       9  n bytes  head: the sample's JSON envelope (version 1 as
//	                   always) with body.image.data null
//	     9+n  rest     the JPEG's bytes (none when the sample has no image)
//
// The head's sha256 covers the JPEG as in the JSON envelope; size limits
// are the same: MaxMessage for the head, MaxImage for the JPEG.

// FrameVersion is the sample frame version this package writes; a decoder
// refuses a newer one (ErrVersion).
const FrameVersion = 1

// AcceptSampleFrame is the token a collector lists in Ack.Accept when it
// decodes sample frames.
const AcceptSampleFrame = "sample-frame"

// frameMagic starts every frame.
const frameMagic = "\x00LSF"

// frameHeader is the magic, the version and the head's length.
const frameHeader = len(frameMagic) + 1 + 4

// IsFrame reports whether a payload is a sample frame (as opposed to a
// JSON envelope).
func IsFrame(data []byte) bool { return bytes.HasPrefix(data, []byte(frameMagic)) }

// EncodeSampleFrame encodes a sample as a frame (see AcceptSampleFrame).
func EncodeSampleFrame(e Envelope, s *Sample) ([]byte, error) {
	e.Type = TypeSample
	cp := *s
	var jpeg []byte
	if s.Image != nil {
		img := *s.Image
		jpeg, img.Data = img.Data, nil
		cp.Image = &img
	}
	if len(jpeg) > MaxImage {
		return nil, fmt.Errorf("encode sample frame %s: %w (image %d > %d bytes)", e.ID, ErrTooLarge, len(jpeg), MaxImage)
	}
	head, err := encodeGeneric(e, &cp)
	if err != nil {
		return nil, fmt.Errorf("sample frame: %w", err)
	}
	if len(head) > MaxMessage {
		return nil, fmt.Errorf("encode sample frame %s: %w (head %d > %d bytes)", e.ID, ErrTooLarge, len(head), MaxMessage)
	}
	out := make([]byte, frameHeader+len(head)+len(jpeg))
	n := copy(out, frameMagic)
	out[n] = FrameVersion
	binary.BigEndian.PutUint32(out[n+1:], uint32(len(head)))
	copy(out[frameHeader:], head)
	copy(out[frameHeader+len(head):], jpeg)
	return out, nil
}

// decodeFrame decodes a sample frame's envelope and sample, unchecked
// (DecodeSample validates). The sample's image data is a slice of data.
func decodeFrame(data []byte) (Envelope, Sample, error) {
	var s Sample
	switch {
	case len(data) < frameHeader:
		return Envelope{}, s, fmt.Errorf("decode sample frame: %w: %d bytes", ErrMalformed, len(data))
	case data[len(frameMagic)] > FrameVersion:
		return Envelope{}, s, fmt.Errorf("decode sample frame: %w %d (this program speaks %d)", ErrVersion, data[len(frameMagic)], FrameVersion)
	case data[len(frameMagic)] == 0:
		return Envelope{}, s, fmt.Errorf("decode sample frame: %w: version 0", ErrMalformed)
	}
	n := uint64(binary.BigEndian.Uint32(data[len(frameMagic)+1:]))
	switch {
	case n > MaxMessage:
		return Envelope{}, s, fmt.Errorf("decode sample frame: %w (head %d > %d bytes)", ErrTooLarge, n, MaxMessage)
	case n > uint64(len(data)-frameHeader):
		return Envelope{}, s, fmt.Errorf("decode sample frame: %w: head of %d bytes in %d", ErrMalformed, n, len(data))
	}
	head, jpeg := data[frameHeader:frameHeader+int(n)], data[frameHeader+int(n):]
	if len(jpeg) > MaxImage {
		return Envelope{}, s, fmt.Errorf("decode sample frame: %w (image %d > %d bytes)", ErrTooLarge, len(jpeg), MaxImage)
	}
	e, err := decodeBody(head, TypeSample, &s)
	if err != nil {
		return e, s, err
	}
	switch {
	case s.Image == nil && len(jpeg) > 0:
		return e, s, fmt.Errorf("decode sample frame %s: %w: image bytes without an image", e.ID, ErrMalformed)
	case s.Image == nil:
	case s.Image.Data != nil:
		return e, s, fmt.Errorf("decode sample frame %s: %w: image data in the head", e.ID, ErrMalformed)
	default:
		s.Image.Data = jpeg[:len(jpeg):len(jpeg)]
	}
	return e, s, nil
}
