package inference

import (
	"errors"
	"fmt"

	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/internal/validate"
)

// Sentinel errors of this package. Every error the package returns wraps
// one of these or one of package onnx's (ErrProviderUnavailable,
// ErrInvalidModel, ErrSignature, ErrDeadline, ErrRun), so the pipeline can
// choose a fail-safe verdict and the UI a message with errors.Is.
var (
	// ErrInvalidManifest: the manifest cannot be parsed or breaks a rule
	// (see ManifestError for the list of fields).
	ErrInvalidManifest = errors.New("invalid model manifest")
	// ErrChecksum: model.onnx's sha256 differs from the manifest's.
	ErrChecksum = errors.New("model checksum mismatch")
	// ErrNoModel: the path is neither a model package directory nor an .onnx file.
	ErrNoModel = errors.New("no model found")
	// ErrShape: the graph contradicts the manifest (input name or shape,
	// output names), or a frame or tensor has the wrong size.
	ErrShape = errors.New("model shape mismatch")
	// ErrNonFinite: the model produced NaN or Inf; nothing is decoded.
	ErrNonFinite = errors.New("model output is not finite")
	// ErrBadInput: a frame the preprocessing cannot use (empty, wrong
	// depth or channel count, a region of interest outside the image).
	ErrBadInput = errors.New("bad input image")
	// ErrClosed: the engine was closed.
	ErrClosed = errors.New("engine closed")
	// ErrConfig: the engine's configuration cannot be used here (a CPU
	// list this process may not run on).
	ErrConfig = errors.New("invalid engine configuration")
)

// Errors from package onnx that the engine passes through, re-exported so
// that callers of inference need not import onnx to test for them.
var (
	ErrDeadline            = onnx.ErrDeadline
	ErrInvalidModel        = onnx.ErrInvalidModel
	ErrProviderUnavailable = onnx.ErrProviderUnavailable
	ErrRun                 = onnx.ErrRun
)

// ManifestError lists every problem found in a manifest; it unwraps to
// ErrInvalidManifest.
type ManifestError struct {
	Path   string // the file, when known
	Fields validate.Errors
	Err    error // a parse error, when the file is not valid JSON
}

func (e *ManifestError) Error() string {
	where := "manifest"
	if e.Path != "" {
		where = e.Path
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", where, e.Err)
	}
	return fmt.Sprintf("%s:\n%s", where, e.Fields.Error())
}

func (e *ManifestError) Unwrap() error { return ErrInvalidManifest }
