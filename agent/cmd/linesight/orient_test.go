package main

import (
	"image"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/inference/eval"
	"gocv.io/x/gocv"
)

// TestTrainOrientSmoke trains a tiny network on a landscape input with
// --orient landscape, on a synthetic set whose parts are photographed
// lengthwise (64x40) or crosswise (40x64), masks alike, with the
// augmentations of the real recipe that draw on the image's sides (chipped
// edges, synthetic defects, transplants, crops). The package must say
// orient landscape, and the Go engine must score the validation parts as
// train.py did (turning the crosswise ones the same way): P(good) equal to
// 1e-5 on every part (7e-8 here), which a missing turn breaks (4e-3 when
// the engine was made to skip it).
func TestTrainOrientSmoke(t *testing.T) {
	st := trainShaped(t, image.Pt(64, 40), "--size", "48x32", "--orient", "landscape", "--transplant", "0.5")
	in := st.pkg.Manifest.Input
	if !slices.Equal(in.Shape, []int64{-1, 1, 32, 48}) || in.Orient != inference.OrientLandscape || st.pkg.Manifest.Training.Extra["orient"] == "" {
		t.Fatalf("manifest input %+v, training.extra %v: want shape [-1 1 32 48] and orient landscape", in, st.pkg.Manifest.Training.Extra)
	}
	r := evalJSON(t, st.out, filepath.Join(st.out, "heldout", "val"))
	worst := maxScoreGap(t, st.val, &r)
	if worst > 1e-5 {
		t.Errorf("P(good) of go and python differ by up to %.3g on the val parts (%d of them crosswise in the set)", worst, st.turned)
	}
	t.Logf("%d val parts: go and python P(good) within %.2g", len(r.Parts), worst)
}

// shaped is a tiny model trained by trainShaped.
type shaped struct {
	out    string             // the package
	pkg    *inference.Package // loaded
	val    valScores          // train.py's P(good) of the val parts (--save-val-scores)
	turned int                // photos of the set photographed crosswise
}

// trainShaped trains a tiny network (segnet, 4-flip TTA, 2 short epochs,
// fp32) on a synthetic set of parts photographed at size, every second one
// crosswise (reshapeSet), with the real recipe's augmentations that draw
// on the image's sides (chipped edges, synthetic defects, crops) and the
// flags extra, and loads the package.
func trainShaped(t *testing.T, size image.Point, extra ...string) shaped {
	t.Helper()
	needTorch(t)
	root := t.TempDir()
	data := synthSet(t, root, "6")
	turned := reshapeSet(t, data, size)
	out := filepath.Join(root, "model")
	scores := filepath.Join(root, "val-scores.json")
	args := append([]string{"--data", data, "--out", out, "--width", "4", "--epochs", "2", "--samples-per-epoch", "128",
		"--batch", "16", "--calib-images", "16", "--seed", "5", "--no-int8", "--arch", "segnet", "--tta",
		"--edge-chips", "0.5", "--synth-defects", "0.5", "--crop-prob", "0.5", "--save-val-scores", scores}, extra...)
	code, log := train(t, args...)
	if code != 0 {
		t.Fatalf("train.py: exit %d:\n%s", code, log)
	}
	pkg, err := inference.LoadPackage(out)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return shaped{out: out, pkg: pkg, val: readValScores(t, scores), turned: turned}
}

// reshapeSet resizes every photo of the data set at data (and its mask)
// to size, every second one (in name order) to size turned, and returns how
// many were turned.
func reshapeSet(t *testing.T, data string, size image.Point) (turned int) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(data, "*", "*.jpg"))
	slices.Sort(files)
	for i, f := range files {
		sz := size
		if i%2 == 1 {
			sz, turned = image.Pt(size.Y, size.X), turned+1
		}
		for _, p := range []string{f, strings.TrimSuffix(f, ".jpg") + "_mask.png"} {
			m := gocv.IMRead(p, gocv.IMReadUnchanged)
			if m.Empty() {
				if p == f {
					t.Fatalf("cannot read %s", p)
				}
				continue
			}
			r := gocv.NewMat()
			gocv.Resize(m, &r, sz, 0, 0, gocv.InterpolationLinear)
			ok := gocv.IMWrite(p, r)
			m.Close()
			r.Close()
			if !ok {
				t.Fatalf("cannot write %s", p)
			}
		}
	}
	return turned
}

// maxScoreGap is the largest difference between P(good) as train.py
// computed it (its --save-val-scores file, fp32 PyTorch) and as the Go
// engine scored the same parts (r, model eval of heldout/val).
func maxScoreGap(t *testing.T, vs valScores, r *eval.Report) float64 {
	t.Helper()
	py := map[string]float64{}
	for i, f := range vs.Files {
		for j, l := range vs.Labels {
			if slices.Contains(vs.Good, l) {
				py[strings.TrimSuffix(f, filepath.Ext(f))] += vs.Probs[i][j]
			}
		}
	}
	if len(r.Parts) == 0 || len(r.Parts) != len(py) {
		t.Fatalf("go scored %d val parts, python %d", len(r.Parts), len(py))
	}
	worst := 0.0
	for _, p := range r.Parts {
		want, ok := py[strings.TrimSuffix(p.File, filepath.Ext(p.File))]
		if !ok {
			t.Fatalf("go scored %s, which python's val scores lack", p.File)
		}
		worst = max(worst, math.Abs(p.GoodScore-want))
	}
	return worst
}
