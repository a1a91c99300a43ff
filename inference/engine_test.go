package inference

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/linesight/linesight/inference/onnx"
)

func modelDir(name string) string { return filepath.Join("testdata", "models", name) }

func openRuntime(t testing.TB) *onnx.Runtime {
	t.Helper()
	rt, err := onnx.OpenRuntime(onnx.ProcessSearch(""))
	if err != nil {
		t.Fatalf("open runtime (run scripts/setup.sh first): %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func openEngine(t testing.TB, rt *onnx.Runtime, dir string, cfg Config) *Engine {
	t.Helper()
	pkg, err := LoadPackage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Provider == "" {
		cfg.Provider = onnx.ProviderCPU
	}
	if cfg.IntraOpThreads == 0 {
		cfg.IntraOpThreads = 1
	}
	e, err := Open(rt, pkg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// solid makes a w x h BGR image of one gray level, with an optional
// square of another level.
func solid(t testing.TB, w, h int, level uint8, sq image.Rectangle, sqLevel uint8) gocv.Mat {
	t.Helper()
	pix := make([]uint8, w*h*3)
	for y := range h {
		for x := range w {
			v := level
			if image.Pt(x, y).In(sq) {
				v = sqLevel
			}
			pix[(y*w+x)*3], pix[(y*w+x)*3+1], pix[(y*w+x)*3+2] = v, v, v
		}
	}
	m, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8UC3, pix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestEngineClassifyMatchesReference runs a frame through the engine and,
// separately, the pure-Go preprocessing through a bare session and a
// softmax: the engine must give the same probabilities.
func TestEngineClassifyMatchesReference(t *testing.T) {
	rt := openRuntime(t)
	e := openEngine(t, rt, modelDir("classify"), Config{})
	mat, img := testImage(t, 120, 90, 3, 11)
	roi := image.Rect(10, 5, 110, 85)
	res, err := e.Run(context.Background(), Frame{Image: mat, ROI: roi})
	if err != nil {
		t.Fatal(err)
	}
	if res.Model != "tiny-cam" || res.Provider != "cpu" || res.Task != TaskClassify || res.Batch != 1 || len(res.Labels) != 6 {
		t.Errorf("result header %+v", res)
	}
	if res.Heatmap == nil || res.Heatmap.W != 16 || res.Heatmap.H != 16 || len(res.Heatmap.Data) != 256 {
		t.Fatalf("heatmap %+v", res.Heatmap)
	}
	if res.Timings.Run <= 0 || res.Timings.Total < res.Timings.Run {
		t.Errorf("timings %+v", res.Timings)
	}
	if res.Geometry.ROI != roi {
		t.Errorf("geometry %+v", res.Geometry)
	}

	pkg, _ := LoadPackage(modelDir("classify"))
	pre := NewPreprocess(pkg.Manifest.Input)
	s, err := rt.NewSession(onnx.SessionSpec{Model: pkg.Model, Input: "input", Shape: []int64{1, 3, 64, 64}, Outputs: []string{"logits", "cam"}},
		onnx.Options{Provider: onnx.ProviderCPU, IntraOpThreads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := pre.Reference(img, roi, s.Input()); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, 6)
	Softmax(want, s.Outputs()[0].Data)
	sum := float32(0)
	for i := range want {
		sum += res.Scores[i]
		if !near(res.Scores[i], want[i]) {
			t.Errorf("engine scores %v, reference path %v", res.Scores, want)
			break
		}
	}
	if !near(sum, 1) {
		t.Errorf("probabilities sum to %v", sum)
	}
	top := argmax(want)
	if res.Top != top || res.TopLabel != pkg.Manifest.Labels[top] || res.Good != (res.TopLabel == "free") {
		t.Errorf("top %d %s good %v; want %d", res.Top, res.TopLabel, res.Good, top)
	}
	// The heatmap is the top class's map: its mean is that class's logit.
	var m float32
	for _, v := range res.Heatmap.Data {
		m += v
	}
	if d := m/256 - s.Outputs()[0].Data[top]; d > 1e-4 || d < -1e-4 {
		t.Errorf("heatmap mean %v, top logit %v", m/256, s.Outputs()[0].Data[top])
	}
}

// TestInt8AgreesWithFP32 compares the QDQ int8 graph with the fp32 one on
// seeded images.
func TestInt8AgreesWithFP32(t *testing.T) {
	rt := openRuntime(t)
	fp := openEngine(t, rt, modelDir("classify"), Config{})
	q := openEngine(t, rt, modelDir("classify-int8"), Config{})
	agree, n := 0, 12
	worst := 0.0
	for i := range n {
		mat, _ := testImage(t, 96, 96, 3, uint64(100+i))
		a, err := fp.Run(context.Background(), Frame{Image: mat})
		if err != nil {
			t.Fatal(err)
		}
		b, err := q.Run(context.Background(), Frame{Image: mat})
		if err != nil {
			t.Fatal(err)
		}
		if a.Top == b.Top {
			agree++
		}
		for k := range a.Scores {
			worst = max(worst, math.Abs(float64(a.Scores[k]-b.Scores[k])))
		}
	}
	t.Logf("int8 vs fp32: top-1 agreement %d/%d, max probability difference %.4f", agree, n, worst)
	if worst > 0.05 {
		t.Errorf("int8 probabilities differ from fp32 by up to %.4f; want <= 0.05", worst)
	}
	if agree < n-1 {
		t.Errorf("top-1 agreement %d/%d", agree, n)
	}
}

func TestEngineAnomaly(t *testing.T) {
	rt := openRuntime(t)
	e := openEngine(t, rt, modelDir("anomaly"), Config{})
	flat := solid(t, 64, 64, 100, image.Rectangle{}, 0)
	res, err := e.Run(context.Background(), Frame{Image: flat})
	if err != nil {
		t.Fatal(err)
	}
	if res.Anomalous || !res.Good || res.AnomalyScore > 0.01 || res.Heatmap == nil || res.Mask == nil {
		t.Fatalf("flat tile: anomalous %v score %v map %v", res.Anomalous, res.AnomalyScore, res.Heatmap != nil)
	}
	spot := solid(t, 64, 64, 60, image.Rect(40, 10, 44, 14), 250)
	res, err = e.Run(context.Background(), Frame{Image: spot})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Anomalous || res.Good || res.TopLabel != "anomalous" || res.AnomalyScore < 0.5 {
		t.Fatalf("bright spot: anomalous %v score %v", res.Anomalous, res.AnomalyScore)
	}
	// The map peaks on the spot, and the mask covers it.
	hm := res.Heatmap
	best := 0
	for i, v := range hm.Data {
		if v > hm.Data[best] {
			best = i
		}
	}
	if x, y := best%hm.W, best/hm.W; x < 38 || x > 46 || y < 8 || y > 16 {
		t.Errorf("anomaly map peaks at %d,%d; the spot is at 40..44, 10..14", x, y)
	}
	if res.Mask.Data[12*64+42] != 1 || res.Mask.Data[50*64+10] != 0 {
		t.Errorf("mask does not mark the spot alone")
	}
}

func TestEngineDetect(t *testing.T) {
	rt := openRuntime(t)
	e := openEngine(t, rt, modelDir("detect"), Config{})
	// A 128x64 frame, letterboxed into 64x64 (scale 0.5, 16 px bands top
	// and bottom). A white 32x32 square at 64..96, 16..48 is one 16x16
	// block = 2x2 grid cells in the model.
	frame := solid(t, 128, 64, 90, image.Rect(64, 16, 96, 48), 255)
	res, err := e.Run(context.Background(), Frame{Image: frame})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Detections) == 0 {
		t.Fatal("no detections")
	}
	if res.Good || res.TopLabel != "bright" {
		t.Errorf("good %v top %s", res.Good, res.TopLabel)
	}
	for _, d := range res.Detections {
		cx, cy := (d.X0+d.X1)/2, (d.Y0+d.Y1)/2
		if d.Label != "bright" || cx < 64 || cx > 96 || cy < 16 || cy > 48 {
			t.Errorf("detection %+v is not on the square (64..96, 16..48)", d)
		}
	}
	// Four cells fire; 16x16 boxes on an 8 px grid overlap diagonally by
	// IoU 1/7 and side by side by 1/3, both under 0.45: NMS keeps 4.
	if len(res.Detections) != 4 {
		t.Errorf("%d detections, want the 4 cells of the square: %+v", len(res.Detections), res.Detections)
	}
	// The letterbox bands (pad 114, mid-gray) trigger neither class.
	plain := solid(t, 128, 64, 128, image.Rectangle{}, 0)
	if res, err = e.Run(context.Background(), Frame{Image: plain}); err != nil || len(res.Detections) != 0 || !res.Good {
		t.Errorf("plain frame: %v detections, err %v", len(res.Detections), err)
	}
}

// TestEngineKeepsServing feeds bad frames and bad outputs between good ones.
func TestEngineKeepsServing(t *testing.T) {
	rt := openRuntime(t)
	e := openEngine(t, rt, modelDir("nan"), Config{})
	dark := solid(t, 32, 32, 20, image.Rectangle{}, 0)
	bright := solid(t, 32, 32, 220, image.Rectangle{}, 0)
	empty := gocv.NewMat()
	defer empty.Close()
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	steps := []struct {
		name string
		ctx  context.Context
		f    Frame
		want error
	}{
		{"bright", context.Background(), Frame{Image: bright}, nil},
		{"dark gives NaN", context.Background(), Frame{Image: dark}, ErrNonFinite},
		{"bright again", context.Background(), Frame{Image: bright}, nil},
		{"empty image", context.Background(), Frame{Image: empty}, ErrBadInput},
		{"zero Mat", context.Background(), Frame{}, ErrBadInput},
		{"roi outside", context.Background(), Frame{Image: bright, ROI: image.Rect(20, 20, 40, 40)}, ErrBadInput},
		{"deadline passed", expired, Frame{Image: bright}, ErrDeadline},
		{"bright at the end", context.Background(), Frame{Image: bright}, nil},
	}
	for _, s := range steps {
		res, err := e.Run(s.ctx, s.f)
		if s.want == nil {
			if err != nil {
				t.Errorf("%s: %v", s.name, err)
			} else if res.TopLabel != "good" {
				t.Errorf("%s: top %s", s.name, res.TopLabel)
			}
			continue
		}
		if !errors.Is(err, s.want) {
			t.Errorf("%s: err = %v, want %v", s.name, err, s.want)
		}
	}
}

func copyPackage(t *testing.T, src string, edit func(m *Manifest, model []byte) []byte) string {
	t.Helper()
	pkg, err := LoadPackage(src)
	if err != nil {
		t.Fatal(err)
	}
	m := *pkg.Manifest
	model := edit(&m, pkg.Model)
	dir := t.TempDir()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ModelFile), model, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOpenRejectsBadModels(t *testing.T) {
	rt := openRuntime(t)
	corrupt, err := os.ReadFile(filepath.Join("testdata", "models", "corrupt.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(m *Manifest, model []byte) []byte
		want error
	}{
		{"input size contradicts the graph", func(m *Manifest, b []byte) []byte { m.Input.Shape = []int64{-1, 3, 32, 32}; return b }, ErrShape},
		{"gray input for an rgb graph", func(m *Manifest, b []byte) []byte {
			m.Input.Shape, m.Input.Channels, m.Input.Mean, m.Input.Std = []int64{-1, 1, 64, 64}, ChannelsGray, nil, nil
			return b
		}, ErrShape},
		{"wrong input name", func(m *Manifest, b []byte) []byte { m.Input.Name = "images"; return b }, ErrShape},
		{"missing output", func(m *Manifest, b []byte) []byte { m.Outputs[1].Name = "heatmap"; return b }, ErrShape},
		{"labels contradict the graph", func(m *Manifest, b []byte) []byte { m.Labels = m.Labels[:5]; m.Reference = nil; return b }, ErrShape},
		{"corrupt model with a matching sha256", func(m *Manifest, _ []byte) []byte { m.Model.SHA256 = SHA256(corrupt); return corrupt }, ErrInvalidModel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkg, err := LoadPackage(copyPackage(t, modelDir("classify"), tt.edit))
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			e, err := Open(rt, pkg, Config{Options: onnx.Options{Provider: onnx.ProviderCPU}})
			if err == nil {
				e.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := LoadBare(rt, filepath.Join("testdata", "models", "corrupt.onnx"), BareOptions{}); !errors.Is(err, ErrInvalidModel) {
		t.Errorf("bare corrupt.onnx: %v", err)
	}
	if _, err := Load(rt, filepath.Join("testdata", "nope"), BareOptions{}); !errors.Is(err, ErrNoModel) {
		t.Errorf("missing path: %v", err)
	}
}

func TestEngineProviderFallback(t *testing.T) {
	rt := openRuntime(t)
	pkg, err := LoadPackage(modelDir("classify"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(rt, pkg, Config{Options: onnx.Options{Provider: onnx.ProviderCUDA}}); !errors.Is(err, ErrProviderUnavailable) {
		t.Skipf("cuda without fallback: %v (a GPU here?)", err)
	}
	e, err := Open(rt, pkg, Config{Options: onnx.Options{Provider: onnx.ProviderCUDA, Fallback: true, Sessions: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Provider() != onnx.ProviderCPU {
		t.Errorf("provider %s", e.Provider())
	}
	mat, _ := testImage(t, 64, 64, 3, 1)
	if res, err := e.Run(context.Background(), Frame{Image: mat}); err != nil || res.Provider != "cpu" {
		t.Errorf("run: %v provider %q", err, res.Provider)
	}
}

func TestLoadBare(t *testing.T) {
	rt := openRuntime(t)
	p, err := Load(rt, filepath.Join(modelDir("classify"), "model.onnx"), BareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := p.Manifest
	if m.Task != TaskClassify || len(m.Labels) != 6 || m.Labels[0] != "class_0" || m.GoodLabels[0] != "class_0" || len(p.Assumed) < 4 {
		t.Errorf("bare classify: task %s labels %v good %v assumed %q", m.Task, m.Labels, m.GoodLabels, p.Assumed)
	}
	if o, ok := m.OutputByRole(RoleHeatmap); !ok || o.Name != "cam" {
		t.Errorf("second output should be taken as the heatmap: %+v", m.Outputs)
	}
	e, err := Open(rt, p, Config{Options: onnx.Options{Provider: onnx.ProviderCPU}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	mat, _ := testImage(t, 64, 64, 3, 2)
	if _, err := e.Run(context.Background(), Frame{Image: mat}); err != nil {
		t.Fatal(err)
	}

	p, err = LoadBare(rt, filepath.Join(modelDir("anomaly"), "model.onnx"), BareOptions{Labels: nil})
	if err != nil {
		t.Fatal(err)
	}
	if p.Manifest.Task != TaskAnomaly || len(p.Manifest.Outputs) != 4 {
		t.Errorf("bare anomaly: %+v", p.Manifest)
	}
	p, err = LoadBare(rt, filepath.Join(modelDir("detect"), "model.onnx"), BareOptions{Labels: []string{"bright", "dark"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Manifest.Task != TaskDetect || p.Manifest.Input.Resize != ResizeLetterbox || p.Manifest.Input.Name != "images" {
		t.Errorf("bare detect: %+v", p.Manifest)
	}
	if _, err := LoadBare(rt, filepath.Join(modelDir("classify"), "model.onnx"), BareOptions{Labels: []string{"a", "b"}}); !errors.Is(err, ErrShape) {
		t.Errorf("2 labels for a 6-class graph: %v", err)
	}
}

// TestEngineConcurrentBatched runs many cameras at once through a batched
// pool: every frame must get exactly the result it gets alone.
func TestEngineConcurrentBatched(t *testing.T) {
	rt := openRuntime(t)
	single := openEngine(t, rt, modelDir("classify"), Config{})
	batched := openEngine(t, rt, modelDir("classify"), Config{Batch: 4, BatchWait: 5 * time.Millisecond, Options: onnx.Options{Sessions: 2}})
	if batched.Batch() != 4 {
		t.Fatalf("batch %d", batched.Batch())
	}
	const cams, frames = 8, 6
	mats := make([]gocv.Mat, cams)
	want := make([][]float32, cams)
	for c := range cams {
		mats[c], _ = testImage(t, 80, 60, 3, uint64(c))
		res, err := single.Run(context.Background(), Frame{Image: mats[c]})
		if err != nil {
			t.Fatal(err)
		}
		want[c] = res.Scores
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	maxBatch := 0
	errs := make(chan error, cams*frames)
	for c := range cams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range frames {
				res, err := batched.Run(context.Background(), Frame{Image: mats[c]})
				if err != nil {
					errs <- err
					return
				}
				for k := range res.Scores {
					if !near(res.Scores[k], want[c][k]) {
						errs <- fmt.Errorf("camera %d: batched scores %v, alone %v", c, res.Scores, want[c])
						return
					}
				}
				mu.Lock()
				maxBatch = max(maxBatch, res.Batch)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("largest batch seen: %d", maxBatch)
}

// TestHotSwap swaps models while cameras run: no frame fails, and frames
// after the swap report the new version.
func TestHotSwap(t *testing.T) {
	rt := openRuntime(t)
	e := openEngine(t, rt, modelDir("classify"), Config{Options: onnx.Options{Sessions: 2}})
	int8pkg, err := LoadPackage(modelDir("classify-int8"))
	if err != nil {
		t.Fatal(err)
	}
	fp32pkg, err := LoadPackage(modelDir("classify"))
	if err != nil {
		t.Fatal(err)
	}
	mat, _ := testImage(t, 64, 64, 3, 5)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := map[string]int{}
	errs := make(chan error, 100)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := e.Run(context.Background(), Frame{Image: mat})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				count[res.Version]++
				mu.Unlock()
			}
		}()
	}
	waitFor := func(version string) {
		for range 2000 {
			mu.Lock()
			n := count[version]
			mu.Unlock()
			if n > 5 {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Errorf("no frames ran on %s", version)
	}
	waitFor("0.1.0-fp32")
	if err := e.Swap(int8pkg); err != nil {
		t.Fatal(err)
	}
	if v := e.Manifest().Version; v != "0.1.0-int8" {
		t.Errorf("after swap: %s", v)
	}
	waitFor("0.1.0-int8")
	// A package that fails to open leaves the running model in place.
	bad := *fp32pkg
	bad.Model = []byte("garbage")
	if err := e.Swap(&bad); !errors.Is(err, ErrInvalidModel) {
		t.Errorf("swap to garbage: %v", err)
	}
	if err := e.Swap(fp32pkg); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	before := count["0.1.0-fp32"]
	mu.Unlock()
	for range 2000 {
		mu.Lock()
		n := count["0.1.0-fp32"]
		mu.Unlock()
		if n > before+5 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a frame failed during the swaps: %v", err)
	}
	t.Logf("frames per version: %v", count)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(context.Background(), Frame{Image: mat}); !errors.Is(err, ErrClosed) {
		t.Errorf("run after close: %v", err)
	}
	if err := e.Swap(fp32pkg); !errors.Is(err, ErrClosed) {
		t.Errorf("swap after close: %v", err)
	}
}

// TestEngineMeasuresInput: a model whose reference is of its input gets
// each frame's statistics from the preprocessing (the ROI resized to the
// input, then gray), and a model whose reference is of the frame does not.
func TestEngineMeasuresInput(t *testing.T) {
	rt := openRuntime(t)
	onInput := copyPackage(t, modelDir("classify"), func(m *Manifest, model []byte) []byte {
		ref := *m.Reference
		ref.Measured = MeasuredInput
		m.Reference = &ref
		return model
	})
	mat, _ := testImage(t, 120, 90, 3, 11)
	roi := image.Rect(10, 5, 110, 85)
	e := openEngine(t, rt, onInput, Config{})
	res, err := e.Run(context.Background(), Frame{Image: mat, ROI: roi})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Measured {
		t.Fatal("reference measured on the input, but the result carries no statistics")
	}
	// The same image by hand: ROI, resize to the input, gray, Measurer.
	w, h, _ := e.Manifest().InputSize()
	view := mat.Region(roi)
	resized, gray := gocv.NewMat(), gocv.NewMat()
	gocv.Resize(view, &resized, image.Pt(w, h), 0, 0, gocv.InterpolationLinear)
	gocv.CvtColor(resized, &gray, gocv.ColorBGRToGray)
	meas := NewMeasurer()
	want, err := meas.Measure(gray, image.Rectangle{})
	for _, m := range []*gocv.Mat{&view, &resized, &gray} {
		m.Close()
	}
	meas.Close()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.Stats.Brightness-want.Brightness) > 1e-9 || math.Abs(res.Stats.Contrast-want.Contrast) > 1e-9 ||
		math.Abs(res.Stats.Sharpness-want.Sharpness) > 1e-9 {
		t.Errorf("engine statistics %+v, want %+v", res.Stats, want)
	}
	if want.Brightness <= 0 || want.Contrast <= 0 {
		t.Errorf("the test image should have some brightness and contrast: %+v", want)
	}

	legacy := openEngine(t, rt, modelDir("classify"), Config{})
	res, err = legacy.Run(context.Background(), Frame{Image: mat, ROI: roi})
	if err != nil {
		t.Fatal(err)
	}
	if res.Measured {
		t.Errorf("reference of the whole frame, but the engine measured the input: %+v", res.Stats)
	}
}
