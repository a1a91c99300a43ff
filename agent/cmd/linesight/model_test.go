package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

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
