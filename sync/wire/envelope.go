package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the envelope version this package writes. A decoder accepts
// any version up to it and refuses a newer one (ErrVersion).
const Version = 1

// Size limits, checked before a payload is parsed.
const (
	// MaxMessage caps every envelope except samples and model chunks.
	MaxMessage = 256 << 10
	// MaxImage caps a sample's JPEG (before base64).
	MaxImage = 6 << 20
	// MaxSample caps a sample envelope: the base64 image plus its record.
	MaxSample = MaxImage*4/3 + MaxMessage
)

// Sentinel errors; every decoding error wraps one of them.
var (
	// ErrTopic: the topic is not a LineSight topic this version knows.
	ErrTopic = errors.New("bad topic")
	// ErrTooLarge: the payload exceeds its type's size limit.
	ErrTooLarge = errors.New("message too large")
	// ErrVersion: the envelope is of a newer wire version.
	ErrVersion = errors.New("unsupported wire version")
	// ErrMalformed: not a valid envelope or body of the expected type.
	ErrMalformed = errors.New("malformed message")
	// ErrChecksum: a sample's image does not match its sha256.
	ErrChecksum = errors.New("image checksum mismatch")
)

// Message types, the envelope's "type".
const (
	TypeStatus    = "status"
	TypeTelemetry = "telemetry"
	TypeEvent     = "event"
	TypeSample    = "sample"
	TypeDecision  = "decision"
	TypeCommand   = "command"
	TypeConfig    = "config"
	TypeAck       = "ack"
)

// Envelope wraps every message.
type Envelope struct {
	V    int    `json:"v"`
	Type string `json:"type"`
	// ID is stable across redelivery (the outbox entry's ID); receivers
	// de-duplicate by it.
	ID     string    `json:"id,omitempty"`
	Device string    `json:"device,omitempty"`
	Time   time.Time `json:"time"`
	// Ack asks the fleet to acknowledge ID on the device's ack topic; the
	// device keeps the message until then.
	Ack  bool            `json:"ack,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

// MaxSize is the size limit of a message type.
func MaxSize(typ string) int {
	if typ == TypeSample {
		return MaxSample
	}
	return MaxMessage
}

// Encode marshals body into an envelope of type typ. It refuses to produce
// a message over the type's size limit.
func Encode(e Envelope, body any) ([]byte, error) {
	var s *Sample
	switch b := body.(type) {
	case *Sample:
		s = b
	case Sample:
		s = &b
	}
	if s != nil && s.Image != nil && len(s.Image.Data) > 0 {
		if b, ok := encodeSample(e, s); ok {
			if e.V == 0 {
				e.V = Version
			}
			if len(b) > MaxSize(e.Type) {
				return nil, fmt.Errorf("encode %s %s: %w (%d > %d bytes)", e.Type, e.ID, ErrTooLarge, len(b), MaxSize(e.Type))
			}
			return b, nil
		}
	}
	return encodeGeneric(e, body)
}

// encodeGeneric is Encode with encoding/json alone.
func encodeGeneric(e Envelope, body any) ([]byte, error) {
	if e.V == 0 {
		e.V = Version
	}
	if body != nil {
		raw, ok := body.(json.RawMessage)
		if !ok {
			var err error
			if raw, err = json.Marshal(body); err != nil {
				return nil, fmt.Errorf("encode %s body: %w", e.Type, err)
			}
		}
		e.Body = raw
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", e.Type, err)
	}
	if len(b) > MaxSize(e.Type) {
		return nil, fmt.Errorf("encode %s %s: %w (%d > %d bytes)", e.Type, e.ID, ErrTooLarge, len(b), MaxSize(e.Type))
	}
	return b, nil
}

// Decode parses an envelope and checks its size, version and, when want is
// not empty, its type.
func Decode(data []byte, want string) (Envelope, error) {
	limit := MaxSample
	if want != "" {
		limit = MaxSize(want)
	}
	if len(data) > limit {
		return Envelope{}, fmt.Errorf("decode %s: %w (%d > %d bytes)", want, ErrTooLarge, len(data), limit)
	}
	var e Envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return Envelope{}, fmt.Errorf("decode %s: %w: %v", want, ErrMalformed, err)
	}
	switch {
	case e.V < 1:
		return Envelope{}, fmt.Errorf("decode %s: %w: missing version", want, ErrMalformed)
	case e.V > Version:
		return Envelope{}, fmt.Errorf("decode %s: %w %d (this program speaks %d)", want, ErrVersion, e.V, Version)
	case want != "" && e.Type != want:
		return Envelope{}, fmt.Errorf("decode %s: %w: type %q", want, ErrMalformed, e.Type)
	case len(data) > MaxSize(e.Type):
		return Envelope{}, fmt.Errorf("decode %s: %w (%d > %d bytes)", e.Type, ErrTooLarge, len(data), MaxSize(e.Type))
	case e.ID != "" && !validRecordID(e.ID):
		return Envelope{}, fmt.Errorf("decode %s: %w: bad id %q", e.Type, ErrMalformed, e.ID)
	case e.Device != "" && !ValidID(e.Device):
		return Envelope{}, fmt.Errorf("decode %s: %w: bad device %q", e.Type, ErrMalformed, e.Device)
	}
	return e, nil
}

// decodeBody decodes an envelope of type typ and its body into v.
func decodeBody(data []byte, typ string, v any) (Envelope, error) {
	e, err := Decode(data, typ)
	if err != nil {
		return e, err
	}
	if len(e.Body) == 0 || bytes.Equal(e.Body, []byte("null")) {
		return e, fmt.Errorf("decode %s: %w: no body", typ, ErrMalformed)
	}
	if err := json.Unmarshal(e.Body, v); err != nil {
		return e, fmt.Errorf("decode %s body: %w: %v", typ, ErrMalformed, err)
	}
	return e, nil
}

// validRecordID accepts the store's IDs ("label-<id>-l1", "decision-<id>",
// ...): 1-200 letters, digits, '-', '_' or '.' (no path separators).
func validRecordID(s string) bool {
	if len(s) == 0 || len(s) > 200 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// ValidRecordID reports whether s may be a message or record ID (it becomes
// a file name in the dataset).
func ValidRecordID(s string) bool { return validRecordID(s) }

// SHA256 is the lower-case hex sha256 of b.
func SHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
