package loop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/linesight/linesight/camera"
	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/sync/fleet"
)

func TestPartID(t *testing.T) {
	for _, c := range []struct {
		seed  int64
		index uint64
	}{{7, 0}, {101, 123456}, {-3, 9}} {
		s, i, err := ParsePartID(PartID(c.seed, c.index))
		if err != nil || s != c.seed || i != c.index {
			t.Errorf("ParsePartID(PartID(%d, %d)) = %d, %d, %v", c.seed, c.index, s, i, err)
		}
	}
	for _, bad := range []string{"", "P-42", "syn-", "syn-7", "syn-7-", "syn--1", "syn-x-1", "syn-7-1x"} {
		if _, _, err := ParsePartID(bad); !errors.Is(err, ErrPartID) {
			t.Errorf("ParsePartID(%q): %v, want ErrPartID", bad, err)
		}
	}
}

// source is a pipeline.Source over a bare synthetic source.
type source struct{ s *camera.SyntheticSource }

func (s source) ID() string { return "cam1" }
func (s source) Next(ctx context.Context) (*camera.Frame, error) {
	return s.s.Read(ctx)
}
func (s source) Close() error { return s.s.Close() }

// The inspector's truth is the class the camera drew for that part.
func TestTagAndTruth(t *testing.T) {
	spec := camera.SyntheticSpec{Seed: 5, Size: 64, DefectRate: 0.5, ExposureMin: 0.8, ExposureMax: 1.2}
	src, err := camera.NewSyntheticSource("cam1", spec)
	if err != nil {
		t.Fatal(err)
	}
	tagged := Tag(source{src})
	defer tagged.Close()
	truth, err := NewTruth(spec)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		f, err := tagged.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if f.PartID != PartID(5, uint64(i)) {
			t.Errorf("frame %d: part ID %q", i, f.PartID)
		}
		if c, err := truth.Class(f.PartID); err != nil || c != f.Truth {
			t.Errorf("part %s: truth %q, %v; the camera drew %q", f.PartID, c, err, f.Truth)
		}
		f.Close()
	}
	if _, err := truth.Class(PartID(6, 1)); !errors.Is(err, ErrPartID) {
		t.Errorf("a part of another line: %v", err)
	}
}

func TestReadRecordsAndMerge(t *testing.T) {
	dir := t.TempDir()
	ds := filepath.Join(dir, "dataset")
	base := filepath.Join(dir, "base")
	for _, f := range []string{"free/a.jpg", "free/a_mask.png", "crack/b.jpg", "crack/b_mask.png"} {
		write(t, filepath.Join(base, f), "x")
	}
	for _, f := range []string{"free/i1.jpg", "crack/i2.jpg", "uneven/i3.jpg"} {
		write(t, filepath.Join(ds, f), "y")
	}
	// i3 was first labelled free, then corrected; the last line is torn.
	write(t, filepath.Join(ds, fleet.ManifestName), `{"id":"label-i1-l1","label_id":"i1-l1","item_id":"i1","class":"free","file":"free/i1.jpg","revision":1}
{"id":"label-i2-l1","label_id":"i2-l1","item_id":"i2","class":"crack","file":"crack/i2.jpg","revision":1}
{"id":"label-i3-l1","label_id":"i3-l1","item_id":"i3","class":"free","revision":1,"stale":true}
{"id":"label-i3-l2","label_id":"i3-l2","item_id":"i3","class":"uneven","file":"uneven/i3.jpg","revision":2}
{"id":"label-i4-l1","label_id":"i4-l1","item_id":"i4","cla`)
	recs, err := ReadRecords(ds)
	if err != nil || len(recs) != 4 {
		t.Fatalf("ReadRecords: %d records, %v", len(recs), err)
	}
	dst := filepath.Join(dir, "merged")
	ts, err := MergeTrainingSet(dst, base, ds, recs)
	if err != nil {
		t.Fatal(err)
	}
	if ts.Total() != 5 || ts.Base["free"] != 1 || ts.Base["crack"] != 1 || ts.Collected["uneven"] != 1 || ts.Collected["free"] != 1 {
		t.Errorf("merged %+v", ts)
	}
	for _, f := range []string{"free/a.jpg", "crack/b.jpg", "free/line_i1.jpg", "crack/line_i2.jpg", "uneven/line_i3.jpg"} {
		if b, err := os.ReadFile(filepath.Join(dst, f)); err != nil || len(b) != 1 {
			t.Errorf("%s: %q %v", f, b, err)
		}
	}
	if _, err := MergeTrainingSet(dst, base, ds, recs); err == nil {
		t.Error("merging into an existing folder should fail")
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Measure and SetThresholds on the built-in model (a copy): the thresholds
// calibrated on fresh parts go into the manifest and the engine loads it.
func TestMeasureBuiltin(t *testing.T) {
	rt, err := onnx.OpenRuntime(onnx.ProcessSearch(""))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	dir := t.TempDir()
	for _, f := range []string{"manifest.json", "model.onnx"} {
		b, err := os.ReadFile(filepath.Join("..", "builtin", "model", f))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, f), string(b))
	}
	spec := camera.DefaultSpec("x").Source.Synthetic
	val, test := spec, spec
	val.Seed, val.DefectRate, test.Seed = 303, 0.5, 404
	opt := MeasureOptions{Val: SyntheticSet{Spec: val, N: 200}, Test: SyntheticSet{Spec: test, N: 200}, TargetEscape: 0.01, TargetFalseReject: 0.02}
	me, err := Measure(context.Background(), rt, dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	if me.Val.EscapeRate > 0.01 || me.Test.AutomationRate < 0.9 || me.Test.AUROC < 0.95 || me.Test.Parts != 200 {
		t.Errorf("built-in model: val %+v, test %+v", me.Val, me.Test)
	}
	if err := SetThresholds(dir, me, opt, "fleet validation set"); err != nil {
		t.Fatal(err)
	}
	pkg, err := inference.LoadPackage(dir)
	if err != nil {
		t.Fatal(err)
	}
	th := pkg.Manifest.Thresholds
	if th.Pass != me.Val.Pass || th.Reject != me.Val.Reject || th.Calibration == nil || th.Calibration.Images != 200 || th.Calibration.Split != "fleet validation set" {
		t.Errorf("manifest thresholds %+v, calibration %+v; want %v / %v", th, th.Calibration, me.Val.Pass, me.Val.Reject)
	}
}
