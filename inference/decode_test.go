package inference

import (
	"errors"
	"image"
	"math"
	"slices"
	"testing"

	"github.com/linesight/linesight/inference/onnx"
)

func classifyManifest(roles ...string) *Manifest {
	m := &Manifest{Task: TaskClassify, Labels: []string{"crack", "free", "fray"}, GoodLabels: []string{"free"}}
	names := map[string]string{RoleLogits: "logits", RoleProbabilities: "probs", RoleHeatmap: "cam"}
	for _, r := range roles {
		m.Outputs = append(m.Outputs, Output{Name: names[r], Role: r})
	}
	return m
}

func near(a, b float32) bool { return math.Abs(float64(a-b)) < 1e-5 }

func TestDecodeClassify(t *testing.T) {
	nan := float32(math.NaN())
	cam := make([]float32, 2*3*2*2) // [2,3,2,2]: item 1, class 2 is 9..12
	for i := range cam {
		cam[i] = float32(i % 12)
	}
	tests := []struct {
		name    string
		m       *Manifest
		outs    []onnx.Tensor
		item    int
		scores  []float32
		top     string
		good    bool
		heat    []float32
		wantErr error
	}{
		{
			name:   "logits softmax",
			m:      classifyManifest(RoleLogits),
			outs:   []onnx.Tensor{{Name: "logits", Shape: []int64{1, 3}, Data: []float32{0, math.Ln2, 0}}},
			scores: []float32{0.25, 0.5, 0.25}, top: "free", good: true,
		},
		{
			name:   "large logits are stable",
			m:      classifyManifest(RoleLogits),
			outs:   []onnx.Tensor{{Name: "logits", Shape: []int64{1, 3}, Data: []float32{1000, 0, 0}}},
			scores: []float32{1, 0, 0}, top: "crack",
		},
		{
			name:   "probabilities pass through, batch item 1",
			m:      classifyManifest(RoleProbabilities),
			outs:   []onnx.Tensor{{Name: "probs", Shape: []int64{2, 3}, Data: []float32{1, 0, 0, 0.1, 0.2, 0.7}}},
			item:   1,
			scores: []float32{0.1, 0.2, 0.7}, top: "fray",
		},
		{
			name: "heatmap of the top class",
			m:    classifyManifest(RoleProbabilities, RoleHeatmap),
			outs: []onnx.Tensor{{Name: "probs", Shape: []int64{2, 3}, Data: []float32{1, 0, 0, 0.1, 0.2, 0.7}},
				{Name: "cam", Shape: []int64{2, 3, 2, 2}, Data: cam}},
			item:   1,
			scores: []float32{0.1, 0.2, 0.7}, top: "fray", heat: []float32{8, 9, 10, 11},
		},
		{
			name: "single-channel heatmap",
			m:    classifyManifest(RoleLogits, RoleHeatmap),
			outs: []onnx.Tensor{{Name: "logits", Shape: []int64{1, 3}, Data: []float32{0, 0, 0}},
				{Name: "cam", Shape: []int64{1, 2, 2}, Data: []float32{4, 3, 2, 1}}},
			scores: []float32{1.0 / 3, 1.0 / 3, 1.0 / 3}, top: "crack", heat: []float32{4, 3, 2, 1},
		},
		{
			name:    "NaN logits",
			m:       classifyManifest(RoleLogits),
			outs:    []onnx.Tensor{{Name: "logits", Shape: []int64{1, 3}, Data: []float32{0, nan, 0}}},
			wantErr: ErrNonFinite,
		},
		{
			name:    "Inf probabilities",
			m:       classifyManifest(RoleProbabilities),
			outs:    []onnx.Tensor{{Name: "probs", Shape: []int64{1, 3}, Data: []float32{float32(math.Inf(1)), 0, 0}}},
			wantErr: ErrNonFinite,
		},
		{
			name: "NaN in heatmap",
			m:    classifyManifest(RoleLogits, RoleHeatmap),
			outs: []onnx.Tensor{{Name: "logits", Shape: []int64{1, 3}, Data: []float32{0, 1, 0}},
				{Name: "cam", Shape: []int64{1, 1, 1, 2}, Data: []float32{0, nan}}},
			wantErr: ErrNonFinite,
		},
		{
			name:    "wrong class count",
			m:       classifyManifest(RoleLogits),
			outs:    []onnx.Tensor{{Name: "logits", Shape: []int64{1, 4}, Data: []float32{0, 0, 0, 0}}},
			wantErr: ErrShape,
		},
		{
			name:    "item out of range",
			m:       classifyManifest(RoleLogits),
			outs:    []onnx.Tensor{{Name: "logits", Shape: []int64{1, 3}, Data: []float32{0, 0, 0}}},
			item:    1,
			wantErr: ErrShape,
		},
		{
			name: "heatmap with wrong channel count",
			m:    classifyManifest(RoleLogits, RoleHeatmap),
			outs: []onnx.Tensor{{Name: "logits", Shape: []int64{1, 3}, Data: []float32{0, 1, 0}},
				{Name: "cam", Shape: []int64{1, 2, 1, 1}, Data: []float32{0, 1}}},
			wantErr: ErrShape,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Result
			err := newDecoder(tt.m).decode(tt.outs, tt.item, Geometry{}, &r)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Scores) != len(tt.scores) {
				t.Fatalf("scores %v, want %v", r.Scores, tt.scores)
			}
			for i := range r.Scores {
				if !near(r.Scores[i], tt.scores[i]) {
					t.Fatalf("scores %v, want %v", r.Scores, tt.scores)
				}
			}
			if r.TopLabel != tt.top || r.Good != tt.good || !near(r.TopScore, r.Scores[r.Top]) {
				t.Errorf("top %q (good %v, score %v), want %q (good %v)", r.TopLabel, r.Good, r.TopScore, tt.top, tt.good)
			}
			if !near(r.GoodScore, r.Scores[1]) {
				t.Errorf("good score %v, want P(free) %v", r.GoodScore, r.Scores[1])
			}
			if tt.heat == nil {
				if r.Heatmap != nil {
					t.Errorf("unexpected heatmap %+v", r.Heatmap)
				}
				return
			}
			if r.Heatmap == nil || !slices.Equal(r.Heatmap.Data, tt.heat) || r.Heatmap.Min != slices.Min(tt.heat) || r.Heatmap.Max != slices.Max(tt.heat) {
				t.Errorf("heatmap %+v, want %v", r.Heatmap, tt.heat)
			}
		})
	}
}

func anomalyManifest(thr float64, roles ...string) *Manifest {
	m := &Manifest{Task: TaskAnomaly, Labels: []string{"good", "anomalous"}, GoodLabels: []string{"good"}, Thresholds: Thresholds{Anomaly: thr}}
	names := map[string]string{RoleScore: "pred_score", RoleLabel: "pred_label", RoleAnomalyMap: "anomaly_map", RoleMask: "pred_mask"}
	for _, r := range roles {
		m.Outputs = append(m.Outputs, Output{Name: names[r], Role: r})
	}
	return m
}

func TestDecodeAnomaly(t *testing.T) {
	all := []string{RoleScore, RoleLabel, RoleAnomalyMap, RoleMask}
	outs := func(score, label float32, amap ...float32) []onnx.Tensor {
		mask := make([]float32, len(amap))
		for i, v := range amap {
			if v > 0.5 {
				mask[i] = 1
			}
		}
		return []onnx.Tensor{
			{Name: "pred_score", Shape: []int64{1}, Data: []float32{score}},
			{Name: "pred_label", Shape: []int64{1}, Data: []float32{label}},
			{Name: "anomaly_map", Shape: []int64{1, 1, 1, int64(len(amap))}, Data: amap},
			{Name: "pred_mask", Shape: []int64{1, 1, 1, int64(len(amap))}, Data: mask},
		}
	}
	tests := []struct {
		name      string
		m         *Manifest
		outs      []onnx.Tensor
		anomalous bool
		score     float32
		wantErr   error
	}{
		{"model label says anomalous", anomalyManifest(0, all...), outs(0.7, 1, 0.1, 0.7), true, 0.7, nil},
		{"model label says good", anomalyManifest(0, all...), outs(0.3, 0, 0.1, 0.3), false, 0.3, nil},
		{"manifest threshold overrides the label", anomalyManifest(0.8, all...), outs(0.7, 1, 0.1, 0.7), false, 0.7, nil},
		{"score only, 0.5 default", anomalyManifest(0, RoleScore), outs(0.6, 0, 0.1)[:1], true, 0.6, nil},
		{"score [N,1]", anomalyManifest(0.5, RoleScore), []onnx.Tensor{{Name: "pred_score", Shape: []int64{1, 1}, Data: []float32{0.2}}}, false, 0.2, nil},
		{"NaN score", anomalyManifest(0, all...), outs(float32(math.NaN()), 1, 0.1), false, 0, ErrNonFinite},
		{"Inf in map", anomalyManifest(0, all...), outs(0.2, 0, float32(math.Inf(-1))), false, 0, ErrNonFinite},
		{"score with two values", anomalyManifest(0, RoleScore), []onnx.Tensor{{Name: "pred_score", Shape: []int64{1, 2}, Data: []float32{0.2, 0.3}}}, false, 0, ErrShape},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Result
			err := newDecoder(tt.m).decode(tt.outs, 0, Geometry{}, &r)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Anomalous != tt.anomalous || r.AnomalyScore != tt.score || r.Good == tt.anomalous {
				t.Errorf("anomalous %v score %v good %v, want %v %v", r.Anomalous, r.AnomalyScore, r.Good, tt.anomalous, tt.score)
			}
			if !near(r.Scores[1], tt.score) || !near(r.GoodScore, 1-tt.score) {
				t.Errorf("scores %v good score %v", r.Scores, r.GoodScore)
			}
			if want := map[bool]string{true: "anomalous", false: "good"}[tt.anomalous]; r.TopLabel != want {
				t.Errorf("top label %q, want %q", r.TopLabel, want)
			}
			if len(tt.m.Outputs) == 4 && (r.Heatmap == nil || r.Mask == nil) {
				t.Errorf("map %v mask %v: want both", r.Heatmap, r.Mask)
			}
		})
	}
}

// yolo builds a [1, 4+K, B] Ultralytics tensor from per-anchor rows.
func yolo(k int, anchors ...[]float32) onnx.Tensor {
	B := len(anchors)
	data := make([]float32, (4+k)*B)
	for b, a := range anchors {
		for c, v := range a {
			data[c*B+b] = v
		}
	}
	return onnx.Tensor{Name: "output0", Shape: []int64{1, int64(4 + k), int64(B)}, Data: data}
}

func TestDecodeDetect(t *testing.T) {
	m := &Manifest{Task: TaskDetect, Labels: []string{"scratch", "dent"}, Outputs: []Output{{Name: "output0", Role: RoleBoxes, BoxFormat: BoxCXCYWH}},
		Thresholds: Thresholds{Score: 0.25, IoU: 0.45}}
	t.Run("nms and threshold", func(t *testing.T) {
		out := yolo(2,
			[]float32{50, 50, 20, 20, 0.9, 0.1},   // scratch, kept
			[]float32{52, 50, 20, 20, 0.8, 0.0},   // overlaps the first (IoU 0.82): suppressed
			[]float32{52, 50, 20, 20, 0.0, 0.7},   // same place, other class: kept
			[]float32{10, 10, 8, 8, 0.2, 0.1},     // under the threshold
			[]float32{100, 100, 10, 10, 0.3, 0.0}, // separate scratch, kept
		)
		var r Result
		g := Geometry{ROI: imageRect(0, 0, 128, 128), ResizedW: 128, ResizedH: 128}
		if err := newDecoder(m).decode([]onnx.Tensor{out}, 0, g, &r); err != nil {
			t.Fatal(err)
		}
		got := make([]string, len(r.Detections))
		for i, d := range r.Detections {
			got[i] = d.Label
		}
		if !slices.Equal(got, []string{"scratch", "dent", "scratch"}) {
			t.Fatalf("detections %+v", r.Detections)
		}
		if d := r.Detections[0]; d.X0 != 40 || d.Y0 != 40 || d.X1 != 60 || d.Y1 != 60 || d.Score != 0.9 {
			t.Errorf("first box %+v, want 40,40-60,60 at 0.9", d)
		}
		if !near(r.Scores[0], 0.9) || !near(r.Scores[1], 0.7) || r.Good || !near(r.GoodScore, 0.1) || r.TopLabel != "scratch" {
			t.Errorf("scores %v good %v (%v) top %s", r.Scores, r.Good, r.GoodScore, r.TopLabel)
		}
	})
	t.Run("letterbox back to source", func(t *testing.T) {
		// A 128x64 frame letterboxed into 64x64: resized 64x32 at offset (0,16).
		p := Preprocess{Width: 64, Height: 64, Resize: ResizeLetterbox}
		g := p.Geometry(imageRect(0, 0, 128, 64))
		var r Result
		out := yolo(2, []float32{32, 32, 16, 16, 0.9, 0})
		if err := newDecoder(m).decode([]onnx.Tensor{out}, 0, g, &r); err != nil {
			t.Fatal(err)
		}
		d := r.Detections[0]
		if d.X0 != 48 || d.X1 != 80 || d.Y0 != 16 || d.Y1 != 48 {
			t.Errorf("box in source %+v, want 48,16-80,48", d)
		}
	})
	t.Run("nothing found is good", func(t *testing.T) {
		var r Result
		if err := newDecoder(m).decode([]onnx.Tensor{yolo(2, []float32{5, 5, 2, 2, 0.1, 0.1})}, 0, Geometry{ROI: imageRect(0, 0, 8, 8), ResizedW: 8, ResizedH: 8}, &r); err != nil {
			t.Fatal(err)
		}
		if len(r.Detections) != 0 || !r.Good || r.GoodScore != 1 {
			t.Errorf("%+v", r)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for name, tc := range map[string]struct {
			out  onnx.Tensor
			want error
		}{
			"wrong class count": {yolo(3, []float32{1, 1, 1, 1, 1, 1, 1}), ErrShape},
			"NaN box":           {yolo(2, []float32{float32(math.NaN()), 1, 1, 1, 0.9, 0}), ErrNonFinite},
			"rank 2":            {onnx.Tensor{Name: "output0", Shape: []int64{1, 6}, Data: make([]float32, 6)}, ErrShape},
		} {
			var r Result
			if err := newDecoder(m).decode([]onnx.Tensor{tc.out}, 0, Geometry{}, &r); !errors.Is(err, tc.want) {
				t.Errorf("%s: err = %v, want %v", name, err, tc.want)
			}
		}
	})
}

func TestNMSLimit(t *testing.T) {
	var ds []Detection
	for i := range 10 {
		x := float32(i * 20)
		ds = append(ds, Detection{Score: float32(i) / 10, X0: x, Y0: 0, X1: x + 10, Y1: 10})
	}
	got := NMS(ds, 0.5, 3)
	if len(got) != 3 || got[0].Score != 0.9 || got[2].Score != 0.7 {
		t.Errorf("NMS = %+v", got)
	}
	if iou := IoU(Detection{X0: 0, Y0: 0, X1: 10, Y1: 10}, Detection{X0: 5, Y0: 0, X1: 15, Y1: 10}); !near(iou, 1.0/3) {
		t.Errorf("IoU = %v", iou)
	}
}

func imageRect(x0, y0, x1, y1 int) image.Rectangle { return image.Rect(x0, y0, x1, y1) }
