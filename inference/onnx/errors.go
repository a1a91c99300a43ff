package onnx

import (
	"errors"
	"fmt"
)

// Sentinel errors of this package. Every error a Session or provider
// selection returns wraps exactly one of these (test with errors.Is), so
// callers can map them to a verdict or a message without parsing text.
var (
	// ErrProviderUnavailable: the execution provider asked for is not
	// compiled into this ONNX Runtime build, or its libraries or device are
	// missing on this machine. Returned wrapped in *ProviderError.
	ErrProviderUnavailable = errors.New("execution provider unavailable")
	// ErrInvalidModel: ONNX Runtime could not load the model bytes (a
	// corrupt, truncated or unsupported ONNX file).
	ErrInvalidModel = errors.New("invalid onnx model")
	// ErrSignature: the graph's inputs or outputs do not match what the
	// session was asked for (a missing name, a fixed dimension that
	// contradicts the requested shape, an unsupported element type).
	ErrSignature = errors.New("model signature mismatch")
	// ErrDeadline: the context ended before or during a run; a run in
	// progress is terminated through ONNX Runtime's RunOptions.
	ErrDeadline = errors.New("inference deadline exceeded")
	// ErrRun: ONNX Runtime failed while running the graph.
	ErrRun = errors.New("onnx runtime run failed")
	// ErrClosed: the session (or runtime) was closed.
	ErrClosed = errors.New("session closed")
)

// ProviderError says which provider failed and why. It unwraps to
// ErrProviderUnavailable; Cause is ONNX Runtime's own message.
type ProviderError struct {
	Provider  string   // config name, e.g. "cuda"
	Available []string // providers compiled into the loaded library
	Cause     error
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("execution provider %q unavailable (compiled into this ONNX Runtime: %v): %v; use provider: cpu, or set fallback: true to fall back to cpu",
		e.Provider, e.Available, e.Cause)
}

func (e *ProviderError) Unwrap() error { return ErrProviderUnavailable }
