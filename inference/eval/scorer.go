package eval

import (
	"context"
	"fmt"

	"gocv.io/x/gocv"

	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/inference/onnx"
)

// Scorer gives the class probabilities of one image, in the manifest's
// label order. It is called from one goroutine at a time.
type Scorer interface {
	// Score decodes and scores the image file at path. A file that cannot
	// be decoded gives an error wrapping ErrImage.
	Score(ctx context.Context, path string) (Scored, error)
}

// Scored is what a Scorer gives for one image.
type Scored struct {
	Scores []float32 // class probabilities, in label order
	// Views is how many views of the part were scored (the whole ROI and
	// the manifest's windows; 1 without windows), View the one that decided
	// (0 the whole ROI, k the k-th window): inference.Result's fields.
	View, Views int
}

// EngineScorer is the device's path for one image: gocv decoding
// (IMReadColor, as the folder and file sources decode), then the inference
// Engine (the manifest's preprocessing, ONNX Runtime, the classify decoder).
type EngineScorer struct {
	e *inference.Engine
}

var _ Scorer = (*EngineScorer)(nil)

// NewEngineScorer opens an engine on pkg (one session, batch 1). Close it
// before rt.
func NewEngineScorer(rt *onnx.Runtime, pkg *inference.Package, cfg inference.Config) (*EngineScorer, error) {
	if pkg.Manifest.Task != inference.TaskClassify {
		return nil, fmt.Errorf("eval: model %s is a %s model; eval measures classifiers", pkg.Manifest.Name, pkg.Manifest.Task)
	}
	cfg.Sessions, cfg.Batch = 1, 1
	e, err := inference.Open(rt, pkg, cfg)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	return &EngineScorer{e: e}, nil
}

// Provider is the execution provider the engine runs on.
func (s *EngineScorer) Provider() string { return s.e.Provider() }

// Score implements Scorer.
func (s *EngineScorer) Score(ctx context.Context, path string) (Scored, error) {
	img := gocv.IMRead(path, gocv.IMReadColor)
	defer img.Close()
	if img.Empty() {
		return Scored{}, fmt.Errorf("%w: %s (not an image OpenCV can decode)", ErrImage, path)
	}
	res, err := s.run(ctx, img)
	if err != nil {
		return Scored{}, err
	}
	return Scored{Scores: res.Scores, View: res.View, Views: res.Views}, nil
}

// ScoreMat scores a decoded image (8-bit gray, BGR or BGRA); the caller
// keeps owning img.
func (s *EngineScorer) ScoreMat(ctx context.Context, img gocv.Mat) ([]float32, error) {
	res, err := s.run(ctx, img)
	if err != nil {
		return nil, err
	}
	return res.Scores, nil
}

func (s *EngineScorer) run(ctx context.Context, img gocv.Mat) (inference.Result, error) {
	res, err := s.e.Run(ctx, inference.Frame{Image: img})
	if err != nil {
		return inference.Result{}, fmt.Errorf("eval: %w", err)
	}
	return res, nil
}

// Close closes the engine.
func (s *EngineScorer) Close() error { return s.e.Close() }
