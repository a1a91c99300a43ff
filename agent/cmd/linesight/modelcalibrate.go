package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/inference/eval"
	"github.com/linesight/linesight/internal/cli"
)

// calibrateReport is what `linesight model calibrate` found and did.
type calibrateReport struct {
	Model             string  `json:"model"`
	Version           string  `json:"version"`
	Precision         string  `json:"precision,omitempty"`
	Provider          string  `json:"provider"`
	Data              string  `json:"data"`
	Split             string  `json:"split"`
	TargetEscape      float64 `json:"target_escape_rate"`
	TargetFalseReject float64 `json:"target_false_reject_rate"`
	// Before is the folder decided at the package's thresholds, After at
	// the calibrated ones.
	Before calibratePoint `json:"before"`
	After  calibratePoint `json:"after"`
	// PassSetBy is the defective part with the highest P(good) that the
	// calibrated pass threshold keeps from passing: it alone decides the
	// threshold (nil when no defective part is kept from passing).
	// RejectSetBy is the good part with the lowest P(good) that the reject
	// threshold keeps from being rejected.
	PassSetBy   *eval.Miss `json:"pass_set_by,omitempty"`
	RejectSetBy *eval.Miss `json:"reject_set_by,omitempty"`
	// Written: the manifest now holds After (false with --dry-run).
	Written bool `json:"written"`
}

type calibratePoint struct {
	Pass       float64         `json:"pass"`
	Reject     float64         `json:"reject"`
	Automation eval.Automation `json:"automation"`
}

// modelCalibrateCmd is `linesight model calibrate --model DIR --data DIR`:
// the pass and reject thresholds set from the Go engine's own scores on a
// labelled validation folder, the way the device will score the parts.
// train.py calibrates on PyTorch's outputs (for int8, on a simulation of the
// quantised graph), which differ from ONNX Runtime's by up to ~1e-3 in
// P(good) for int8: more than the margin of a threshold placed between two
// validation parts.
func modelCalibrateCmd(ctx context.Context, stdio Stdio, args []string) error {
	fs := newFlags("model calibrate", stdio)
	modelDir := fs.String("model", "", "model package directory (its manifest.json is rewritten)")
	data := fs.String("data", "", "labelled validation folder DATA/CLASS/NAME.jpg with good and defective parts, none of them training images (train.py writes MODEL/heldout/val)")
	targetEscape := fs.Float64("target-escape", -1, "escape rate allowed on DATA (default: the manifest's calibration target, else 0.01)")
	targetFR := fs.Float64("target-false-reject", -1, "false-reject rate allowed on DATA (default: the manifest's calibration target, else 0.02)")
	split := fs.String("split", "", "what DATA is, recorded in the manifest (default: the folder's path)")
	dryRun := fs.Bool("dry-run", false, "print the calibration, leave the manifest as it is")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	run := scoreFlags(fs)
	ev, err := run.parseAndOpen(fs, args, stdio, modelDir, data)
	if err != nil {
		return err
	}
	defer ev.Close()
	m := ev.pkg.Manifest
	if m.Task != inference.TaskClassify {
		return cli.Usagef("model %s is a %s model: calibrate sets the pass and reject thresholds of classify models", m.Name, m.Task)
	}
	te, tfr := calibrationTargets(m, *targetEscape, *targetFR)
	for _, t := range []struct {
		name string
		v    float64
	}{{"--target-escape", te}, {"--target-false-reject", tfr}} {
		if !(t.v >= 0 && t.v < 1) { // also refuses NaN
			return cli.Usagef("%s %v: want a rate in [0, 1), e.g. 0.01", t.name, t.v)
		}
	}
	var good, defective int
	for _, s := range ev.ds.Samples {
		if m.IsGood(s.Label) {
			good++
		} else {
			defective++
		}
	}
	if good == 0 || defective == 0 {
		return cli.Usagef("%s has %d good and %d defective images: calibration needs both (good labels: %v)", *data, good, defective, m.GoodLabels)
	}
	// Not evalPolicy: it refuses thresholds at or under 0.5, and a package
	// with such thresholds is one to calibrate.
	pc := policy.Config{Level: policy.Partial, FailSafe: policy.Defer, PassThreshold: m.Thresholds.Pass, RejectThreshold: m.Thresholds.Reject, ClassReject: m.Thresholds.PerClass}
	th := eval.ManifestThresholds(m)
	before, err := ev.evaluate(ctx, th, pc)
	if err != nil {
		return err
	}
	scores, isGood := make([]float64, len(before.Parts)), make([]bool, len(before.Parts))
	for i, p := range before.Parts {
		scores[i], isGood[i] = p.GoodScore, m.IsGood(p.Label)
	}
	th.Pass, th.Reject = eval.Calibrate(scores, isGood, te, tfr)
	th.Source = "calibrated on " + *data
	pc.PassThreshold, pc.RejectThreshold = th.Pass, th.Reject
	after, err := ev.evaluate(ctx, th, pc)
	if err != nil {
		return err
	}
	rep := calibrateReport{Model: m.Name, Version: m.Version, Precision: m.Model.Precision, Provider: after.Provider,
		Data: *data, Split: *split, TargetEscape: te, TargetFalseReject: tfr,
		Before: calibratePoint{Pass: m.Thresholds.Pass, Reject: m.Thresholds.Reject, Automation: before.Automation},
		After:  calibratePoint{Pass: th.Pass, Reject: th.Reject, Automation: after.Automation}}
	if rep.Split == "" {
		rep.Split = ev.ds.Root
	}
	rep.PassSetBy, rep.RejectSetBy = settingParts(after.Parts, m, th.Pass, th.Reject)
	if !*dryRun {
		if err := writeCalibration(*modelDir, m, &rep, after); err != nil {
			return err
		}
		rep.Written = true
	}
	if *asJSON {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printCalibrateReport(stdio.Out, &rep, *modelDir)
	return nil
}

// settingParts are the parts next to the thresholds on the far side: the
// defective part with the highest P(good) below pass, the good part with
// the lowest P(good) whose P(defect) is below reject (pure).
func settingParts(parts []eval.Part, m *inference.Manifest, pass, reject float64) (passBy, rejectBy *eval.Miss) {
	for _, p := range parts {
		miss := &eval.Miss{File: p.File, Predicted: p.Predicted, GoodScore: p.GoodScore}
		if good := m.IsGood(p.Label); !good && p.GoodScore < pass && (passBy == nil || p.GoodScore > passBy.GoodScore) {
			passBy = miss
		} else if good && 1-p.GoodScore < reject && (rejectBy == nil || p.GoodScore < rejectBy.GoodScore) {
			rejectBy = miss
		}
	}
	return passBy, rejectBy
}

// calibrationTargets are the flags' targets where set (>= 0), else the
// manifest's, else train.py's defaults.
func calibrationTargets(m *inference.Manifest, te, tfr float64) (float64, float64) {
	de, dfr := 0.01, 0.02
	if c := m.Thresholds.Calibration; c != nil {
		de, dfr = c.TargetEscape, c.TargetFalseReject
	}
	if te < 0 {
		te = de
	}
	if tfr < 0 {
		tfr = dfr
	}
	return te, tfr
}

// writeCalibration puts the calibrated thresholds, and the validation
// metrics measured at them by the Go engine, into the package's manifest.
func writeCalibration(dir string, m *inference.Manifest, rep *calibrateReport, after *eval.Report) error {
	a := after.Automation
	split := rep.Split + ", scored by the Go engine (linesight model calibrate, ONNX Runtime " + rep.Provider + ")"
	th := m.Thresholds
	th.Pass, th.Reject = rep.After.Pass, rep.After.Reject
	th.Calibration = &inference.Calibration{Split: split, Images: a.Parts, TargetEscape: rep.TargetEscape,
		TargetFalseReject: rep.TargetFalseReject, AutomationRate: a.AutomationRate, EscapeRate: a.EscapeRate,
		FalseRejectRate: a.FalseRejectRate}
	met := inference.Metrics{Split: split, Images: a.Parts, Accuracy: after.Accuracy, MacroF1: after.MacroF1,
		PerClass: map[string]inference.ClassMetrics{}, Confusion: after.Confusion, AutomationRate: a.AutomationRate,
		EscapeRate: a.EscapeRate, FalseRejectRate: a.FalseRejectRate, AUROC: after.AUROC}
	for l, c := range after.PerClass {
		met.PerClass[l] = inference.ClassMetrics(c)
	}
	if err := inference.SetManifestFields(dir, map[string]any{"thresholds": th, "metrics": met}); err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	return nil
}

func printCalibrateReport(w io.Writer, r *calibrateReport, dir string) {
	fmt.Fprintf(w, "model %s %s (%s, %s) calibrated on %s: %d images (%d good, %d defective), targets escape <= %.4g, false reject <= %.4g\n",
		r.Model, r.Version, r.Precision, r.Provider, r.Data, r.After.Automation.Parts, r.After.Automation.Good,
		r.After.Automation.Defective, r.TargetEscape, r.TargetFalseReject)
	for _, p := range []struct {
		name string
		c    calibratePoint
	}{{"package", r.Before}, {"calibrated", r.After}} {
		a := p.c.Automation
		fmt.Fprintf(w, "  %-10s  pass >= %.6f  reject >= %.6f  automation %.4f  escapes %d/%d  false rejects %d/%d\n",
			p.name, p.c.Pass, p.c.Reject, a.AutomationRate, a.Escapes, a.Defective, a.FalseRejects, a.Good)
	}
	if p := r.PassSetBy; p != nil {
		fmt.Fprintf(w, "  the pass threshold sits above defective %s (P(good) %.4f, predicted %s): it alone sets the threshold\n", p.File, p.GoodScore, p.Predicted)
	}
	if p := r.RejectSetBy; p != nil {
		fmt.Fprintf(w, "  the reject threshold sits above good %s (P(defect) %.4f, predicted %s)\n", p.File, 1-p.GoodScore, p.Predicted)
	}
	// Too few defective images to vouch for the escape target: say how far
	// they do, and how many would.
	if a := r.After.Automation; a.Defective > 0 && a.EscapeRateUpper > r.TargetEscape {
		fmt.Fprintf(w, "  note: %d of %d defective images passed, which bounds the escape rate under %.4f at %.0f %% confidence, not under the target %.4g",
			a.Escapes, a.Defective, a.EscapeRateUpper, eval.Confidence*100, r.TargetEscape)
		if float64(a.Defective)*r.TargetEscape < 1 {
			fmt.Fprint(w, " (at this target none may pass here, so one image sets the threshold)")
		}
		if z := eval.ZeroEventTrials(r.TargetEscape, eval.Confidence); z > 0 {
			fmt.Fprintf(w, "; %d defective images, none passed, would vouch for it", z)
		}
		fmt.Fprintln(w)
	}
	if r.Written {
		fmt.Fprintf(w, "wrote the thresholds and the validation metrics into %s/%s\n", dir, inference.ManifestFile)
	} else {
		fmt.Fprintln(w, "dry run: the manifest is unchanged")
	}
}
