package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
)

// A sample is mostly its JPEG, base64 in JSON. encoding/json walks that
// string several times on each side (marshal, compact of the body, then
// validate, scan, unquote on decode) and those passes, not the network,
// bound how many samples a device can send and a collector can take. The
// fast paths below handle the image apart from encoding/json while keeping
// the wire format byte for byte: Encode writes the rest with encoding/json
// and splices the base64 in; DecodeSample recognises that layout, parses
// the message with the image cut out and decodes the base64 itself. Any
// other layout (other field order, whitespace, escapes) goes through
// encoding/json as before, with the same results and errors.

// imageTail is how a sample envelope ends when Encode writes it with the
// image's data left out: image is the body's last field, data the image's,
// body the envelope's.
const imageTail = `"data":null}}}`

// dataKey introduces the image's data in a sample envelope.
const dataKey = `,"data":"`

// encodeSample is Encode's fast path for a sample with an image.
func encodeSample(e Envelope, s *Sample) ([]byte, bool) {
	cp, img := *s, *s.Image
	img.Data = nil
	cp.Image = &img
	head, err := encodeGeneric(e, &cp)
	if err != nil || !bytes.HasSuffix(head, []byte(imageTail)) {
		return nil, false
	}
	head = head[:len(head)-len(imageTail)]
	n := base64.StdEncoding.EncodedLen(len(s.Image.Data))
	out := make([]byte, 0, len(head)+len(`"data":""}}}`)+n)
	out = append(out, head...)
	out = append(out, `"data":"`...)
	out = base64.StdEncoding.AppendEncode(out, s.Image.Data)
	out = append(out, `"}}}`...)
	return out, true
}

// decodeSampleFast decodes a sample in the layout Encode writes. ok false:
// not that layout or not valid, and the caller decodes it the general way
// (which reports the error).
func decodeSampleFast(data []byte) (e Envelope, s Sample, ok bool) {
	if len(data) > MaxSample || !bytes.HasSuffix(data, []byte(`"}}}`)) {
		return e, s, false
	}
	// The base64 has no quote: its opening quote is the last one before
	// the end. Searched forwards (the first data key, then no quote after
	// it), since a backwards byte scan of the base64 cost as much as
	// decoding it; any other layout falls back to the backwards scan.
	end := len(data) - len(`"}}}`)
	q := -1
	if k := bytes.Index(data[:end], []byte(dataKey)); k >= 0 && bytes.IndexByte(data[k+len(dataKey):end], '"') < 0 {
		q = k + len(dataKey) - 1
	} else {
		q = bytes.LastIndexByte(data[:end], '"')
	}
	i := q + 1 - len(dataKey)
	if i < 0 || string(data[i:q+1]) != dataKey {
		return e, s, false
	}
	b64 := data[q+1 : len(data)-len(`"}}}`)]
	// The decoder refuses anything outside the alphabet but skips line
	// breaks, which encoding/json would refuse as control characters.
	if len(b64)%4 != 0 || bytes.IndexByte(b64, '\n') >= 0 || bytes.IndexByte(b64, '\r') >= 0 {
		return e, s, false
	}
	reduced := make([]byte, 0, i+len(imageTail)+1)
	reduced = append(reduced, data[:i+1]...)
	reduced = append(reduced, imageTail...)
	e, err := Decode(reduced, TypeSample)
	if err != nil {
		return e, s, false
	}
	// The cut must have been the image's data: body is the envelope's last
	// field (the one encoding/json keeps when a key repeats) and ends with
	// the image whose data is null in the reduced message.
	bodyEnd := len(reduced) - 1
	start := bodyEnd - len(e.Body)
	if start < len(`"body":`) || !bytes.Equal(reduced[start:bodyEnd], e.Body) || string(reduced[start-len(`"body":`):start]) != `"body":` {
		return e, s, false
	}
	if len(e.Body) == 0 || json.Unmarshal(e.Body, &s) != nil || s.Image == nil || s.Image.Data != nil {
		return e, s, false
	}
	img := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(img, b64)
	if err != nil {
		return e, s, false
	}
	s.Image.Data = img[:n]
	e.Body = data[start : len(data)-1]
	return e, s, true
}
