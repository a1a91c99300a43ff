package main

import (
	"context"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linesight/linesight/camera"
	"github.com/linesight/linesight/internal/cli"
)

func TestSynthWritesDataset(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "syn")
	code, out, errOut := runMain(context.Background(), "", "synth", "--out", dir, "--n", "30", "--seed", "3", "--size", "64", "--defect-rate", "0.8")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "wrote 30 images") {
		t.Errorf("summary: %q", out)
	}
	gen, _ := camera.NewGenerator(camera.SyntheticSpec{Seed: 3, Size: 64, DefectRate: 0.8, ExposureMin: 0.8, ExposureMax: 1.2})
	images := 0
	for _, class := range camera.Classes {
		files, _ := filepath.Glob(filepath.Join(dir, class, "*.jpg"))
		for _, f := range files {
			images++
			img, err := decode(f, jpeg.Decode)
			if err != nil {
				t.Fatal(err)
			}
			mask, err := decode(strings.TrimSuffix(f, ".jpg")+"_mask.png", png.Decode)
			if err != nil {
				t.Fatalf("image %s has no mask: %v", f, err)
			}
			if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 64 || mask.Bounds() != b {
				t.Errorf("%s: image %v mask %v, want 64x64 both", f, b, mask.Bounds())
			}
			// the folder is the generator's class for that index
			var idx uint64
			name := filepath.Base(f)
			if _, err := fmt.Sscanf(name, "syn_s3_%06d.jpg", &idx); err != nil {
				t.Fatalf("name %s: %v", name, err)
			}
			if got := gen.ClassOf(idx); got != class {
				t.Errorf("%s is in %s but the generator drew %s", name, class, got)
			}
		}
	}
	if images != 30 {
		t.Errorf("%d images written, want 30", images)
	}
}

func TestSynthBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"synth", "--n", "5"},
		{"synth", "--out", dir, "--n", "0"},
		{"synth", "--out", dir, "--n", "5", "--size", "8"},
		{"synth", "--out", dir, "--n", "5", "--defect-rate", "2"},
		{"synth", "--out", dir, "--n", "5", "--exposure-min", "2", "--exposure-max", "1"},
		{"synth", "--out", dir, "--n", "five"},
		{"synth", "--out", dir, "--n", "5", "extra"},
	} {
		code, _, errOut := runMain(context.Background(), "", args...)
		if code != cli.ExitUsage || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 with a message", args, code, errOut)
		}
	}
}

func decode[T any](path string, dec func(io.Reader) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	return dec(f)
}
