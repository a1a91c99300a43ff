package inference

import (
	"context"
	"errors"
	"image"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linesight/linesight/inference/onnx"
)

func TestWindowsOf(t *testing.T) {
	w := &Windows{Overlap: 0.25, MinAspect: 1.3}
	sq := func(x, y, s int) image.Rectangle { return image.Rect(x, y, x+s, y+s) }
	for _, tc := range []struct {
		name string
		ws   *Windows
		roi  image.Rectangle
		want []image.Rectangle
	}{
		{"no windows in the manifest", nil, image.Rect(0, 0, 616, 252), nil},
		{"landscape 616x252: three squares, 70-pixel overlap", w, image.Rect(0, 0, 616, 252),
			[]image.Rectangle{sq(0, 0, 252), sq(182, 0, 252), sq(364, 0, 252)}},
		{"portrait: along y", w, image.Rect(0, 0, 252, 616),
			[]image.Rectangle{sq(0, 0, 252), sq(0, 182, 252), sq(0, 364, 252)}},
		{"offset ROI: windows in source pixels", w, image.Rect(100, 50, 716, 302),
			[]image.Rectangle{sq(100, 50, 252), sq(282, 50, 252), sq(464, 50, 252)}},
		{"1.5:1: two flush with the ends", w, image.Rect(0, 0, 300, 200),
			[]image.Rectangle{sq(0, 0, 200), sq(100, 0, 200)}},
		{"4:1: five, spread evenly", w, image.Rect(0, 0, 1000, 250),
			[]image.Rectangle{sq(0, 0, 250), sq(188, 0, 250), sq(375, 0, 250), sq(563, 0, 250), sq(750, 0, 250)}},
		{"no overlap asked: end to end", &Windows{MinAspect: 1}, image.Rect(0, 0, 300, 100),
			[]image.Rectangle{sq(0, 0, 100), sq(100, 0, 100), sq(200, 0, 100)}},
		{"under min_aspect: whole view only", w, image.Rect(0, 0, 259, 200), nil},
		{"square ROI with min_aspect 1", &Windows{Overlap: 0.5, MinAspect: 1}, image.Rect(0, 0, 64, 64), nil},
		{"empty ROI", w, image.Rectangle{}, nil},
		{"corners only (min_aspect 0): four squares of half the short side", &Windows{Corners: 0.5}, image.Rect(0, 0, 215, 283),
			[]image.Rectangle{sq(0, 0, 108), sq(107, 0, 108), sq(0, 175, 108), sq(107, 175, 108)}},
		{"nearly square: the corners alone", &Windows{Overlap: 0.25, MinAspect: 1.3, Corners: 0.5}, image.Rect(0, 0, 259, 200),
			[]image.Rectangle{sq(0, 0, 100), sq(159, 0, 100), sq(0, 100, 100), sq(159, 100, 100)}},
		{"offset elongated ROI: the long windows, then the corners", &Windows{Overlap: 0.25, MinAspect: 1.3, Corners: 0.5}, image.Rect(100, 50, 716, 302),
			[]image.Rectangle{sq(100, 50, 252), sq(282, 50, 252), sq(464, 50, 252),
				sq(100, 50, 126), sq(590, 50, 126), sq(100, 176, 126), sq(590, 176, 126)}},
		{"corners of a 1-pixel ROI", &Windows{Corners: 0.3}, image.Rect(5, 5, 6, 6),
			[]image.Rectangle{sq(5, 5, 1), sq(5, 5, 1), sq(5, 5, 1), sq(5, 5, 1)}},
		{"empty ROI, corners asked", &Windows{Corners: 0.5}, image.Rectangle{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.ws.Of(tc.roi)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Of(%v) = %v, want %v", tc.roi, got, tc.want)
			}
			long := len(got) // the windows along the long side come first
			if tc.ws != nil && tc.ws.Corners > 0 && long > 0 {
				long -= 4
			}
			for i, r := range got {
				if !r.In(tc.roi) || r.Dx() != r.Dy() {
					t.Errorf("window %d %v: not a square inside %v", i, r, tc.roi)
				}
				if i > 0 && i < long {
					ov := r.Intersect(got[i-1])
					if float64(max(ov.Dx(), ov.Dy())) < tc.ws.Overlap*float64(r.Dx()) || ov.Empty() && tc.ws.Overlap > 0 {
						t.Errorf("windows %d and %d overlap by %v, want at least %g of %d", i-1, i, ov, tc.ws.Overlap, r.Dx())
					}
				}
			}
		})
	}
}

func TestWorstView(t *testing.T) {
	ms := time.Millisecond
	whole := Result{Version: "1", GoodScore: 0.9, TopLabel: "free", Stats: InputStats{Brightness: 0.4}, Measured: true, Batch: 2,
		Geometry: Geometry{ROI: image.Rect(0, 0, 616, 252)},
		Timings:  Timings{Queue: 1 * ms, Preprocess: 2 * ms, Run: 10 * ms, Decode: 1 * ms, Total: 14 * ms}}
	win := func(g float32, x int) Result {
		return Result{Version: "1", GoodScore: g, TopLabel: "break", Stats: InputStats{Brightness: 0.7}, Batch: 1,
			Geometry: Geometry{ROI: image.Rect(x, 0, x+252, 252)},
			Timings:  Timings{Queue: 3 * ms, Preprocess: 2 * ms, Run: 10 * ms, Decode: 1 * ms, Total: 16 * ms}}
	}
	for _, tc := range []struct {
		name      string
		views     []Result
		view      int
		good      float32
		label     string
		roiMinX   int
		wantViews int
	}{
		{"the whole view is the lowest", []Result{whole, win(0.95, 0), win(0.91, 182)}, 0, 0.9, "free", 0, 3},
		{"window 2 sees the defect", []Result{whole, win(0.95, 0), win(0.08, 182), win(0.2, 364)}, 2, 0.08, "break", 182, 4},
		{"a tie keeps the earlier view", []Result{whole, win(0.9, 0)}, 0, 0.9, "free", 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := worstView(tc.views, 20*ms)
			if got.View != tc.view || got.GoodScore != tc.good || got.TopLabel != tc.label || got.Geometry.ROI.Min.X != tc.roiMinX || got.Views != tc.wantViews {
				t.Fatalf("view %d good %g label %s roi %v views %d; want view %d good %g label %s roi x %d views %d",
					got.View, got.GoodScore, got.TopLabel, got.Geometry.ROI, got.Views, tc.view, tc.good, tc.label, tc.roiMinX, tc.wantViews)
			}
			if got.Stats != whole.Stats || !got.Measured || got.Batch != 2 {
				t.Errorf("stats %+v measured %v batch %d: want the whole view's", got.Stats, got.Measured, got.Batch)
			}
			n := time.Duration(len(tc.views))
			want := Timings{Queue: ms, Preprocess: 2 * ms * n, Run: 10 * ms * n, Decode: ms * n, Total: 20 * ms}
			if got.Timings != want {
				t.Errorf("timings %+v, want %+v", got.Timings, want)
			}
		})
	}
}

// TestEngineWindows runs an elongated frame through a model whose manifest
// asks for windows, on a batch-1 engine and a batched one: the result must
// be the lowest-P(good) view of the whole ROI and its windows, each run
// alone through an engine without windows.
func TestEngineWindows(t *testing.T) {
	rt := openRuntime(t)
	ws := &Windows{Overlap: 0.25, MinAspect: 1.3}
	onInput := func(m *Manifest) { // the engine measures each frame's input statistics
		ref := *m.Reference
		ref.Measured = MeasuredInput
		m.Reference = &ref
	}
	dir := copyPackage(t, modelDir("classify"), func(m *Manifest, model []byte) []byte {
		onInput(m)
		m.Input.Windows = ws
		return model
	})
	plainDir := copyPackage(t, modelDir("classify"), func(m *Manifest, model []byte) []byte {
		onInput(m)
		return model
	})
	plain := openEngine(t, rt, plainDir, Config{})
	mat, _ := testImage(t, 300, 110, 3, 5)
	roi := image.Rect(20, 10, 260, 90) // 240x80: four 80-pixel windows
	wins := ws.Of(roi)
	if len(wins) != 4 {
		t.Fatalf("windows %v", wins)
	}
	views := []Result{}
	for _, r := range append([]image.Rectangle{roi}, wins...) {
		res, err := plain.Run(context.Background(), Frame{Image: mat, ROI: r})
		if err != nil {
			t.Fatal(err)
		}
		views = append(views, res)
	}
	want := worstView(views, 0)
	for _, cfg := range []Config{{}, {Batch: 4, BatchWait: 5 * time.Millisecond, Options: onnx.Options{Sessions: 2}}} {
		e := openEngine(t, rt, dir, cfg)
		got, err := e.Run(context.Background(), Frame{Image: mat, ROI: roi})
		if err != nil {
			t.Fatal(err)
		}
		if got.Views != 5 || got.View != want.View || got.Geometry != want.Geometry || !slices.Equal(got.Scores, want.Scores) ||
			got.GoodScore != want.GoodScore || got.TopLabel != want.TopLabel {
			t.Errorf("batch %d: view %d of %d, geometry %+v, scores %v; want view %d of 5, %+v, %v",
				cfg.Batch, got.View, got.Views, got.Geometry, got.Scores, want.View, want.Geometry, want.Scores)
		}
		if !views[0].Measured || got.Stats != views[0].Stats || !got.Measured {
			t.Errorf("batch %d: stats %+v measured %v; want the whole view's %+v %v", cfg.Batch, got.Stats, got.Measured, views[0].Stats, views[0].Measured)
		}
		for k, v := range views[1:] {
			if v.GoodScore < views[0].GoodScore && got.GoodScore > v.GoodScore {
				t.Errorf("window %d has P(good) %g, the result %g", k+1, v.GoodScore, got.GoodScore)
			}
		}
		if got.Timings.Run < views[0].Timings.Run/4 || got.Timings.Total <= 0 {
			t.Errorf("timings %+v", got.Timings)
		}
		// A nearly square ROI is scored whole, as without windows.
		sq, err := e.Run(context.Background(), Frame{Image: mat, ROI: image.Rect(0, 0, 110, 100)})
		if err != nil || sq.Views != 1 || sq.View != 0 {
			t.Errorf("square ROI: views %d view %d err %v", sq.Views, sq.View, err)
		}
		// A frame out of time fails once, as a deadline.
		done, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := e.Run(done, Frame{Image: mat, ROI: roi}); !errors.Is(err, ErrDeadline) || strings.Count(err.Error(), "deadline") > 1 {
			t.Errorf("cancelled frame: %v", err)
		}
		// Bad input still says what was wrong.
		if _, err := e.Run(context.Background(), Frame{Image: mat, ROI: image.Rect(0, 0, 900, 100)}); !errors.Is(err, ErrBadInput) {
			t.Errorf("ROI outside the image: %v", err)
		}
	}
	if want.View == 0 {
		t.Log("the whole view decided this frame (every window scored higher)")
	}
}
