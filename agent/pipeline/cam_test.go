package pipeline

import (
	"image"
	"slices"
	"testing"

	"github.com/linesight/linesight/inference"
)

// TestHeatmapOver: the engine's heatmap, in model-input cells, comes back
// laid over the frame: as it is for a stretched ROI, shifted for
// letterbox padding, and turned back for a ROI the model saw turned a
// quarter clockwise (orient landscape).
func TestHeatmapOver(t *testing.T) {
	// A 4x2 map over a 64x32 input: row 0 holds 0..3, row 1 4..7.
	hm := &inference.Heatmap{W: 4, H: 2, Data: []float32{0, 1, 2, 3, 4, 5, 6, 7}, Min: 0, Max: 7}
	man := &inference.Manifest{Input: inference.Input{Shape: []int64{1, 1, 32, 64}, Layout: inference.LayoutNCHW}}
	q := func(vs ...float32) []byte { // the 0..255 quantisation of 0..7
		out := make([]byte, len(vs))
		for i, v := range vs {
			out[i] = byte(v/7*255 + 0.5)
		}
		return out
	}
	tests := []struct {
		name string
		spec inference.Preprocess
		w, h int             // frame
		roi  image.Rectangle // empty: the whole frame
		gw   int
		want []byte
	}{
		{"stretch", inference.Preprocess{Width: 64, Height: 32, Resize: inference.ResizeStretch}, 200, 100, image.Rectangle{}, 4,
			q(0, 1, 2, 3, 4, 5, 6, 7)},
		// the right half of the frame decided (a window): a grid twice as
		// wide, the map on the right half, nothing on the left
		{"window", inference.Preprocess{Width: 64, Height: 32, Resize: inference.ResizeStretch}, 200, 100, image.Rect(100, 0, 200, 100), 8,
			[]byte{0, 0, 0, 0, 0, 36, 73, 109, 0, 0, 0, 0, 146, 182, 219, 255}},
		// a ROI a tenth of the frame: the grid grows at most fourfold, so the
		// ROI gets two cells (centres at 30 % and 94 % of its width)
		{"small ROI", inference.Preprocess{Width: 64, Height: 32, Resize: inference.ResizeStretch}, 200, 100, image.Rect(0, 0, 20, 100), 16,
			append(append(q(1, 3), make([]byte, 14)...), append(q(5, 7), make([]byte, 14)...)...)},
		// the 100x100 frame fills the middle 32x32 of the input: columns 1 and 2
		{"letterbox", inference.Preprocess{Width: 64, Height: 32, Resize: inference.ResizeLetterbox}, 100, 100, image.Rectangle{}, 4,
			q(1, 1, 2, 2, 5, 5, 6, 6)},
		// a portrait frame, turned clockwise for the model: the map turned back
		{"rotated", inference.Preprocess{Width: 64, Height: 32, Resize: inference.ResizeStretch, Orient: inference.OrientLandscape}, 100, 200, image.Rectangle{}, 2,
			q(3, 7, 2, 6, 1, 5, 0, 4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roi := tt.roi
			if roi.Empty() {
				roi = image.Rect(0, 0, tt.w, tt.h)
			}
			res := inference.Result{Heatmap: hm, Geometry: tt.spec.Geometry(roi)}
			got := heatmapOver(res, man, tt.w, tt.h)
			if got == nil {
				t.Fatal("no heatmap")
			}
			if got.W != tt.gw || got.W*got.H != len(tt.want) || !slices.Equal(got.V, tt.want) {
				t.Errorf("heatmap %dx%d %v, want %d wide %v", got.W, got.H, got.V, tt.gw, tt.want)
			}
		})
	}
}
