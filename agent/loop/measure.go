package loop

import (
	"context"
	"fmt"
	"slices"

	"gocv.io/x/gocv"

	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/camera"
	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/inference/eval"
	"github.com/linesight/linesight/inference/onnx"
)

// SyntheticSet is a set of parts drawn by the generator: indices 0..N-1
// of the line with Spec (a seed no model was trained on makes it fresh).
type SyntheticSet struct {
	Spec camera.SyntheticSpec
	N    int
}

// Scored is one part's scores and truth.
type Scored struct {
	Class  string
	Good   bool      // the true class is a good label
	Scores []float32 // in the manifest's label order
	PGood  float64   // summed probability of the good labels
}

// Score runs the model package in dir on every part of set, as the line's
// camera delivers it (an 8-bit gray frame), through the Go engine (the
// manifest's preprocessing, ONNX Runtime, the classify decoder).
func Score(ctx context.Context, rt *onnx.Runtime, dir string, set SyntheticSet) (*inference.Manifest, []Scored, error) {
	pkg, err := inference.LoadPackage(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("score: %w", err)
	}
	m := pkg.Manifest
	sc, err := eval.NewEngineScorer(rt, pkg, inference.Config{Options: onnx.Options{Provider: onnx.ProviderCPU, IntraOpThreads: 1, InterOpThreads: 1}})
	if err != nil {
		return nil, nil, fmt.Errorf("score: %w", err)
	}
	defer sc.Close()
	gen, err := camera.NewGenerator(set.Spec)
	if err != nil {
		return nil, nil, fmt.Errorf("score: %w", err)
	}
	tile := gen.NewTile()
	good := make([]bool, len(m.Labels))
	for k, l := range m.Labels {
		good[k] = m.IsGood(l)
	}
	img := gocv.NewMatWithSize(tile.H, tile.W, gocv.MatTypeCV8U)
	defer img.Close()
	pix, err := img.DataPtrUint8()
	if err != nil {
		return nil, nil, fmt.Errorf("score: %w", err)
	}
	out := make([]Scored, 0, set.N)
	for i := range set.N {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("score: stopped after %d of %d parts: %w", i, set.N, err)
		}
		gen.Generate(uint64(i), tile)
		copy(pix, tile.Pix)
		s, err := sc.ScoreMat(ctx, img)
		if err != nil {
			return nil, nil, fmt.Errorf("score part %d: %w", i, err)
		}
		if !slices.Contains(m.Labels, tile.Class) {
			return nil, nil, fmt.Errorf("score: model %s has no label %q", m.Name, tile.Class)
		}
		out = append(out, Scored{Class: tile.Class, Good: m.IsGood(tile.Class), Scores: s, PGood: eval.GoodScore(s, good)})
	}
	return m, out, nil
}

// Figures are one model's results on a set of parts at given thresholds,
// decided by agent/policy at the partial level.
type Figures struct {
	Pass, Reject float64 // thresholds
	eval.Automation
	Accuracy float64 // top class = true class
	AUROC    float64 // 1 - P(good) separating defects from good parts
}

// Evaluate decides every part with the policy at thresholds pass and
// reject (and the manifest's per-class reject thresholds when perClass is
// set) and counts automation, escapes and false rejects.
func Evaluate(m *inference.Manifest, parts []Scored, pass, reject float64, perClass map[string]float64) Figures {
	pc := policy.Config{Level: policy.Partial, FailSafe: policy.Defer, PassThreshold: pass, RejectThreshold: reject, ClassReject: perClass}
	verdicts := make([]eval.Verdict, len(parts))
	isGood := make([]bool, len(parts))
	defect := make([]float64, len(parts))
	notGood := make([]bool, len(parts))
	probs := make([]float64, len(m.Labels))
	right := 0
	for i, p := range parts {
		for k, s := range p.Scores {
			probs[k] = float64(s)
		}
		d := policy.Decide(pc, policy.Input{Labels: m.Labels, Probs: probs, Good: m.GoodLabels})
		switch d.Verdict {
		case policy.Pass:
			verdicts[i] = eval.Pass
		case policy.Reject:
			verdicts[i] = eval.Reject
		default:
			verdicts[i] = eval.Defer
		}
		isGood[i], notGood[i], defect[i] = p.Good, !p.Good, 1-p.PGood
		if m.Labels[eval.Argmax(p.Scores)] == p.Class {
			right++
		}
	}
	f := Figures{Pass: pass, Reject: reject, Automation: eval.Rates(verdicts, isGood), AUROC: eval.AUROC(defect, notGood)}
	if len(parts) > 0 {
		f.Accuracy = float64(right) / float64(len(parts))
	}
	return f
}

// MeasureOptions say how a model is measured.
type MeasureOptions struct {
	// Val calibrates the thresholds; Test is where the figures come from.
	Val, Test SyntheticSet
	// TargetEscape and TargetFalseReject are the calibration targets
	// (train.py's defaults: 0.01 and 0.02).
	TargetEscape, TargetFalseReject float64
}

// Measurement is one model measured at the escape target.
type Measurement struct {
	Model, Version string
	// Val: on the validation set at the thresholds calibrated on it.
	Val Figures
	// Test: on the test set at those thresholds (the headline figures).
	Test Figures
	// Script: on the test set at the thresholds the package came with
	// (train.py calibrates them on its own validation split).
	Script Figures
	// ScriptSplit is how many images train.py calibrated on (0: unknown).
	ScriptSplit int
}

// Measure scores the model in dir on opt.Val and opt.Test, calibrates the
// thresholds on Val at the targets and evaluates Test at them (and at the
// package's own thresholds).
func Measure(ctx context.Context, rt *onnx.Runtime, dir string, opt MeasureOptions) (*Measurement, error) {
	m, val, err := Score(ctx, rt, dir, opt.Val)
	if err != nil {
		return nil, err
	}
	_, test, err := Score(ctx, rt, dir, opt.Test)
	if err != nil {
		return nil, err
	}
	good, isGood := make([]float64, len(val)), make([]bool, len(val))
	for i, p := range val {
		good[i], isGood[i] = p.PGood, p.Good
	}
	pass, reject := eval.Calibrate(good, isGood, opt.TargetEscape, opt.TargetFalseReject)
	me := &Measurement{Model: m.Name, Version: m.Version,
		Val:    Evaluate(m, val, pass, reject, nil),
		Test:   Evaluate(m, test, pass, reject, nil),
		Script: Evaluate(m, test, m.Thresholds.Pass, m.Thresholds.Reject, m.Thresholds.PerClass),
	}
	if c := m.Thresholds.Calibration; c != nil {
		me.ScriptSplit = c.Images
	}
	return me, nil
}

// SetThresholds writes the thresholds calibrated by Measure (me.Val) into
// the manifest of the package in dir, with how they were calibrated, so
// that the device runs the model at the escape target of the plant's
// validation set rather than of train.py's own (small) split. It happens
// before the package is signed; the manifest is checked by the device's
// parser before it replaces the old one (temp file, fsync, rename).
func SetThresholds(dir string, me *Measurement, opt MeasureOptions, split string) error {
	v := me.Val
	th := inference.Thresholds{Pass: v.Pass, Reject: v.Reject, Calibration: &inference.Calibration{
		Split: split, Images: v.Parts, TargetEscape: opt.TargetEscape, TargetFalseReject: opt.TargetFalseReject,
		AutomationRate: v.AutomationRate, EscapeRate: v.EscapeRate, FalseRejectRate: v.FalseRejectRate,
	}}
	if err := inference.SetManifestFields(dir, map[string]any{"thresholds": th}); err != nil {
		return fmt.Errorf("set thresholds: %w", err)
	}
	return nil
}
