package lifecycle

import (
	"errors"

	"github.com/linesight/linesight/sync/rollout"
)

// Errors of the model lifecycle. A refused offer is reported (model/state,
// state "rejected", with Code(err)) and the active model keeps serving.
var (
	// ErrCorruptChunk: a chunk or assembled file does not match the signed sha256.
	ErrCorruptChunk = rollout.ErrCorruptChunk
	// ErrSignature: the offer's signature does not verify with the trusted key it names.
	ErrSignature = rollout.ErrSignature
	// ErrUnknownKey: the offer is signed by a key the device does not trust.
	ErrUnknownKey = rollout.ErrUnknownKey
	// ErrTooLarge: the package exceeds Options.MaxModelBytes.
	ErrTooLarge = rollout.ErrTooLarge
	// ErrBadRelease: the signed release is malformed.
	ErrBadRelease = rollout.ErrBadRelease
	// ErrStalled: chunks stopped arriving; what arrived stays on disk and
	// the next delivery of the offer resumes from there.
	ErrStalled = errors.New("model transfer stalled")
	// ErrOlderVersion: the offer is older than the active version and not a
	// signed rollback.
	ErrOlderVersion = errors.New("model version older than the active one")
	// ErrDoesNotFit: the model's task, labels or input do not fit the
	// active model's or the cameras'.
	ErrDoesNotFit = errors.New("model does not fit this device")
	// ErrUnhealthy: the model failed to load or to run on recent frames.
	ErrUnhealthy = errors.New("model failed its health check")
	// ErrRegression: a candidate or a promoted version broke the offer's
	// criteria (errors or latency).
	ErrRegression = errors.New("model regression")
	// ErrRejectedBefore: this version was rolled back or refused on this
	// device before; it is not installed again.
	ErrRejectedBefore = errors.New("model version was rejected before")
	// ErrNoCandidate: promote without a model in shadow.
	ErrNoCandidate = errors.New("no model in shadow")
	// ErrNoPrevious: rollback without a previous version.
	ErrNoPrevious = errors.New("no previous model version")
	// ErrNoModel: no verified version on disk and no built-in model.
	ErrNoModel = errors.New("no verified model to serve")
	// ErrClosed: the lifecycle is closed.
	ErrClosed = errors.New("model lifecycle closed")
)

// Code is the stable name of err's reason, for model/state's code field.
func Code(err error) string {
	for _, c := range []struct {
		err  error
		code string
	}{
		{ErrCorruptChunk, "corrupt-chunk"}, {ErrSignature, "signature"}, {ErrUnknownKey, "unknown-key"},
		{ErrTooLarge, "too-large"}, {ErrBadRelease, "bad-release"}, {ErrStalled, "stalled"},
		{ErrOlderVersion, "older-version"}, {ErrDoesNotFit, "does-not-fit"}, {ErrUnhealthy, "unhealthy"},
		{ErrRegression, "regression"}, {ErrRejectedBefore, "rejected-before"}, {ErrNoCandidate, "no-candidate"},
		{ErrNoPrevious, "no-previous"}, {ErrNoModel, "no-model"}, {ErrClosed, "closed"},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	if err != nil {
		return "error"
	}
	return ""
}
