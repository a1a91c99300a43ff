package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/inference/eval"
)

// trainPython is Debian's interpreter with torch 1.13, onnx and cv2.
const trainPython = "/usr/bin/python3"

var trainScript = filepath.Join("..", "..", "..", "scripts", "train", "train.py")

func needTorch(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(trainPython, "-c", "import torch, onnx, cv2, numpy").CombinedOutput(); err != nil {
		t.Skipf("%s with torch, onnx, cv2 and numpy is needed (Debian python3-torch, python3-onnx, python3-opencv): %v: %s", trainPython, err, out)
	}
}

// runTrainPy runs a Python program given scripts/train's folder as its
// first argument (it puts it on sys.path to import train) and scans the
// numbers it prints into dst.
func runTrainPy(t *testing.T, prog string, dst ...any) {
	t.Helper()
	out, err := exec.Command(trainPython, "-c", prog, filepath.Dir(trainScript)).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := fmt.Sscan(string(out), dst...); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
}

// wantUsage runs train.py with wrong options (on an empty data folder): it
// must stop with exit 2 and a message holding want, before reading data.
func wantUsage(t *testing.T, want string, args ...string) {
	t.Helper()
	code, log := train(t, append([]string{"--data", t.TempDir(), "--out", filepath.Join(t.TempDir(), "m")}, args...)...)
	if code != 2 || !strings.Contains(log, want) {
		t.Errorf("train.py %v: exit %d, want 2 and a message holding %q:\n%s", args, code, want, log)
	}
}

func train(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(trainPython, append([]string{trainScript}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("run train.py: %v", err)
	}
	return 0, string(out)
}

// synthSet writes a small labelled synthetic dataset (with masks) into a
// new folder under root and returns it.
// splitFile is the split.json train.py writes beside a package.
type splitFile struct {
	Group  int                 `json:"group_exposures"`
	Splits map[string][]string `json:"splits"`
}

func readSplit(t *testing.T, pkgDir string) splitFile {
	t.Helper()
	var sp splitFile
	b, err := os.ReadFile(filepath.Join(pkgDir, "split.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sp); err != nil {
		t.Fatal(err)
	}
	return sp
}

func synthSet(t *testing.T, root, seed string) string {
	t.Helper()
	data := filepath.Join(root, "data")
	if code, _, errs := runMain(context.Background(), "", "synth", "--out", data, "--n", "90", "--seed", seed, "--size", "64", "--defect-rate", "0.7"); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, errs)
	}
	return data
}

// valScores is what train.py --save-val-scores writes: the calibration
// split's files, classes and fp32 class probabilities.
type valScores struct {
	Good    []string    `json:"good"`
	Labels  []string    `json:"labels"`
	Files   []string    `json:"files"`
	Classes []string    `json:"classes"`
	Probs   [][]float64 `json:"probs"`
}

func readValScores(t *testing.T, path string) valScores {
	t.Helper()
	var vs valScores
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return vs
}

// TestModelTrainEvalSmoke is the whole model path in miniature: a tiny
// synthetic dataset, a tiny training (32 px, one short epoch), the fp32 and
// int8 packages, and `linesight model eval` through the Go engine on the
// held-out files the training wrote out. It checks the plumbing and the
// arithmetic of the report, not the model's quality.
func TestModelTrainEvalSmoke(t *testing.T) {
	needTorch(t)
	ctx := context.Background()
	root := t.TempDir()
	data := synthSet(t, root, "3")
	out := filepath.Join(root, "model")
	code, log := train(t, "--data", data, "--out", out, "--size", "32", "--width", "4", "--epochs", "1",
		"--samples-per-epoch", "64", "--batch", "16", "--calib-images", "16", "--seed", "5")
	if code != 0 {
		t.Fatalf("train.py: exit %d:\n%s", code, log)
	}
	for _, want := range []string{"epoch 1/1", "thresholds: pass", "wrote"} {
		if !strings.Contains(log, want) {
			t.Errorf("train.py output lacks %q (progress and results):\n%s", want, log)
		}
	}
	// Fixed seeds: the same data and options give the same graphs.
	again := filepath.Join(root, "again")
	if code, log := train(t, "--data", data, "--out", again, "--size", "32", "--width", "4", "--epochs", "1",
		"--samples-per-epoch", "64", "--batch", "16", "--calib-images", "16", "--seed", "5", "--quiet", "--no-links"); code != 0 {
		t.Fatalf("train.py again: exit %d:\n%s", code, log)
	}
	for _, f := range []string{"model.onnx", filepath.Join("int8", "model.onnx")} {
		a, _ := os.ReadFile(filepath.Join(out, f))
		b, _ := os.ReadFile(filepath.Join(again, f))
		if len(a) == 0 || inference.SHA256(a) != inference.SHA256(b) {
			t.Errorf("%s differs between two trainings with seed 5", f)
		}
	}
	split := readSplit(t, out)
	if len(split.Splits["train"]) == 0 || len(split.Splits["val"]) == 0 || len(split.Splits["test"]) == 0 {
		t.Fatalf("split sizes: train %d, val %d, test %d", len(split.Splits["train"]), len(split.Splits["val"]), len(split.Splits["test"]))
	}
	for _, pkgDir := range []string{out, filepath.Join(out, "int8")} {
		pkg, err := inference.LoadPackage(pkgDir)
		if err != nil {
			t.Fatalf("load %s: %v", pkgDir, err)
		}
		m := pkg.Manifest
		if m.Input.Channels != "gray" || m.Input.Shape[2] != 32 || m.Reference == nil || m.Training == nil || m.Metrics == nil ||
			m.Thresholds.Calibration == nil || !(m.Thresholds.Pass > 0.5) || !(m.Thresholds.Reject > 0.5) {
			t.Fatalf("%s: incomplete manifest: %+v", pkgDir, m)
		}
		if got := m.Training.Images; got != len(split.Splits["train"]) {
			t.Errorf("%s: training.images %d, split has %d", pkgDir, got, len(split.Splits["train"]))
		}
		var trainFiles []string
		for _, rel := range split.Splits["train"] {
			trainFiles = append(trainFiles, filepath.Join(data, filepath.FromSlash(rel)))
		}
		if fp, err := inference.Fingerprint(data, trainFiles); err != nil || fp != m.Training.Fingerprint {
			t.Errorf("%s: Python's training fingerprint %s, Go's %s (%v)", pkgDir, m.Training.Fingerprint, fp, err)
		}
		for _, sub := range []string{"val", "test", "train"} {
			dir := filepath.Join(out, "heldout", sub)
			if sub == "train" {
				dir = filepath.Join(out, "trained") // what the networks trained on, for model eval too
			}
			r := evalJSON(t, pkgDir, dir)
			checkReport(t, &r, m, len(split.Splits[sub]))
			if sub == "val" {
				// The manifest's calibration was measured on the same val
				// files in Python (int8: simulated); the Go engine agrees.
				c := m.Thresholds.Calibration
				if math.Abs(r.Automation.AutomationRate-c.AutomationRate) > 0.05 {
					t.Errorf("%s: Go automation on val %.4f, the manifest's calibration says %.4f", pkgDir, r.Automation.AutomationRate, c.AutomationRate)
				}
			}
		}
		// The text report names every part of the yardstick.
		code, stdout, errs := runMain(ctx, "", "model", "eval", "--quiet", "--model", pkgDir, "--data", filepath.Join(out, "heldout", "test"))
		if code != 0 {
			t.Fatalf("model eval (text): exit %d: %s", code, errs)
		}
		for _, want := range []string{"true \\ predicted", "precision", "recall", "accuracy", "automation", "escape", "false reject", "defer", "at 95 % confidence"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("text report lacks %q:\n%s", want, stdout)
			}
		}
	}

	// A policy file overrides the manifest's thresholds.
	pol := filepath.Join(root, "policy.yaml")
	if err := os.WriteFile(pol, []byte("policy:\n  pass_threshold: 0.999\n  reject_threshold: 0.998\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, errs := runMain(ctx, "", "model", "eval", "--quiet", "--json", "--model", out, "--data", filepath.Join(out, "heldout", "test"), "--policy", pol)
	if code != 0 {
		t.Fatalf("model eval --policy: exit %d: %s", code, errs)
	}
	var r eval.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.Thresholds.Pass != 0.999 || r.Thresholds.Reject != 0.998 || r.Thresholds.Source != pol {
		t.Errorf("policy thresholds not used: %+v", r.Thresholds)
	}

	// Eval on a folder with a class the model does not know: a usage error naming it.
	bad := filepath.Join(root, "unknown")
	if err := os.MkdirAll(filepath.Join(bad, "scratch"), 0o755); err != nil {
		t.Fatal(err)
	}
	src, _ := filepath.Glob(filepath.Join(data, "free", "*[0-9].jpg"))
	copyFile(t, src[0], filepath.Join(bad, "scratch", "a.jpg"))
	code, _, errs = runMain(ctx, "", "model", "eval", "--quiet", "--model", out, "--data", bad)
	if code != 2 || !strings.Contains(errs, "scratch") || !strings.Contains(errs, "does not know") {
		t.Errorf("eval with an unknown class: exit %d, stderr %q", code, errs)
	}
	// An unreadable image in the eval folder names the file.
	if err := os.MkdirAll(filepath.Join(root, "corrupt", "free"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "corrupt", "free", "broken.jpg"), []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runMain(ctx, "", "model", "eval", "--quiet", "--model", out, "--data", filepath.Join(root, "corrupt"))
	if code != 2 || !strings.Contains(errs, "broken.jpg") {
		t.Errorf("eval with a corrupt image: exit %d, stderr %q", code, errs)
	}
}

// checkReport checks that a report's figures are consistent with each other.
func checkReport(t *testing.T, r *eval.Report, m *inference.Manifest, images int) {
	t.Helper()
	if r.Images != images {
		t.Errorf("report has %d images, the split %d", r.Images, images)
	}
	sum := 0
	for _, row := range r.Confusion {
		for _, n := range row {
			sum += n
		}
	}
	if sum != images {
		t.Errorf("confusion matrix sums to %d, want %d", sum, images)
	}
	a := r.Automation
	if a.Parts != images || a.Passed+a.Rejected+a.Deferred != images || a.Good+a.Defective != images {
		t.Errorf("automation counts inconsistent: %+v", a)
	}
	if want := float64(a.Passed+a.Rejected) / float64(images); math.Abs(a.AutomationRate-want) > 1e-12 || math.Abs(a.AutomationRate+a.DeferRate-1) > 1e-12 {
		t.Errorf("automation rate %v, defer %v; want %v", a.AutomationRate, a.DeferRate, want)
	}
	if a.Defective > 0 && math.Abs(a.EscapeRate-float64(a.Escapes)/float64(a.Defective)) > 1e-12 {
		t.Errorf("escape rate %v with %d escapes of %d", a.EscapeRate, a.Escapes, a.Defective)
	}
	if a.EscapeRateUpper != eval.UpperBound(a.Escapes, a.Defective, 0.95) || a.EscapeRateUpper < a.EscapeRate ||
		a.FalseRejectRateUpper != eval.UpperBound(a.FalseRejects, a.Good, 0.95) || a.FalseRejectRateUpper < a.FalseRejectRate {
		t.Errorf("95 %% bounds %v / %v do not bound %d/%d escapes and %d/%d false rejects", a.EscapeRateUpper,
			a.FalseRejectRateUpper, a.Escapes, a.Defective, a.FalseRejects, a.Good)
	}
	if len(r.Escapes) != a.Escapes || len(r.FalseRejects) != a.FalseRejects {
		t.Errorf("listed %d escapes and %d false rejects; counted %d and %d", len(r.Escapes), len(r.FalseRejects), a.Escapes, a.FalseRejects)
	}
	// every part listed once, its verdict the one the counts and the miss lists were made of
	verdicts := map[string]int{}
	for _, p := range r.Parts {
		verdicts[p.Verdict]++
		isGood := slices.Contains(m.GoodLabels, p.Label)
		if p.GoodScore < 0 || p.GoodScore > 1 || !strings.HasPrefix(p.File, p.Label+"/") {
			t.Errorf("part %+v: score out of [0,1] or file not in its label's folder", p)
		}
		if p.Verdict == "pass" && !isGood && !slices.ContainsFunc(r.Escapes, func(e eval.Miss) bool { return e.File == p.File }) {
			t.Errorf("part %+v passed but is not listed as an escape", p)
		}
	}
	if len(r.Parts) != images || verdicts["pass"] != a.Passed || verdicts["reject"] != a.Rejected || verdicts["defer"] != a.Deferred {
		t.Errorf("parts list %d with verdicts %v; counted %+v", len(r.Parts), verdicts, a)
	}
	if r.Thresholds.Pass != m.Thresholds.Pass || r.Thresholds.Reject != m.Thresholds.Reject || r.Thresholds.Source != "manifest" {
		t.Errorf("thresholds %+v, manifest %+v", r.Thresholds, m.Thresholds)
	}
	if r.Accuracy < 0 || r.Accuracy > 1 || len(r.PerClass) != len(m.Labels) {
		t.Errorf("accuracy %v, %d per-class rows", r.Accuracy, len(r.PerClass))
	}
}

// TestTrainRejectsBadDatasets: the dataset checks run before any training
// and say what is wrong.
func TestTrainRejectsBadDatasets(t *testing.T) {
	needTorch(t)
	ctx := context.Background()
	root := t.TempDir()
	base := filepath.Join(root, "base")
	if code, _, errs := runMain(ctx, "", "synth", "--out", base, "--n", "30", "--seed", "4", "--size", "32", "--defect-rate", "0.5"); code != 0 {
		t.Fatalf("synth: %s", errs)
	}
	free, _ := filepath.Glob(filepath.Join(base, "free", "*[0-9].jpg"))
	mk := func(name string, files map[string]string) string {
		d := filepath.Join(root, name)
		for rel, src := range files {
			p := filepath.Join(d, rel)
			if strings.HasSuffix(rel, "/") { // an empty folder
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if src == "" {
				if err := os.WriteFile(p, []byte("\x00garbage"), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			copyFile(t, src, p)
		}
		return d
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"empty-class", map[string]string{"free/a.jpg": free[0], "free/b.jpg": free[1], "crack/": ""}, []string{"crack", "no images"}},
		{"single-class", map[string]string{"free/a.jpg": free[0], "free/b.jpg": free[1], "free/c.jpg": free[2]}, []string{"only one class"}},
		{"unreadable", map[string]string{"free/a.jpg": free[0], "free/b.jpg": free[1], "free/c.jpg": free[2], "crack/x.jpg": free[3], "crack/y.jpg": free[4], "crack/z.jpg": free[5], "crack/bad.jpg": ""},
			[]string{"unreadable", "crack/bad.jpg"}},
		{"no-good-label", map[string]string{"ok/a.jpg": free[0], "ok/b.jpg": free[1], "crack/x.jpg": free[3], "crack/y.jpg": free[4]}, []string{"good label", "free"}},
	} {
		d := mk(c.name, c.files)
		code, out := train(t, "--data", d, "--out", filepath.Join(root, "out-"+c.name), "--size", "32", "--epochs", "1")
		if code != 2 {
			t.Errorf("%s: exit %d, want 2:\n%s", c.name, code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: error does not say %q:\n%s", c.name, w, out)
			}
		}
		if strings.Contains(out, "epoch") {
			t.Errorf("%s: training started before the dataset check:\n%s", c.name, out)
		}
	}
}

// evalJSON runs `linesight model eval --json` on a package and a labelled
// folder (extra flags after them) and returns its report.
func evalJSON(t *testing.T, pkgDir, data string, extra ...string) eval.Report {
	t.Helper()
	args := append([]string{"model", "eval", "--quiet", "--json", "--model", pkgDir, "--data", data}, extra...)
	code, stdout, errs := runMain(context.Background(), "", args...)
	if code != 0 {
		t.Fatalf("model eval %s on %s: exit %d: %s", pkgDir, data, code, errs)
	}
	var r eval.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("eval JSON: %v\n%s", err, stdout)
	}
	return r
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyDecider checks that eval decides each part with agent/policy's
// rule at the partial level: pass, then the total reject threshold, then a
// defect class over its own threshold, else defer.
func TestPolicyDecider(t *testing.T) {
	m := &inference.Manifest{Labels: []string{"blowhole", "crack", "free"}, GoodLabels: []string{"free"}}
	// Thresholds and scores exactly representable in float32, so "at the
	// threshold" is exact.
	pc := policy.Config{Level: policy.Partial, FailSafe: policy.Defer, PassThreshold: 0.875, RejectThreshold: 0.75,
		ClassReject: map[string]float64{"crack": 0.625}}
	zero := policy.Config{Level: policy.Partial, FailSafe: policy.Defer}
	for _, c := range []struct {
		name   string
		scores []float32
		pc     policy.Config
		want   eval.Verdict
	}{
		{"confident good", []float32{0.02, 0.03, 0.95}, pc, eval.Pass},
		{"exactly at pass", []float32{0.0625, 0.0625, 0.875}, pc, eval.Pass},
		{"confident defect", []float32{0.5, 0.4, 0.1}, pc, eval.Reject},
		{"exactly at reject", []float32{0.5, 0.25, 0.25}, pc, eval.Reject},
		{"unsure", []float32{0.15, 0.15, 0.7}, pc, eval.Defer},
		{"per-class reject below the total", []float32{0.05, 0.65, 0.3}, pc, eval.Reject},
		{"per-class threshold not reached", []float32{0.1, 0.55, 0.35}, pc, eval.Defer},
		{"just below pass", []float32{0.07, 0.07, 0.86}, pc, eval.Defer},
		{"zero thresholds never fire", []float32{0, 0, 1}, zero, eval.Defer},
	} {
		if got := policyDecider(m, c.pc)(c.scores); got != c.want {
			t.Errorf("%s: decide(%v) = %v, want %v", c.name, c.scores, got, c.want)
		}
	}
}

// TestTrainRealRecipeSmoke runs the options `make model-tiles` trains
// with (mask-supervised segmentation head, 4-flip TTA, an ensemble of two,
// full class balance, the escape weight, synthetic chipped edges and
// slivers, synthetic defects, averaged weights, channels-last training),
// and the experiments' (transplants, crops, prior fit), in miniature on a
// synthetic set with masks, then loads the package in Go and evaluates it:
// the plumbing of the real-data recipe, not its quality.
func TestTrainRealRecipeSmoke(t *testing.T) {
	needTorch(t)
	ctx := context.Background()
	root := t.TempDir()
	data := synthSet(t, root, "8")
	if masks, _ := filepath.Glob(filepath.Join(data, "*", "*_mask.png")); len(masks) == 0 {
		t.Fatal("synth wrote no masks: the segmentation head would train on nothing")
	}
	out := filepath.Join(root, "model")
	scores := filepath.Join(root, "val-scores.json")
	code, log := train(t, "--data", data, "--out", out, "--size", "32", "--width", "4", "--epochs", "1",
		"--samples-per-epoch", "64", "--batch", "16", "--calib-images", "16", "--seed", "5", "--no-int8",
		"--arch", "segnet", "--tta", "--ensemble", "2", "--balance", "full", "--defect-weight", "1",
		"--edge-chips", "0.5", "--chip-slivers", "0.5", "--transplant", "0.5", "--synth-defects", "0.5", "--synth-border", "0.02", "--crop-prob", "0.5", "--ema", "0.9",
		"--prior-fit", "--channels-last", "--save-val-scores", scores)
	if code != 0 {
		t.Fatalf("train.py: exit %d:\n%s", code, log)
	}
	pkg, err := inference.LoadPackage(out)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	m := pkg.Manifest
	if len(m.Outputs) != 2 || m.Training == nil {
		t.Fatalf("manifest: outputs %+v, training %+v", m.Outputs, m.Training)
	}
	for _, k := range []string{"edge_chips", "chip_slivers", "transplant", "synth_defects", "crop", "ema", "prior_fit", "memory_format", "defect_weight", "architecture"} {
		if m.Training.Extra[k] == "" {
			t.Errorf("manifest training.extra lacks %q: %v", k, m.Training.Extra)
		}
	}
	if !strings.Contains(m.Training.Extra["synth_defects"], "0.02 of the side from the border") {
		t.Errorf("manifest does not record --synth-border: %q", m.Training.Extra["synth_defects"])
	}
	if !strings.Contains(m.Training.Extra["architecture"], "segmentation head") || m.Training.Extra["ensemble"] != "2" {
		t.Errorf("manifest does not describe the network: %v", m.Training.Extra)
	}
	if cpu := m.Training.Extra["cpu"]; !strings.Contains(cpu, "(torch kernels: ") || strings.Contains(cpu, "unknown") {
		t.Errorf("manifest training.extra.cpu = %q: want this machine's CPU and torch's kernels", cpu)
	}
	vs := readValScores(t, scores)
	if len(vs.Files) == 0 || len(vs.Files) != len(vs.Classes) || len(vs.Files) != len(vs.Probs) || len(vs.Probs[0]) != len(vs.Labels) {
		t.Fatalf("val scores: %d files, %d classes, %d rows", len(vs.Files), len(vs.Classes), len(vs.Probs))
	}
	for i, p := range vs.Probs {
		sum := 0.0
		for _, x := range p {
			sum += x
		}
		if math.Abs(sum-1) > 1e-5 {
			t.Fatalf("val scores row %d (%s) sums to %v", i, vs.Files[i], sum)
		}
	}
	// --prior-fit: the shift is the maximum-likelihood one, so on the
	// calibration split the summed P(good) equals the summed Platt targets.
	var sumGood, sumTarget float64
	var nGood, nDefect int
	for _, c := range vs.Classes {
		if slices.Contains(vs.Good, c) {
			nGood++
		} else {
			nDefect++
		}
	}
	for i, p := range vs.Probs {
		for j, x := range p {
			if slices.Contains(vs.Good, vs.Labels[j]) {
				sumGood += x
			}
		}
		if slices.Contains(vs.Good, vs.Classes[i]) {
			sumTarget += float64(nGood+1) / float64(nGood+2)
		} else {
			sumTarget += 1 / float64(nDefect+2)
		}
	}
	if math.Abs(sumGood-sumTarget) > 1e-3*float64(len(vs.Probs)) {
		t.Errorf("prior fit: val P(good) sums to %.5f, Platt targets to %.5f (%s)", sumGood, sumTarget, m.Training.Extra["prior_fit"])
	}
	code, stdout, errs := runMain(ctx, "", "model", "eval", "--quiet", "--json", "--model", out, "--data", filepath.Join(out, "heldout", "test"))
	if code != 0 {
		t.Fatalf("model eval: exit %d: %s", code, errs)
	}
	var r eval.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	checkReport(t, &r, m, r.Images)
	if r.Images == 0 {
		t.Fatal("eval saw no images")
	}

	// A chip class that is not a defect class of the dataset: an error
	// before any training.
	code, log = train(t, "--data", data, "--out", filepath.Join(root, "bad"), "--size", "32", "--epochs", "1", "--edge-chips", "0.5", "--edge-chip-class", "dent")
	if code != 2 || !strings.Contains(log, "dent") || strings.Contains(log, "epoch") {
		t.Errorf("unknown chip class: exit %d:\n%s", code, log)
	}
	// A synthetic defect kind labelled with a class the dataset lacks, or
	// an unknown kind: an error before any training.
	for _, spec := range []string{"pit=dent", "scratch=crack"} {
		code, log = train(t, "--data", data, "--out", filepath.Join(root, "bad3"), "--size", "32", "--epochs", "1", "--synth-defects", "0.5", "--synth-kinds", spec)
		if code != 2 || !strings.Contains(log, "--synth-kinds") || strings.Contains(log, "epoch 1/") {
			t.Errorf("--synth-kinds %s: exit %d:\n%s", spec, code, log)
		}
	}
	// Transplanting defects needs their masks, which only the segmentation
	// architectures load.
	code, log = train(t, "--data", data, "--out", filepath.Join(root, "bad2"), "--size", "32", "--epochs", "1", "--transplant", "0.3")
	if code != 2 || !strings.Contains(log, "--arch segnet") || strings.Contains(log, "epoch 1/") {
		t.Errorf("transplant without masks: exit %d:\n%s", code, log)
	}
}

// TestTrainKeepsExposuresTogether: with --group-exposures, photos named as
// one part at several exposures (CLASS/expE_num_N.jpg, N close, E rising;
// the magnetic-tile set's naming) all land in one split, so the held-out
// figures are about parts the network never saw. The set is synthetic
// images renamed three to a part.
func TestTrainKeepsExposuresTogether(t *testing.T) {
	needTorch(t)
	root := t.TempDir()
	src := synthSet(t, root, "4")
	data := filepath.Join(root, "parts")
	classes, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range classes {
		imgs, _ := filepath.Glob(filepath.Join(src, c.Name(), "*.jpg"))
		slices.Sort(imgs)
		if err := os.MkdirAll(filepath.Join(data, c.Name()), 0o755); err != nil {
			t.Fatal(err)
		}
		for j, f := range imgs {
			part, e := j/3+1, j%3+1
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("exp%d_num_%d.jpg", e, 1000*part+10*e)
			if err := os.WriteFile(filepath.Join(data, c.Name(), name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := filepath.Join(root, "model")
	code, log := train(t, "--data", data, "--out", out, "--size", "32", "--width", "4", "--epochs", "1",
		"--samples-per-epoch", "32", "--batch", "16", "--no-int8", "--no-links", "--group-exposures", "50", "--val-frac", "0.2", "--test-frac", "0.2")
	if code != 0 {
		t.Fatalf("train.py: exit %d:\n%s", code, log)
	}
	sp := readSplit(t, out)
	where := map[string]string{} // class/part -> split
	perSplit := map[string]int{}
	for name, files := range sp.Splits {
		for _, f := range files {
			var e, n int
			if _, err := fmt.Sscanf(filepath.Base(f), "exp%d_num_%d.jpg", &e, &n); err != nil {
				t.Fatalf("split.json file %q: %v", f, err)
			}
			part := fmt.Sprintf("%s/%d", filepath.Dir(f), n/1000)
			if w, ok := where[part]; ok && w != name {
				t.Errorf("part %s has photos in %s and %s", part, w, name)
			}
			where[part] = name
			perSplit[name]++
		}
	}
	if sp.Group != 50 || perSplit["train"] == 0 || perSplit["val"] == 0 || perSplit["test"] == 0 {
		t.Errorf("group_exposures %d, images per split %v", sp.Group, perSplit)
	}
	pkg, err := inference.LoadPackage(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pkg.Manifest.Training.Extra["split_groups"], "within 50") {
		t.Errorf("manifest does not say how the split was grouped: %v", pkg.Manifest.Training.Extra)
	}
}

// backboneDir is where scripts/setup.sh (scripts/train/backbone.sh) puts the
// ImageNet-trained MobileNetV2 weights.
var backboneDir = filepath.Join("..", "..", "..", ".cache", "backbone", "mobilenet_v2")

// TestPretrainedTrunk: the MobileNetV2 trunk loaded from the weights the
// setup fetched computes what TensorFlow.js computes with the npm package's
// own model (a golden output), and a tiny training of an ensemble of a
// pretrained MobileSegNet and a SegTileNet (--arch mnv2seg+segnet) gives
// fp32 and int8 packages (depthwise convs, residual adds, asymmetric pads)
// that the Go engine loads and evaluates.
func TestPretrainedTrunk(t *testing.T) {
	needTorch(t)
	if _, err := os.Stat(filepath.Join(backboneDir, "weights.bin")); err != nil {
		t.Fatalf("no MobileNetV2 weights (%v): run make setup, or scripts/train/backbone.sh", err)
	}
	check := filepath.Join("..", "..", "..", "scripts", "train", "check_backbone.py")
	if out, err := exec.Command(trainPython, check, backboneDir).CombinedOutput(); err != nil {
		t.Fatalf("check_backbone.py: %v:\n%s", err, out)
	}
	// train.py folds the frozen layers' batch norms into their convs
	// (lsmodel.fold_bn): the same function, no batch norm left in them
	fold := `import sys, copy; sys.path.insert(0, sys.argv[1]); import torch, lsmodel
t = lsmodel.MobileTrunk(); t.load_keras(lsmodel.read_keras_weights(sys.argv[2])); t.eval()
f = copy.deepcopy(t); n = lsmodel.fold_bn(f.layers[:3])
x = torch.rand(4, 1, 64, 64)
with torch.no_grad(): d = float((t(x) - f(x)).abs().max() / t(x).abs().max())
print(n, sum(isinstance(m, torch.nn.BatchNorm2d) for m in f.layers[:3].modules()), sum(isinstance(m, torch.nn.BatchNorm2d) for m in f.layers[3:].modules()), d)`
	var folded, leftFrozen, leftRest int
	var rel float64
	if b, err := exec.Command(trainPython, "-c", fold, filepath.Dir(trainScript), backboneDir).CombinedOutput(); err != nil {
		t.Fatalf("fold_bn: %v: %s", err, b)
	} else if _, err := fmt.Sscan(string(b), &folded, &leftFrozen, &leftRest, &rel); err != nil {
		t.Fatalf("fold_bn: output %q: %v", b, err)
	}
	if folded != 6 || leftFrozen != 0 || leftRest == 0 || rel > 1e-5 {
		t.Errorf("fold_bn of the first 3 layers: %d folded (want 6), %d batch norms left in them (want 0), %d in the rest (want them all), relative difference %.2g (want <= 1e-5)", folded, leftFrozen, leftRest, rel)
	}
	root := t.TempDir()
	data := synthSet(t, root, "9")
	out := filepath.Join(root, "model")
	code, log := train(t, "--data", data, "--out", out, "--size", "32", "--epochs", "1",
		"--samples-per-epoch", "32", "--batch", "16", "--calib-images", "16", "--seed", "5",
		"--arch", "mnv2seg+segnet", "--ensemble", "2", "--width", "4", "--pretrained", backboneDir, "--freeze", "3",
		"--pretrained-lr", "0.001", "--tta", "--synth-defects", "0.5", "--save-val-scores", filepath.Join(root, "val-scores.json"))
	if code != 0 {
		t.Fatalf("train.py: exit %d:\n%s", code, log)
	}
	if strings.Contains(log, "invalid value") {
		t.Errorf("int8 export warned of an invalid value (a bias out of int32 range?):\n%s", log)
	}
	for _, pkgDir := range []string{out, filepath.Join(out, "int8")} {
		pkg, err := inference.LoadPackage(pkgDir)
		if err != nil {
			t.Fatalf("load %s: %v", pkgDir, err)
		}
		arch := pkg.Manifest.Training.Extra["architecture"]
		if !strings.Contains(arch, "MobileNetV2") || !strings.Contains(arch, "first 3 layers frozen") || !strings.Contains(arch, "mobilenet_v2") ||
			!strings.Contains(arch, " + SegTileNet width 4") || pkg.Manifest.Training.Extra["ensemble"] != "2" ||
			pkg.Manifest.Training.Extra["pretrained_lr"] != "0.001" {
			t.Errorf("%s: architecture %q does not say what was trained", pkgDir, arch)
		}
		for _, sub := range []string{"val", "test"} {
			r := evalJSON(t, pkgDir, filepath.Join(out, "heldout", sub))
			if r.Images == 0 {
				t.Fatalf("%s: eval saw no images of %s", pkgDir, sub)
			}
			checkReport(t, &r, pkg.Manifest, r.Images)
			// the calibration was measured in Python (int8: its simulation of
			// the QDQ graph, residual adds included); the Go engine agrees
			if c := pkg.Manifest.Thresholds.Calibration; sub == "val" && math.Abs(r.Automation.AutomationRate-c.AutomationRate) > 0.05 {
				t.Errorf("%s: Go automation on val %.4f, the manifest's calibration says %.4f", pkgDir, r.Automation.AutomationRate, c.AutomationRate)
			}
		}
	}
	// The int8 graph quantises the outputs of the trunk's 8 residual
	// projections too, so that ONNX Runtime can run the adds as QLinearAdd.
	count := `import onnx, sys; g = onnx.load(sys.argv[1]).graph; print(sum(n.name.endswith("_oq") for n in g.node))`
	if b, err := exec.Command(trainPython, "-c", count, filepath.Join(out, "int8", "model.onnx")).CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "8" {
		t.Errorf("int8 graph: %s projection outputs quantised, want 8 (%v)", strings.TrimSpace(string(b)), err)
	}
	// The trunk's right/bottom pads before its stride-2 convs are folded
	// into those convs (lsmodel.fold_pads): no Pad op is left in either
	// graph (in int8 one kept the conv before it in float), and the fp32
	// graph still computes what PyTorch computes.
	pads := `import onnx, sys; print(sum(n.op_type == "Pad" for f in sys.argv[1:] for n in onnx.load(f).graph.node))`
	if b, err := exec.Command(trainPython, "-c", pads, filepath.Join(out, "model.onnx"), filepath.Join(out, "int8", "model.onnx")).CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Errorf("%s Pad ops left in the graphs, want 0 (%v)", strings.TrimSpace(string(b)), err)
	}
	r := evalJSON(t, out, filepath.Join(out, "heldout", "val"))
	if gap := maxScoreGap(t, readValScores(t, filepath.Join(root, "val-scores.json")), &r); gap > 1e-5 {
		t.Errorf("fp32: P(good) of go and python differ by up to %.3g on the val parts", gap)
	}

	// Two pretrained trunks in one ensemble share their frozen first
	// layers: the exporter keeps one copy of those weights (the other an
	// Identity) and one pad for both; the int8 export still quantises each
	// conv (it crashed on the alias) and folds the shared pad into both.
	twin := filepath.Join(root, "twin")
	code, log = train(t, "--data", data, "--out", twin, "--size", "32", "--epochs", "1",
		"--samples-per-epoch", "32", "--batch", "16", "--calib-images", "16", "--seed", "5",
		"--arch", "mnv2seg", "--ensemble", "2", "--pretrained", backboneDir, "--freeze", "3",
		"--save-val-scores", filepath.Join(root, "twin-scores.json"))
	if code != 0 {
		t.Fatalf("train.py, two MobileSegNets: exit %d:\n%s", code, log)
	}
	if b, err := exec.Command(trainPython, "-c", pads, filepath.Join(twin, "model.onnx"), filepath.Join(twin, "int8", "model.onnx")).CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Errorf("two MobileSegNets: %s Pad ops left in the graphs, want 0 (%v)", strings.TrimSpace(string(b)), err)
	}
	r = evalJSON(t, twin, filepath.Join(twin, "heldout", "val"))
	if gap := maxScoreGap(t, readValScores(t, filepath.Join(root, "twin-scores.json")), &r); gap > 1e-5 {
		t.Errorf("two MobileSegNets, fp32: P(good) of go and python differ by up to %.3g on the val parts", gap)
	}
	if r8 := evalJSON(t, filepath.Join(twin, "int8"), filepath.Join(twin, "heldout", "val")); r8.Images != r.Images {
		t.Errorf("two MobileSegNets, int8: eval saw %d images, fp32 %d", r8.Images, r.Images)
	}

	// The trunk's options with another architecture, or weights that are
	// not there: an error that says what to do, before any training.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--arch", "segnet", "--freeze", "3"}, "--arch mnv2seg"},
		{[]string{"--arch", "segnet", "--pretrained-lr", "0.001"}, "--arch mnv2seg"},
		{[]string{"--arch", "mnv2seg", "--pretrained", filepath.Join(root, "nowhere")}, "backbone.sh"},
		{[]string{"--arch", "mnv2seg", "--freeze", "99"}, "--freeze"},
		{[]string{"--arch", "mnv2seg+resnet"}, "no architecture 'resnet'"},
		{[]string{"--arch", "segnet+tilenet"}, "only segmentation architectures"},
	} {
		code, log := train(t, append([]string{"--data", data, "--out", filepath.Join(root, "bad"), "--size", "32", "--epochs", "1"}, c.args...)...)
		if code != 2 || !strings.Contains(log, c.want) || strings.Contains(log, "epoch 1/") {
			t.Errorf("%v: exit %d, want 2 and %q:\n%s", c.args, code, c.want, log)
		}
	}
}

// TestSynthDefectsBorder runs train.py's synthetic pits with --synth-border's
// two settings on 200 flat good images: at 0.1 no pit reaches the outer 6 %
// of the image (centres >= 10 % in, radius <= 3.5 %); at 0.02, as with the
// real blowholes (a third of them centred within a tenth of a border), many do.
func TestSynthDefectsBorder(t *testing.T) {
	needTorch(t)
	prog := `
import sys, torch
sys.path.insert(0, sys.argv[1])
import train
for border in (0.1, 0.02):
    g = torch.Generator().manual_seed(3)
    xb, eb, yb = torch.full((200, 1, 64, 64), 0.5), torch.zeros(200, 2, 64, 64), torch.zeros(200, dtype=torch.long)
    train.synth_defects(xb, eb, yb, g, 1.0, [("pit", 1)], [0], border)
    m = eb[:, 0] > 0
    rim = m.clone()
    rim[:, 4:60, 4:60] = False
    print(border, int((yb == 1).sum()), int(m.flatten(1).any(1).sum()), int(rim.flatten(1).any(1).sum()))
`
	out, err := exec.Command(trainPython, "-c", prog, filepath.Dir(trainScript)).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var got [2][3]int
	for i, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var b float64
		if _, err := fmt.Sscan(line, &b, &got[i][0], &got[i][1], &got[i][2]); err != nil || i > 1 {
			t.Fatalf("output %q: %v", out, err)
		}
	}
	for i, g := range got {
		if g[0] != 200 || g[1] != 200 {
			t.Errorf("setting %d: %d images labelled a pit, %d with a mask; want all 200", i, g[0], g[1])
		}
	}
	if got[0][2] != 0 || got[1][2] < 20 {
		t.Errorf("images with a pit in the outer 4 px of 64: %d at border 0.1 (want 0), %d at 0.02 (want >= 20)", got[0][2], got[1][2])
	}
}

// TestEdgeChipsPerRow runs train.py's synthetic chipped edges with one
// probability per row, as --window-edge-chips gives the training windows
// their own: rows at 0 keep their image and label, rows at 1 all become the
// chip class with the piece in the mask, and a probability given per row
// draws what the same number given once draws (so the recipe without the
// option trains the same bytes). The option without --windows is an error
// before any training.
func TestEdgeChipsPerRow(t *testing.T) {
	needTorch(t)
	prog := `
import sys, torch
sys.path.insert(0, sys.argv[1])
import train
def run(prob):
    g = torch.Generator().manual_seed(3)
    xb = torch.rand(200, 1, 48, 48, generator=torch.Generator().manual_seed(1))
    eb, yb = torch.zeros(200, 2, 48, 48), torch.zeros(200, dtype=torch.long)
    x0 = xb.clone()
    train.edge_chips(xb, eb, yb, g, prob, 1, [0])
    return x0, xb, eb, yb
p = torch.zeros(200)
p[100:] = 1
x0, xb, eb, yb = run(p)
low, high = slice(0, 100), slice(100, 200)
print(int((yb[low] != 0).sum()), int(eb[low].abs().sum() > 0), int(torch.equal(xb[low], x0[low])),
      int((yb[high] == 1).sum()), int(eb[high, 0].flatten(1).any(1).sum()))
a, b = run(0.3), run(torch.full((200,), 0.3))
print(int(all(torch.equal(u, v) for u, v in zip(a, b))), int((a[3] == 1).sum()))
`
	var lowChanged, lowMask, lowSame, highChip, highMask, same, chips int
	runTrainPy(t, prog, &lowChanged, &lowMask, &lowSame, &highChip, &highMask, &same, &chips)
	if lowChanged != 0 || lowMask != 0 || lowSame != 1 {
		t.Errorf("rows at probability 0: %d relabelled, mask touched %d, images unchanged %d; want 0, 0, 1", lowChanged, lowMask, lowSame)
	}
	if highChip != 100 || highMask != 100 {
		t.Errorf("rows at probability 1: %d labelled the chip class, %d with a mask; want 100 and 100", highChip, highMask)
	}
	if same != 1 || chips < 30 || chips > 90 {
		t.Errorf("probability 0.3 once and per row: identical %d (want 1), %d of 200 chipped (want about 60)", same, chips)
	}

	wantUsage(t, "--window-edge-chips is for --windows", "--edge-chips", "0.1", "--window-edge-chips", "0.2")
}

// TestEdgeChipsBite runs train.py's bite-filled chips (--chip-fill bite) on
// a striped surface: every chipped row has its piece in the mask, touching
// the image's border, the pixels outside it untouched, and on most of them
// the piece darker than the ring just outside (as the real breaks: median
// x0.74); the default fill draws what "texture" draws, so recipes without
// the option train the same bytes; "bright" chips are darker than their
// ring far less often than "texture" ones. An unknown fill is an error
// before any training.
func TestEdgeChipsBite(t *testing.T) {
	needTorch(t)
	prog := `
import sys, torch
import torch.nn.functional as F
sys.path.insert(0, sys.argv[1])
import train
def run(*fill):
    g = torch.Generator().manual_seed(5)
    base = torch.rand(200, 1, 1, 48, generator=torch.Generator().manual_seed(2)) * 0.3 + 0.4
    xb = base.expand(200, 1, 48, 48).clone()
    eb, yb = torch.zeros(200, 2, 48, 48), torch.zeros(200, dtype=torch.long)
    x0 = xb.clone()
    train.edge_chips(xb, eb, yb, g, 1.0, 1, [0], 0.0, *fill)
    return x0, xb, eb, yb
x0, xb, eb, yb = run("bite")
m = eb[:, 0] > 0
border = m[:, 0, :].any(1) | m[:, -1, :].any(1) | m[:, :, 0].any(1) | m[:, :, -1].any(1)
outside = all(torch.equal(xb[i, 0][~m[i]], x0[i, 0][~m[i]]) for i in range(200))
ring = (F.max_pool2d(m.float().unsqueeze(1), 9, 1, 4)[:, 0] > 0) & ~m
darker = sum(int(xb[i, 0][m[i]].mean() < x0[i, 0][ring[i]].mean()) for i in range(200))
print(int((yb == 1).sum()), int(m.flatten(1).any(1).sum()), int(border.sum()), int(outside), darker)
a, b = run(), run("texture")
print(int(all(torch.equal(u, v) for u, v in zip(a, b))))
def darker_than_ring(x0, xb, eb):
    m = eb[:, 0] > 0
    ring = (F.max_pool2d(m.float().unsqueeze(1), 9, 1, 4)[:, 0] > 0) & ~m
    return sum(int(xb[i, 0][m[i]].mean() < x0[i, 0][ring[i]].mean()) for i in range(200))
print(darker_than_ring(*a[:3]), darker_than_ring(*run("bright")[:3]))
`
	var chip, mask, border, outside, darker, same, texDark, brightDark int
	runTrainPy(t, prog, &chip, &mask, &border, &outside, &darker, &same, &texDark, &brightDark)
	if chip != 200 || mask != 200 || border != 200 || outside != 1 {
		t.Errorf("bite chips: %d labelled the chip class, %d with a mask, %d touching the border, outside untouched %d; want 200, 200, 200, 1",
			chip, mask, border, outside)
	}
	// 85 % are drawn at x0.45..1 of the ring's level; the grain and the
	// bright rim (on half, most of a small piece) lift some above it
	if darker < 110 || darker > 190 {
		t.Errorf("bite chips darker than the ring outside: %d of 200, want most (about 140) but not all", darker)
	}
	if same != 1 {
		t.Errorf("the default fill and \"texture\" drew different chips; recipes without --chip-fill would train other bytes")
	}
	if brightDark*2 > texDark {
		t.Errorf("chips darker than their ring: %d of 200 bright, %d texture; want bright at most half as many", brightDark, texDark)
	}

	wantUsage(t, "--chip-fill", "--edge-chips", "0.1", "--chip-fill", "paint")
}

// TestEdgeShade runs train.py's shaded edges (--edge-shade) on flat grey
// images: at probability 1 every image without a defect mask is darkened
// in a band along one side (the pixel at that side's middle darker, the
// centre untouched, nothing brighter) and keeps its label; an image whose
// defect mask runs along every side is left as it was (the band must not
// hide a defect); at probability 0 nothing changes. Values out of [0, 1]
// are an error before any training.
func TestEdgeShade(t *testing.T) {
	needTorch(t)
	prog := `
import sys, torch
sys.path.insert(0, sys.argv[1])
import train
xb = torch.full((100, 1, 40, 40), 0.6)
eb = torch.zeros(100, 2, 40, 40)
eb[50:, 0, :, :3] = 1
eb[50:, 0, :, -3:] = 1
eb[50:, 0, :3, :] = 1
eb[50:, 0, -3:, :] = 1
x0 = xb.clone()
train.edge_shade(xb, eb, torch.Generator().manual_seed(4), 1.0)
mids = torch.stack([xb[:, 0, 0, 20], xb[:, 0, -1, 20], xb[:, 0, 20, 0], xb[:, 0, 20, -1]], 1)
shaded = int((mids[:50].min(1).values < 0.6 - 1e-6).sum())
centre = int((xb[:, 0, 20, 20] == 0.6).all())
brighter = int((xb > x0 + 1e-6).any())
masked = int(torch.equal(xb[50:], x0[50:]))
x1 = x0.clone()
train.edge_shade(x1, None, torch.Generator().manual_seed(4), 0.0)
print(shaded, centre, brighter, masked, int(torch.equal(x1, x0)))
`
	var shaded, centre, brighter, masked, none int
	runTrainPy(t, prog, &shaded, &centre, &brighter, &masked, &none)
	if shaded != 50 || centre != 1 || brighter != 0 {
		t.Errorf("probability 1: %d of 50 images darker at a side's middle, centre untouched %d, any pixel brighter %d; want 50, 1, 0", shaded, centre, brighter)
	}
	if masked != 1 {
		t.Errorf("images whose defect mask runs along every side were shaded; the band would hide a defect under its label")
	}
	if none != 1 {
		t.Errorf("probability 0 changed images")
	}
	wantUsage(t, "--edge-shade must be in [0, 1]", "--edge-shade", "1.5")
}
