package builtin

import (
	"context"
	"io/fs"
	"slices"
	"testing"

	"gocv.io/x/gocv"

	"github.com/linesight/linesight/camera"
	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/inference/eval"
	"github.com/linesight/linesight/inference/onnx"
)

func TestEmbeddedPackagesLoad(t *testing.T) {
	total := 0
	for _, p := range []string{FP32, Int8} {
		pkg, err := Package(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		m := pkg.Manifest
		if m.Task != inference.TaskClassify || m.Model.Precision != p || !slices.Equal(m.GoodLabels, []string{"free"}) {
			t.Errorf("%s: task %s, precision %s, good %v", p, m.Task, m.Model.Precision, m.GoodLabels)
		}
		for _, l := range camera.Classes {
			if !slices.Contains(m.Labels, l) {
				t.Errorf("%s: label %s of the synthetic generator is missing from %v", p, l, m.Labels)
			}
		}
		if !(m.Thresholds.Pass > 0.5 && m.Thresholds.Reject > 0.5) || m.Thresholds.Calibration == nil || m.Reference == nil || m.Training == nil {
			t.Errorf("%s: uncalibrated or incomplete manifest", p)
		}
		if _, ok := m.OutputByRole(inference.RoleHeatmap); !ok {
			t.Errorf("%s: no heatmap output", p)
		}
		total += len(pkg.Model)
	}
	for _, f := range []fs.FS{FS(), FSInt8()} {
		b, err := fs.ReadFile(f, inference.ManifestFile)
		if err != nil {
			t.Fatal(err)
		}
		total += len(b)
	}
	if total > 2<<20 {
		t.Errorf("the built-in packages take %d bytes; the budget is 2 MiB", total)
	}
	if _, err := Package("fp16"); err == nil {
		t.Error("an unknown precision is an error")
	}
}

// TestBuiltinModelOnFreshTiles runs both built-in models through the engine
// on synthetic tiles of a seed they were not trained on (101 was): they
// must classify most of them and produce a class-activation heatmap.
func TestBuiltinModelOnFreshTiles(t *testing.T) {
	rt, err := onnx.OpenRuntime(onnx.ProcessSearch(""))
	if err != nil {
		t.Fatalf("open runtime (run scripts/setup.sh first): %v", err)
	}
	defer rt.Close()
	gen, err := camera.NewGenerator(camera.SyntheticSpec{Seed: 777, Size: 256, DefectRate: 0.5, ExposureMin: 0.8, ExposureMax: 1.2})
	if err != nil {
		t.Fatal(err)
	}
	tile := gen.NewTile()
	for _, p := range []string{FP32, Int8} {
		pkg, err := Package(p)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := eval.NewEngineScorer(rt, pkg, inference.Config{Options: onnx.Options{Provider: onnx.ProviderCPU}})
		if err != nil {
			t.Fatal(err)
		}
		e, err := inference.Open(rt, pkg, inference.Config{Options: onnx.Options{Provider: onnx.ProviderCPU}})
		if err != nil {
			t.Fatal(err)
		}
		m := pkg.Manifest
		correct, n := 0, 120
		for i := range n {
			gen.Generate(uint64(i), tile)
			img, err := gocv.NewMatFromBytes(tile.H, tile.W, gocv.MatTypeCV8UC1, tile.Pix)
			if err != nil {
				t.Fatal(err)
			}
			sc0, err := sc.ScoreMat(context.Background(), img)
			if err != nil {
				t.Fatal(err)
			}
			if m.Labels[eval.Argmax(sc0)] == tile.Class {
				correct++
			}
			if i == 0 {
				res, err := e.Run(context.Background(), inference.Frame{Image: img})
				if err != nil {
					t.Fatal(err)
				}
				w, h, _ := m.InputSize()
				if res.Heatmap == nil || res.Heatmap.W != w/16 || res.Heatmap.H != h/16 {
					t.Errorf("%s: heatmap %+v, want %dx%d", p, res.Heatmap, w/16, h/16)
				}
			}
			img.Close()
		}
		e.Close()
		sc.Close()
		acc := float64(correct) / float64(n)
		t.Logf("%s: %d of %d fresh tiles classified correctly", p, correct, n)
		if acc < 0.8 {
			t.Errorf("%s: accuracy %.3f on fresh synthetic tiles; the built-in model should reach 0.8", p, acc)
		}
	}
}
