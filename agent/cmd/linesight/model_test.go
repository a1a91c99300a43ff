package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/internal/cli"
)

const testModels = "../../../inference/testdata/models"

func TestModelInspect(t *testing.T) {
	code, out, errs := runMain(context.Background(), "", "model", "inspect", filepath.Join(testModels, "classify"))
	if code != 0 {
		t.Fatalf("inspect: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"tiny-cam", "matches the manifest", "labels        blowhole, break, crack, fray, free, uneven", "good labels   free", "output        cam: heatmap"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	code, out, errs = runMain(context.Background(), "", "model", "inspect", "-json", filepath.Join(testModels, "classify-int8"))
	var m map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &m) != nil || m["task"] != "classify" {
		t.Errorf("inspect -json: exit %d, not a manifest:\n%s\n%s", code, out, errs)
	}
}

func TestModelInspectBadInput(t *testing.T) {
	for _, path := range []string{filepath.Join(testModels, "corrupt.onnx"), filepath.Join(t.TempDir(), "missing")} {
		code, _, errs := runMain(context.Background(), "", "model", "inspect", path)
		if code != cli.ExitUsage || !strings.Contains(errs, filepath.Base(path)) {
			t.Errorf("inspect %s: exit %d, want 2 naming the file:\n%s", path, code, errs)
		}
	}
	if code, _, errs := runMain(context.Background(), "", "model", "frobnicate"); code != cli.ExitUsage || !strings.Contains(errs, "inspect, bench, eval") {
		t.Errorf("unknown subcommand: exit %d\n%s", code, errs)
	}
}

func TestModelBench(t *testing.T) {
	code, out, errs := runMain(context.Background(), "", "model", "bench", "-n", "5", "-json", filepath.Join(testModels, "classify"), filepath.Join(testModels, "classify-int8"))
	if code != 0 {
		t.Fatalf("bench: exit %d\n%s", code, errs)
	}
	var reps []struct {
		Model     string `json:"model"`
		Precision string `json:"precision"`
	}
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		t.Fatalf("bench -json is not a list of reports: %v\n%s", err, out)
	}
	if len(reps) != 2 || reps[0].Precision == reps[1].Precision {
		t.Errorf("want fp32 and int8 reports side by side, got %+v", reps)
	}
}

// TestModelBenchFrame benchmarks a model with input windows and corner
// views on an elongated photo (300x100: the whole, four windows and four
// corners): the end-to-end stage scores the photo's views, and the report
// says how many; a file that is no image is a usage error.
func TestModelBenchFrame(t *testing.T) {
	pkg := editedCopy(t, filepath.Join(testModels, "classify"), func(m *inference.Manifest) {
		m.Input.Windows = &inference.Windows{Overlap: 0.25, MinAspect: 1.3, Corners: 0.5}
	})
	dir := t.TempDir()
	photo := filepath.Join(dir, "part.png")
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 120, 150, 0), 100, 300, gocv.MatTypeCV8UC3)
	ok := gocv.IMWrite(photo, img)
	img.Close()
	if !ok {
		t.Fatal("cannot write the photo")
	}
	code, out, errs := runMain(context.Background(), "", "model", "bench", "-n", "3", "-frame", photo, pkg)
	if code != 0 {
		t.Fatalf("bench: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"300x100 frame part.png", "end-to-end (9 views)"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = runMain(context.Background(), "", "model", "inspect", pkg)
	for _, want := range []string{"a ROI at least 1.3:1 is also scored in squares", "every ROI also in its four corners, squares of 0.5 of its short side"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect does not describe the windows (%q):\n%s", want, out)
		}
	}
	notImage := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notImage, []byte("not a photo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runMain(context.Background(), "", "model", "bench", "-frame", notImage, pkg); code != cli.ExitUsage || !strings.Contains(errs, "notes.txt: not an image") {
		t.Errorf("bench -frame notes.txt: exit %d, want 2 naming the file:\n%s", code, errs)
	}
}
