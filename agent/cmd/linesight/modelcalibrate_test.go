package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linesight/linesight/inference"
)

// builtinCopy copies the committed built-in package (fp32, or int8 with
// sub "int8") into a new folder, to be rewritten there.
func builtinCopy(t *testing.T, sub string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pkg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{inference.ManifestFile, inference.ModelFile} {
		copyFile(t, filepath.Join("..", "..", "builtin", "model", sub, f), filepath.Join(dir, f))
	}
	return dir
}

func calibrateJSON(t *testing.T, args ...string) calibrateReport {
	t.Helper()
	code, stdout, errs := runMain(context.Background(), "", append([]string{"model", "calibrate", "--quiet", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("model calibrate %v: exit %d: %s", args, code, errs)
	}
	var r calibrateReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("calibrate JSON: %v\n%s", err, stdout)
	}
	return r
}

// TestModelCalibrate sets the built-in int8 model's thresholds from the Go
// engine's own scores on a fresh synthetic validation folder: what eval
// then measures there meets the targets, the manifest says how the
// thresholds were made and still loads, a dry run and bad input change
// nothing.
func TestModelCalibrate(t *testing.T) {
	pkg := builtinCopy(t, "int8")
	val := synthSet(t, t.TempDir(), "41")
	orig, err := os.ReadFile(filepath.Join(pkg, inference.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		if b, _ := os.ReadFile(filepath.Join(pkg, inference.ManifestFile)); !bytes.Equal(b, orig) {
			t.Errorf("%s rewrote the manifest", what)
		}
	}

	dry := calibrateJSON(t, "--model", pkg, "--data", val, "--dry-run", "--target-escape", "0.05", "--target-false-reject", "0.05")
	unchanged("--dry-run")
	// The text report says how far these parts vouch for the escape target:
	// 45 defective parts cannot show 1 % (it takes 299 with none passed).
	code, stdout, errs := runMain(context.Background(), "", "model", "calibrate", "--quiet", "--model", pkg, "--data", val, "--dry-run")
	unchanged("--dry-run (text)")
	if code != 0 || !strings.Contains(stdout, "bounds the escape rate under") || !strings.Contains(stdout, "299 defective images, none passed") {
		t.Errorf("calibrate text report: exit %d, stderr %q; it does not bound the escape rate:\n%s", code, errs, stdout)
	}
	if dry.Written || dry.TargetEscape != 0.05 || dry.Before.Pass == dry.After.Pass && dry.Before.Reject == dry.After.Reject {
		t.Errorf("dry run: %+v (90 fresh parts at other targets should move a threshold)", dry)
	}

	r := calibrateJSON(t, "--model", pkg, "--data", val, "--target-escape", "0.05", "--target-false-reject", "0.05", "--split", "fresh synthetic val")
	if !r.Written || r.After != dry.After || r.Provider == "" {
		t.Errorf("calibration %+v differs from its dry run %+v", r.After, dry.After)
	}
	a := r.After.Automation
	if a.Parts != 90 || a.Good+a.Defective != 90 || a.Defective == 0 || a.Good == 0 {
		t.Fatalf("parts: %+v", a)
	}
	// The calibration rule on the engine's own scores: at most
	// floor(target * n) misses on this folder, thresholds above 0.5.
	if a.Escapes > int(0.05*float64(a.Defective)) || a.FalseRejects > int(0.05*float64(a.Good)) ||
		!(r.After.Pass > 0.5 && r.After.Reject > 0.5) {
		t.Errorf("after calibration: %+v at pass %v reject %v", a, r.After.Pass, r.After.Reject)
	}
	// The part that sets each threshold: the nearest one kept on the safe side.
	e0 := evalJSON(t, pkg, val)
	var hiDef, loGood float64 = -1, 2
	for _, p := range e0.Parts {
		if p.Label != "free" && p.GoodScore < r.After.Pass {
			hiDef = max(hiDef, p.GoodScore)
		}
		if p.Label == "free" && 1-p.GoodScore < r.After.Reject {
			loGood = min(loGood, p.GoodScore)
		}
	}
	if r.PassSetBy == nil || r.PassSetBy.GoodScore != hiDef || strings.HasPrefix(r.PassSetBy.File, "free/") ||
		r.RejectSetBy == nil || r.RejectSetBy.GoodScore != loGood || !strings.HasPrefix(r.RejectSetBy.File, "free/") {
		t.Errorf("set by %+v / %+v; want the defect at %v and the good part at %v", r.PassSetBy, r.RejectSetBy, hiDef, loGood)
	}
	loaded, err := inference.LoadPackage(pkg)
	if err != nil {
		t.Fatalf("calibrated package does not load: %v", err)
	}
	m := loaded.Manifest
	c := m.Thresholds.Calibration
	if m.Thresholds.Pass != r.After.Pass || m.Thresholds.Reject != r.After.Reject || c == nil || c.Images != 90 ||
		c.TargetEscape != 0.05 || !strings.Contains(c.Split, "fresh synthetic val") || !strings.Contains(c.Split, "Go engine") {
		t.Fatalf("manifest thresholds %+v, calibration %+v", m.Thresholds, c)
	}
	if m.Metrics == nil || m.Metrics.Images != 90 || m.Metrics.AutomationRate != a.AutomationRate || m.Metrics.Split != c.Split {
		t.Errorf("manifest metrics %+v", m.Metrics)
	}
	if m.Reference == nil || m.Training == nil || m.Model.SHA256 == "" {
		t.Errorf("fields other than thresholds and metrics were lost: %+v", m)
	}
	// model eval at the manifest's new thresholds measures the same.
	e := evalJSON(t, pkg, val)
	if e.Automation != a {
		t.Errorf("eval after calibration %+v, calibrate said %+v", e.Automation, a)
	}
	// Again, with the targets now in the manifest: the same thresholds.
	if again := calibrateJSON(t, "--model", pkg, "--data", val, "--dry-run"); again.TargetEscape != 0.05 ||
		math.Abs(again.After.Pass-r.After.Pass) > 0 || again.Before.Pass != r.After.Pass {
		t.Errorf("second calibration %+v, first %+v", again, r)
	}

	// A package whose thresholds the policy refuses (at or under 0.5)
	// is one to calibrate, not an error.
	if err := inference.SetManifestFields(pkg, map[string]any{"thresholds": inference.Thresholds{Pass: 0.3, Reject: 0.4}}); err != nil {
		t.Fatal(err)
	}
	if low := calibrateJSON(t, "--model", pkg, "--data", val, "--target-escape", "0.05", "--target-false-reject", "0.05"); low.Before.Pass != 0.3 || low.After != r.After {
		t.Errorf("calibrating from pass 0.3 / reject 0.4: %+v, want after %+v", low, r.After)
	}

	// Bad input: a clear usage error, the manifest as it was.
	orig, _ = os.ReadFile(filepath.Join(pkg, inference.ManifestFile))
	onlyGood := filepath.Join(t.TempDir(), "good")
	if err := os.MkdirAll(filepath.Join(onlyGood, "free"), 0o755); err != nil {
		t.Fatal(err)
	}
	src, _ := filepath.Glob(filepath.Join(val, "free", "*[0-9].jpg"))
	copyFile(t, src[0], filepath.Join(onlyGood, "free", "a.jpg"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", onlyGood}, "needs both"},
		{[]string{"--data", val, "--target-escape", "1.5"}, "--target-escape"},
		{[]string{"--data", val, "--target-false-reject", "NaN"}, "--target-false-reject"},
		{[]string{"--data", filepath.Join(val, "nope")}, "nope"},
		{[]string{}, "--data DIR"},
	} {
		code, _, errs := runMain(context.Background(), "", append([]string{"model", "calibrate", "--quiet", "--model", pkg}, c.args...)...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("calibrate %v: exit %d, stderr %q; want exit 2 naming %q", c.args, code, errs, c.want)
		}
		unchanged("calibrate " + strings.Join(c.args, " "))
	}
}
