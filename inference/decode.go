package inference

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/linesight/linesight/inference/onnx"
)

// Result is what the engine returns for one frame.
type Result struct {
	Model, Version string
	Task           string
	Provider       string // execution provider that ran it (cpu, cuda, ...)
	// Labels are the manifest's labels (shared; do not modify).
	Labels []string
	// Scores has one value per label: class probabilities (classify);
	// [1-score, score] (anomaly); the best box score per label (detect).
	Scores   []float32
	Top      int // index of the highest score
	TopLabel string
	TopScore float32
	// GoodScore is the summed probability of the good labels (classify),
	// 1-score (anomaly) or 1 - the best defect box score (detect): what
	// the policy compares with the pass threshold.
	GoodScore float32
	// Good: the top label is a good label (classify), the part is not
	// anomalous (anomaly), or no defect was detected (detect).
	Good bool
	// Heatmap: the class-activation map of the top class (classify) or the
	// anomaly map (anomaly), in model-input pixels of its own resolution;
	// nil when the model has none.
	Heatmap *Heatmap
	// Anomaly models: the score, the verdict and the mask (nil when absent).
	AnomalyScore float32
	Anomalous    bool
	Mask         *Heatmap
	// Detections, best first, boxes in source-image pixels.
	Detections []Detection
	// Geometry maps model-input pixels to the source image.
	Geometry Geometry
	// Stats are the input statistics of the frame as the model saw it
	// (gray, resized, before padding), measured while preprocessing when
	// the model's reference is of the input (Reference.OnInput); Measured
	// says whether they were.
	Stats    InputStats
	Measured bool
	Timings  Timings
	// Batch is the number of frames that shared the run.
	Batch int
	// Views is the number of views scored: 1, or with input windows 1 +
	// the ROI's windows. View is the one the result is of: 0 the whole
	// ROI, k >= 1 window k (Geometry.ROI is its rectangle).
	Views, View int
}

// Timings are the stages of one frame. Run is the batch's run time.
type Timings struct {
	Queue, Preprocess, Run, Decode, Total time.Duration
}

// Heatmap is a W x H grid of raw model values, row-major.
type Heatmap struct {
	W, H     int
	Data     []float32
	Min, Max float32
}

// Detection is one box after NMS.
type Detection struct {
	Class int
	Label string
	Score float32
	// X0, Y0, X1, Y1: the box in source-image pixels.
	X0, Y0, X1, Y1 float32
}

// decoder turns output tensors into a Result for one batch item. It is
// pure: tests feed it hand-made tensors.
type decoder struct {
	m     *Manifest
	names []string       // outputs to fetch, in manifest order
	pos   map[string]int // role -> index into names
	good  []bool         // per label
}

func newDecoder(m *Manifest) *decoder {
	d := &decoder{m: m, pos: map[string]int{}}
	for i, o := range m.Outputs {
		d.names = append(d.names, o.Name)
		d.pos[o.Role] = i
	}
	for _, l := range m.Labels {
		d.good = append(d.good, m.IsGood(l))
	}
	return d
}

func (d *decoder) tensor(outs []onnx.Tensor, role string) (onnx.Tensor, bool) {
	i, ok := d.pos[role]
	if !ok || i >= len(outs) {
		return onnx.Tensor{}, false
	}
	return outs[i], true
}

// item returns batch item i of t (the first dimension is the batch).
func item(t onnx.Tensor, i int) ([]float32, error) {
	if len(t.Shape) == 0 || t.Shape[0] <= 0 {
		return nil, fmt.Errorf("%w: output %q has shape %v; want a batch dimension first", ErrShape, t.Name, t.Shape)
	}
	n := int(t.Shape[0])
	if i >= n || len(t.Data)%n != 0 {
		return nil, fmt.Errorf("%w: output %q has shape %v, no item %d", ErrShape, t.Name, t.Shape, i)
	}
	per := len(t.Data) / n
	return t.Data[i*per : (i+1)*per], nil
}

func finite(name string, xs []float32) error {
	for j, x := range xs {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: output %q element %d is %v", ErrNonFinite, name, j, x)
		}
	}
	return nil
}

// decode fills r from outs for batch item i.
func (d *decoder) decode(outs []onnx.Tensor, i int, g Geometry, r *Result) error {
	r.Labels = d.m.Labels
	r.Geometry = g
	switch d.m.Task {
	case TaskClassify:
		return d.classify(outs, i, r)
	case TaskAnomaly:
		return d.anomaly(outs, i, r)
	case TaskDetect:
		return d.detect(outs, i, g, r)
	}
	return fmt.Errorf("decode: unknown task %q", d.m.Task)
}

func (d *decoder) classify(outs []onnx.Tensor, i int, r *Result) error {
	t, logits := d.tensor(outs, RoleLogits)
	if !logits {
		t, _ = d.tensor(outs, RoleProbabilities)
	}
	row, err := item(t, i)
	if err != nil {
		return err
	}
	if len(row) != len(d.m.Labels) {
		return fmt.Errorf("%w: output %q has %d scores per item, the manifest %d labels", ErrShape, t.Name, len(row), len(d.m.Labels))
	}
	if err := finite(t.Name, row); err != nil {
		return err
	}
	r.Scores = make([]float32, len(row))
	if logits {
		Softmax(r.Scores, row)
	} else {
		copy(r.Scores, row)
	}
	r.Top = argmax(r.Scores)
	r.TopLabel, r.TopScore = d.m.Labels[r.Top], r.Scores[r.Top]
	r.Good = d.good[r.Top]
	r.GoodScore = 0
	for k, s := range r.Scores {
		if d.good[k] {
			r.GoodScore += s
		}
	}
	if h, ok := d.tensor(outs, RoleHeatmap); ok {
		if r.Heatmap, err = heatmap(h, i, r.Top, len(d.m.Labels)); err != nil {
			return err
		}
	}
	return nil
}

// heatmap takes item i of a [N,K,h,w] (channel k), [N,1,h,w] or [N,h,w] map.
func heatmap(t onnx.Tensor, i, k, classes int) (*Heatmap, error) {
	data, err := item(t, i)
	if err != nil {
		return nil, err
	}
	var h, w int
	switch len(t.Shape) {
	case 3:
		h, w = int(t.Shape[1]), int(t.Shape[2])
	case 4:
		h, w = int(t.Shape[2]), int(t.Shape[3])
		switch c := int(t.Shape[1]); {
		case c == classes && c > 1:
			data = data[k*h*w : (k+1)*h*w]
		case c != 1:
			return nil, fmt.Errorf("%w: map %q has shape %v; want [N,%d,h,w], [N,1,h,w] or [N,h,w]", ErrShape, t.Name, t.Shape, classes)
		}
	default:
		return nil, fmt.Errorf("%w: map %q has shape %v; want [N,%d,h,w], [N,1,h,w] or [N,h,w]", ErrShape, t.Name, t.Shape, classes)
	}
	if err := finite(t.Name, data); err != nil {
		return nil, err
	}
	hm := &Heatmap{W: w, H: h, Data: slices.Clone(data)}
	hm.Min, hm.Max = slices.Min(data), slices.Max(data)
	return hm, nil
}

func (d *decoder) anomaly(outs []onnx.Tensor, i int, r *Result) error {
	st, _ := d.tensor(outs, RoleScore)
	s, err := item(st, i)
	if err != nil {
		return err
	}
	if len(s) != 1 {
		return fmt.Errorf("%w: pred_score %q has shape %v; want [N] or [N,1]", ErrShape, st.Name, st.Shape)
	}
	if err := finite(st.Name, s); err != nil {
		return err
	}
	score := s[0]
	r.AnomalyScore = score
	switch thr := d.m.Thresholds.Anomaly; {
	case thr > 0:
		r.Anomalous = float64(score) >= thr
	default:
		if lt, ok := d.tensor(outs, RoleLabel); ok {
			l, err := item(lt, i)
			if err != nil {
				return err
			}
			r.Anomalous = len(l) > 0 && l[0] != 0
		} else {
			r.Anomalous = score >= 0.5
		}
	}
	p := min(max(score, 0), 1)
	r.Scores = []float32{1 - p, p}
	r.Top = 0
	if r.Anomalous {
		r.Top = 1
	}
	r.TopLabel, r.TopScore = d.m.Labels[r.Top], r.Scores[r.Top]
	r.Good, r.GoodScore = !r.Anomalous, 1-p
	if mt, ok := d.tensor(outs, RoleAnomalyMap); ok {
		if r.Heatmap, err = heatmap(mt, i, 0, 1); err != nil {
			return err
		}
	}
	if mt, ok := d.tensor(outs, RoleMask); ok {
		if r.Mask, err = heatmap(mt, i, 0, 1); err != nil {
			return err
		}
	}
	return nil
}

// detect decodes Ultralytics' [N, 4+K, B] output: for each of B anchors a
// box (cx, cy, w, h or x0, y0, x1, y1 in model-input pixels) and K class
// scores; boxes under the score threshold are dropped, the rest go
// through per-class NMS, and survivors are mapped to source pixels.
func (d *decoder) detect(outs []onnx.Tensor, i int, g Geometry, r *Result) error {
	t, _ := d.tensor(outs, RoleBoxes)
	data, err := item(t, i)
	if err != nil {
		return err
	}
	K := len(d.m.Labels)
	if len(t.Shape) != 3 || int(t.Shape[1]) != 4+K {
		return fmt.Errorf("%w: output %q has shape %v; want [N,%d,B] (4 box values and %d class scores per anchor)", ErrShape, t.Name, t.Shape, 4+K, K)
	}
	if err := finite(t.Name, data); err != nil {
		return err
	}
	B := int(t.Shape[2])
	thr := float32(d.m.Thresholds.Score)
	xyxy := false
	if o, ok := d.m.OutputByRole(RoleBoxes); ok && o.BoxFormat == BoxXYXY {
		xyxy = true
	}
	var cands []Detection
	for b := range B {
		best, bs := -1, thr
		for k := range K {
			if s := data[(4+k)*B+b]; s >= bs {
				best, bs = k, s
			}
		}
		if best < 0 {
			continue
		}
		a, bb, c, e := data[b], data[B+b], data[2*B+b], data[3*B+b]
		x0, y0, x1, y1 := a-c/2, bb-e/2, a+c/2, bb+e/2
		if xyxy {
			x0, y0, x1, y1 = a, bb, c, e
		}
		cands = append(cands, Detection{Class: best, Label: d.m.Labels[best], Score: bs, X0: x0, Y0: y0, X1: x1, Y1: y1})
	}
	r.Detections = NMS(cands, float32(d.m.Thresholds.IoU), 300)
	r.Scores = make([]float32, K)
	var worst float32
	r.Good = true
	for j := range r.Detections {
		det := &r.Detections[j]
		r.Scores[det.Class] = max(r.Scores[det.Class], det.Score)
		if !d.good[det.Class] {
			r.Good = false
			worst = max(worst, det.Score)
		}
		fx0, fy0 := g.ToSource(float64(det.X0), float64(det.Y0))
		fx1, fy1 := g.ToSource(float64(det.X1), float64(det.Y1))
		det.X0, det.Y0, det.X1, det.Y1 = float32(fx0), float32(fy0), float32(fx1), float32(fy1)
	}
	r.GoodScore = 1 - worst
	r.Top = argmax(r.Scores)
	r.TopLabel, r.TopScore = d.m.Labels[r.Top], r.Scores[r.Top]
	return nil
}

// Softmax writes the softmax of x into dst (len(dst) == len(x)), stably.
func Softmax(dst, x []float32) {
	m := slices.Max(x)
	var sum float64
	for i, v := range x {
		e := math.Exp(float64(v - m))
		dst[i] = float32(e)
		sum += e
	}
	for i := range dst {
		dst[i] = float32(float64(dst[i]) / sum)
	}
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// IoU is the intersection over union of two boxes.
func IoU(a, b Detection) float32 {
	ix := max(0, min(a.X1, b.X1)-max(a.X0, b.X0))
	iy := max(0, min(a.Y1, b.Y1)-max(a.Y0, b.Y0))
	inter := ix * iy
	union := (a.X1-a.X0)*(a.Y1-a.Y0) + (b.X1-b.X0)*(b.Y1-b.Y0) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// NMS keeps, per class, the best boxes that overlap no better box by more
// than iou; at most limit, best first. Ties keep the input order.
func NMS(dets []Detection, iou float32, limit int) []Detection {
	slices.SortStableFunc(dets, func(a, b Detection) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	var keep []Detection
	for _, d := range dets {
		ok := true
		for _, k := range keep {
			if k.Class == d.Class && IoU(k, d) > iou {
				ok = false
				break
			}
		}
		if ok {
			keep = append(keep, d)
			if len(keep) == limit {
				break
			}
		}
	}
	return keep
}
