package rollout

import "errors"

// Sentinel errors of this package. Every error it returns wraps one of
// these, so the device can report a precise reason (and the fleet's UI a
// message a person understands) with errors.Is.
var (
	// ErrUnknownKey: the offer names a signing key that is not among the
	// device's trusted keys.
	ErrUnknownKey = errors.New("model signed with an unknown key")
	// ErrSignature: the key is trusted but the signature does not match the
	// release (tampered with, or signed by another key claiming its ID).
	ErrSignature = errors.New("model signature is not valid")
	// ErrBadRelease: the signed release is malformed (missing fields, bad
	// paths, inconsistent sizes or hashes, an unsupported format).
	ErrBadRelease = errors.New("invalid model release")
	// ErrCorruptChunk: a chunk's content does not match its signed sha256
	// (or its size), or an assembled file does not match its signed sha256.
	ErrCorruptChunk = errors.New("corrupt model chunk")
	// ErrIncomplete: Assemble was called before every chunk arrived.
	ErrIncomplete = errors.New("model transfer incomplete")
	// ErrTooLarge: the model package exceeds the configured maximum size.
	ErrTooLarge = errors.New("model package too large")
	// ErrKeyExists: keys gen refuses to overwrite an existing key file.
	ErrKeyExists = errors.New("key file already exists")
	// ErrBadKey: a key file cannot be read as an ed25519 key.
	ErrBadKey = errors.New("invalid key file")
)
