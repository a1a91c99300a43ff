package inference

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/linesight/linesight/internal/validate"
)

// File names inside a model package directory.
const (
	ManifestFile = "manifest.json"
	ModelFile    = "model.onnx"
	// ManifestFormat is the manifest schema version this build reads and writes.
	ManifestFormat = 1
)

// Tasks.
const (
	TaskClassify = "classify"
	TaskAnomaly  = "anomaly"
	TaskDetect   = "detect"
)

// Input conventions.
const (
	LayoutNCHW = "nchw"
	LayoutNHWC = "nhwc"

	ChannelsGray = "gray"
	ChannelsRGB  = "rgb"
	ChannelsBGR  = "bgr"

	ResizeStretch    = "stretch"     // to W x H, ignoring the aspect ratio
	ResizeLetterbox  = "letterbox"   // fit inside W x H, pad the rest with pad_value (Ultralytics)
	ResizeCenterCrop = "center-crop" // cover W x H, then crop the centre

	// OrientNone feeds the ROI as it is; OrientLandscape turns a ROI that
	// is taller than wide a quarter turn clockwise (after the resize, to
	// the input's H x W), so that a part's long side always lies along the
	// input's width: for parts that reach the camera lengthwise or
	// crosswise, and elongated parts a square input would squash.
	OrientNone      = "none"
	OrientLandscape = "landscape"

	InterpLinear  = "linear"  // cv2.INTER_LINEAR
	InterpArea    = "area"    // cv2.INTER_AREA
	InterpNearest = "nearest" // cv2.INTER_NEAREST
)

// Output roles: what an output tensor means.
const (
	RoleLogits        = "logits"        // classify: [N,K] raw scores; softmax gives probabilities
	RoleProbabilities = "probabilities" // classify: [N,K], each row sums to 1
	RoleHeatmap       = "heatmap"       // classify: [N,K,h,w] class-activation maps, or [N,1,h,w] / [N,h,w] one map
	RoleScore         = "score"         // anomaly: pred_score [N] (or [N,1])
	RoleLabel         = "label"         // anomaly: pred_label [N], bool
	RoleAnomalyMap    = "anomaly_map"   // anomaly: [N,1,H,W]
	RoleMask          = "mask"          // anomaly: pred_mask [N,1,H,W], bool
	RoleBoxes         = "boxes"         // detect: [N,4+K,B] (Ultralytics YOLOv8/11)

	BoxCXCYWH = "cxcywh"
	BoxXYXY   = "xyxy"
)

// Manifest describes a model package: what the graph expects, what its
// outputs mean, how it was trained and how well it did. It is written by
// scripts/train (issue 5) as manifest.json next to model.onnx and read by
// the engine, the policy (labels, good labels, thresholds) and the monitor
// (reference input statistics). See doc.go for the full schema and an example.
type Manifest struct {
	Format      int        `json:"format"`
	Name        string     `json:"name"`
	Version     string     `json:"version"`
	Task        string     `json:"task"`
	Description string     `json:"description,omitempty"`
	Created     string     `json:"created,omitempty"` // RFC 3339
	Model       ModelInfo  `json:"model"`
	Input       Input      `json:"input"`
	Outputs     []Output   `json:"outputs"`
	Labels      []string   `json:"labels"`
	GoodLabels  []string   `json:"good_labels"`
	Thresholds  Thresholds `json:"thresholds"`
	Reference   *Reference `json:"reference,omitempty"`
	Training    *Training  `json:"training,omitempty"`
	Metrics     *Metrics   `json:"metrics,omitempty"`
}

// ModelInfo names the ONNX file and pins its content.
type ModelInfo struct {
	File      string `json:"file"`                // relative to the package directory; default model.onnx
	SHA256    string `json:"sha256"`              // lower-case hex of the file; checked at load
	Precision string `json:"precision,omitempty"` // fp32, fp16 or int8 (informational)
	Opset     int    `json:"opset,omitempty"`
}

// Input is the graph's one input and the preprocessing that feeds it:
// ROI, then conversion to gray (when Channels is gray), then resize per
// Resize/Interpolation (and the quarter turn of Orient), then channel
// order, then x*Scale, then (x-Mean)/Std per channel, written in Layout.
type Input struct {
	Name          string    `json:"name"`
	Shape         []int64   `json:"shape"`  // 4 dims; the batch may be -1
	Layout        string    `json:"layout"` // nchw (default) or nhwc
	Channels      string    `json:"channels"`
	Resize        string    `json:"resize"`                  // stretch (default), letterbox, center-crop
	Interpolation string    `json:"interpolation,omitempty"` // linear (default), area, nearest
	Orient        string    `json:"orient,omitempty"`        // none (default), landscape
	PadValue      float64   `json:"pad_value,omitempty"`     // letterbox padding in pixel units (0..255), e.g. 114
	Scale         float64   `json:"scale"`                   // e.g. 1/255
	Mean          []float64 `json:"mean,omitempty"`          // per channel in model channel order, after Scale; empty = 0
	Std           []float64 `json:"std,omitempty"`           // empty = 1
	// Windows: also score square windows along an elongated ROI; nil: the
	// whole ROI only.
	Windows *Windows `json:"windows,omitempty"`
}

// Output is one graph output LineSight reads and what it means.
type Output struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	BoxFormat string `json:"box_format,omitempty"` // boxes: cxcywh (default) or xyxy, in input pixels
}

// Thresholds are the defaults the policy uses unless the configuration
// overrides them.
type Thresholds struct {
	// Pass: auto-pass when the summed probability of the good labels >= Pass.
	Pass float64 `json:"pass"`
	// Reject: auto-reject when the summed probability of the defect labels >= Reject.
	Reject float64 `json:"reject"`
	// PerClass optionally sets a reject threshold per defect label.
	PerClass map[string]float64 `json:"per_class,omitempty"`
	// Anomaly: an anomaly model's pred_score at or above this is anomalous
	// (0: use the model's own pred_label).
	Anomaly float64 `json:"anomaly,omitempty"`
	// Score and IoU: detection confidence and NMS overlap (defaults 0.25, 0.45).
	Score float64 `json:"score,omitempty"`
	IoU   float64 `json:"iou,omitempty"`
	// Calibration records how Pass and Reject were chosen.
	Calibration *Calibration `json:"calibration,omitempty"`
}

// Calibration is the outcome of threshold calibration on a split.
type Calibration struct {
	Split             string  `json:"split"`  // e.g. "val"
	Images            int     `json:"images"` // parts it was calibrated on
	TargetEscape      float64 `json:"target_escape_rate"`
	TargetFalseReject float64 `json:"target_false_reject_rate"`
	AutomationRate    float64 `json:"automation_rate"` // share decided automatically at Pass/Reject
	EscapeRate        float64 `json:"escape_rate"`
	FalseRejectRate   float64 `json:"false_reject_rate"`
}

// Where the reference statistics were measured (Reference.Measured).
const (
	// MeasuredFrame: on the whole source image (the gray frame at full
	// resolution). Packages written before the field existed mean this.
	MeasuredFrame = "frame"
	// MeasuredInput: on the image as the model sees it, gray, resized to
	// the model input and before any letterbox padding. The engine measures
	// it while preprocessing, at the model's resolution, so it costs a
	// fraction of a full-frame pass on a megapixel camera.
	MeasuredInput = "input"
)

// Reference holds statistics of the training images, measured the way the
// serving side measures a frame (see Measured), for the out-of-distribution
// guardrail and the monitor's drift tests.
type Reference struct {
	Images int `json:"images"`
	// Measured says which image the statistics are of: MeasuredInput, or
	// MeasuredFrame (also when empty, for older packages).
	Measured   string       `json:"measured,omitempty"`
	Brightness Distribution `json:"brightness"` // mean gray level, 0..1
	Contrast   Distribution `json:"contrast"`   // standard deviation of gray, 0..1
	Sharpness  Distribution `json:"sharpness"`  // variance of the 3x3 Laplacian of gray/255
	// ClassMix is the share of each label in the training data.
	ClassMix map[string]float64 `json:"class_mix,omitempty"`
	// Confidence is the distribution of the top score on the validation split.
	Confidence *Distribution `json:"confidence,omitempty"`
}

// OnInput reports whether the statistics are of the model input
// (MeasuredInput) rather than of the whole frame.
func (r *Reference) OnInput() bool { return r != nil && r.Measured == MeasuredInput }

// Distribution summarises one statistic over the reference images. Hist
// (shares summing to 1) has len(Edges)-1 bins, for PSI.
type Distribution struct {
	Mean  float64   `json:"mean"`
	Std   float64   `json:"std"`
	Min   float64   `json:"min,omitempty"`
	Max   float64   `json:"max,omitempty"`
	P01   float64   `json:"p01,omitempty"`
	P50   float64   `json:"p50,omitempty"`
	P99   float64   `json:"p99,omitempty"`
	Edges []float64 `json:"edges,omitempty"`
	Hist  []float64 `json:"hist,omitempty"`
}

// Training says what the model was trained on.
type Training struct {
	Dataset string `json:"dataset"` // a path or a description
	// Fingerprint is "sha256:" + hex of the sorted lines "relpath<TAB>sha256(file)"
	// of every training image (see Fingerprint).
	Fingerprint string            `json:"fingerprint"`
	Images      int               `json:"images"`
	Classes     map[string]int    `json:"classes,omitempty"` // images per label
	Split       map[string]int    `json:"split,omitempty"`   // e.g. train, val, test
	Seed        int64             `json:"seed,omitempty"`
	Epochs      int               `json:"epochs,omitempty"`
	Augment     []string          `json:"augment,omitempty"`
	Extra       map[string]string `json:"extra,omitempty"` // free-form: script version, architecture
}

// Metrics are validation results.
type Metrics struct {
	Split           string                  `json:"split"`
	Images          int                     `json:"images,omitempty"`
	Accuracy        float64                 `json:"accuracy"`
	MacroF1         float64                 `json:"macro_f1,omitempty"`
	PerClass        map[string]ClassMetrics `json:"per_class,omitempty"`
	Confusion       [][]int                 `json:"confusion,omitempty"` // rows: true label, columns: predicted, in Labels order
	AutomationRate  float64                 `json:"automation_rate,omitempty"`
	EscapeRate      float64                 `json:"escape_rate,omitempty"`
	FalseRejectRate float64                 `json:"false_reject_rate,omitempty"`
	AUROC           float64                 `json:"auroc,omitempty"`
}

// ClassMetrics are one label's validation figures.
type ClassMetrics struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// ParseManifest decodes a manifest (unknown fields are errors, so a typo
// does not silently fall back to a default), fills documented defaults and
// validates it. The error is a *ManifestError listing every problem.
func ParseManifest(data []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, &ManifestError{Err: fmt.Errorf("parse: %w", err)}
	}
	if dec.More() {
		return nil, &ManifestError{Err: fmt.Errorf("parse: trailing data after the manifest object")}
	}
	m.ApplyDefaults()
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Marshal encodes m as indented JSON, the form ParseManifest reads.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// ApplyDefaults fills the fields whose default is documented.
func (m *Manifest) ApplyDefaults() {
	if m.Model.File == "" {
		m.Model.File = ModelFile
	}
	if m.Input.Layout == "" {
		m.Input.Layout = LayoutNCHW
	}
	if m.Input.Resize == "" {
		m.Input.Resize = ResizeStretch
	}
	if m.Input.Interpolation == "" {
		m.Input.Interpolation = InterpLinear
	}
	if m.Input.Orient == "" {
		m.Input.Orient = OrientNone
	}
	for i := range m.Outputs {
		if m.Outputs[i].Role == RoleBoxes && m.Outputs[i].BoxFormat == "" {
			m.Outputs[i].BoxFormat = BoxCXCYWH
		}
	}
	if m.Task == TaskDetect {
		if m.Thresholds.Score == 0 {
			m.Thresholds.Score = 0.25
		}
		if m.Thresholds.IoU == 0 {
			m.Thresholds.IoU = 0.45
		}
	}
}

var (
	hexSHA256   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	fingerprint = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	safeName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

var rolesByTask = map[string][]string{
	TaskClassify: {RoleLogits, RoleProbabilities, RoleHeatmap},
	TaskAnomaly:  {RoleScore, RoleLabel, RoleAnomalyMap, RoleMask},
	TaskDetect:   {RoleBoxes},
}

// Validate checks every rule and returns a *ManifestError listing all
// problems, or nil.
func (m *Manifest) Validate() error {
	v := validate.New("")
	if m.Format != ManifestFormat {
		v.Add("format", m.Format, fmt.Sprintf("is not a manifest format this build reads (it reads %d)", ManifestFormat))
	}
	if !safeName.MatchString(m.Name) {
		v.Add("name", m.Name, "must be a name of letters, digits, '.', '_' or '-'")
	}
	v.Required("version", m.Version, "the model's version, e.g. 1.2.0")
	v.OneOf("task", m.Task, TaskClassify, TaskAnomaly, TaskDetect)

	mv := v.At("model")
	if m.Model.File == "" || strings.Contains(m.Model.File, "/") || strings.HasPrefix(m.Model.File, ".") {
		mv.Add("file", m.Model.File, "must be a file name inside the package directory")
	}
	if !hexSHA256.MatchString(m.Model.SHA256) {
		mv.Add("sha256", m.Model.SHA256, "must be the 64 lower-case hex digits of sha256(model file)")
	}
	if m.Model.Precision != "" {
		mv.OneOf("precision", m.Model.Precision, "fp32", "fp16", "int8")
	}

	m.validateInput(v.At("input"))
	m.validateOutputs(v)
	m.validateLabels(v)
	m.validateThresholds(v.At("thresholds"))
	if r := m.Reference; r != nil {
		rv := v.At("reference")
		if r.Images <= 0 {
			rv.Add("images", r.Images, "must be > 0: the number of training images measured")
		}
		if r.Measured != "" {
			rv.OneOf("measured", r.Measured, MeasuredFrame, MeasuredInput)
		}
		validDist(rv.At("brightness"), &r.Brightness)
		validDist(rv.At("contrast"), &r.Contrast)
		validDist(rv.At("sharpness"), &r.Sharpness)
		if r.Confidence != nil {
			validDist(rv.At("confidence"), r.Confidence)
		}
		for _, k := range sortedKeys(r.ClassMix) {
			if !slices.Contains(m.Labels, k) {
				rv.At("class_mix").Add(k, k, "is not one of labels", m.Labels...)
			}
		}
	}
	if t := m.Training; t != nil {
		tv := v.At("training")
		if !fingerprint.MatchString(t.Fingerprint) {
			tv.Add("fingerprint", t.Fingerprint, "must be sha256:<64 hex digits> (see inference.Fingerprint)")
		}
		if t.Images < 0 {
			tv.Add("images", t.Images, "must be >= 0")
		}
		for _, k := range sortedKeys(t.Classes) {
			if !slices.Contains(m.Labels, k) {
				tv.At("classes").Add(k, k, "is not one of labels", m.Labels...)
			}
		}
	}
	if mt := m.Metrics; mt != nil {
		xv := v.At("metrics")
		v.Required("metrics.split", mt.Split, "the split the metrics were measured on, e.g. val")
		for name, x := range map[string]float64{"accuracy": mt.Accuracy, "macro_f1": mt.MacroF1, "automation_rate": mt.AutomationRate,
			"escape_rate": mt.EscapeRate, "false_reject_rate": mt.FalseRejectRate, "auroc": mt.AUROC} {
			if !(x >= 0 && x <= 1) {
				xv.Add(name, x, "must be in [0, 1]")
			}
		}
		for _, k := range sortedKeys(mt.PerClass) {
			if !slices.Contains(m.Labels, k) {
				xv.At("per_class").Add(k, k, "is not one of labels", m.Labels...)
			}
		}
		if len(mt.Confusion) > 0 {
			if len(mt.Confusion) != len(m.Labels) {
				xv.Add("confusion", len(mt.Confusion), fmt.Sprintf("must have one row per label (%d)", len(m.Labels)))
			}
			for i, row := range mt.Confusion {
				if len(row) != len(m.Labels) {
					xv.Index("confusion", i).Add("", len(row), fmt.Sprintf("must have one column per label (%d)", len(m.Labels)))
				}
			}
		}
	}
	if errs := v.Errors(); len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b *validate.FieldError) int { return strings.Compare(a.Field, b.Field) })
		return &ManifestError{Fields: errs}
	}
	return nil
}

func (m *Manifest) validateInput(v *validate.V) {
	in := &m.Input
	v.Required("name", in.Name, "the graph's input tensor name")
	v.OneOf("layout", in.Layout, LayoutNCHW, LayoutNHWC)
	v.OneOf("channels", in.Channels, ChannelsGray, ChannelsRGB, ChannelsBGR)
	v.OneOf("resize", in.Resize, ResizeStretch, ResizeLetterbox, ResizeCenterCrop)
	v.OneOf("interpolation", in.Interpolation, InterpLinear, InterpArea, InterpNearest)
	v.OneOf("orient", in.Orient, OrientNone, OrientLandscape)
	if !(in.Scale > 0) || math.IsInf(in.Scale, 0) {
		v.Add("scale", in.Scale, "must be > 0, e.g. 0.00392156862745098 (1/255)")
	}
	if in.PadValue < 0 || in.PadValue > 255 {
		v.Add("pad_value", in.PadValue, "must be in [0, 255]")
	}
	if len(in.Shape) != 4 {
		v.Add("shape", in.Shape, "must have 4 dimensions: [N,C,H,W] for nchw or [N,H,W,C] for nhwc (N may be -1)")
		return
	}
	if n := in.Shape[0]; n == 0 || n < -1 {
		v.Add("shape", in.Shape, "batch dimension must be -1 (dynamic) or >= 1")
	}
	_, h, w, c := in.dims()
	if h <= 0 || w <= 0 || c <= 0 {
		v.Add("shape", in.Shape, "height, width and channels must be fixed and > 0")
	}
	want := 3
	if in.Channels == ChannelsGray {
		want = 1
	}
	if c > 0 && c != want {
		v.Add("shape", in.Shape, fmt.Sprintf("has %d channels but channels is %q (%d)", c, in.Channels, want))
	}
	if in.Orient == OrientLandscape && h > w {
		v.Add("orient", in.Orient, fmt.Sprintf("turns parts so their long side runs along the width, but the input is %dx%d (taller than wide): give a landscape shape (W >= H) or drop orient", w, h))
	}
	if in.Windows != nil {
		m.validateWindows(v.At("windows"), h, w)
	}
	for _, f := range []struct {
		name string
		vals []float64
	}{{"mean", in.Mean}, {"std", in.Std}} {
		if len(f.vals) != 0 && len(f.vals) != 1 && len(f.vals) != want {
			if want == 1 {
				v.Add(f.name, f.vals, "must have 1 value (the input has one channel)")
			} else {
				v.Add(f.name, f.vals, fmt.Sprintf("must have 1 or %d values (one per channel)", want))
			}
		}
		for i, x := range f.vals {
			if math.IsNaN(x) || math.IsInf(x, 0) || (f.name == "std" && x <= 0) {
				v.Index(f.name, i).Add("", x, "must be finite (and > 0 for std)")
			}
		}
	}
}

func (m *Manifest) validateWindows(v *validate.V, h, w int) {
	ws := m.Input.Windows
	if !(ws.Overlap >= 0 && ws.Overlap < 1) {
		v.Add("overlap", ws.Overlap, "must be in [0, 1): the least overlap of neighbouring windows, a fraction of their side (e.g. 0.25)")
	}
	if !(ws.MinAspect >= 1 || ws.MinAspect == 0) || math.IsInf(ws.MinAspect, 0) {
		v.Add("min_aspect", ws.MinAspect, "must be a finite number >= 1: the long side over the short one from which a ROI gets windows (e.g. 1.3), or 0 for none along the long side")
	}
	if !(ws.Corners >= 0 && ws.Corners < 1) {
		v.Add("corners", ws.Corners, "must be in [0, 1): the side of the corner views, a fraction of the ROI's short side (e.g. 0.5), or 0 for none")
	}
	if ws.MinAspect == 0 && ws.Corners == 0 {
		v.Add("", "min_aspect 0, corners 0", "asks for no windows at all: drop windows, or give min_aspect >= 1 or corners in (0, 1)")
	}
	if h > 0 && w > 0 && h != w {
		v.Add("", fmt.Sprintf("%dx%d", w, h), "windows are square and need a square input (H = W); drop windows or export a square model")
	}
	if m.Task != TaskClassify && m.Task != TaskAnomaly {
		v.Add("", m.Task, "windows decide a part on its lowest P(good): for classify and anomaly models, not "+m.Task)
	}
}

// dims returns N, H, W, C of the input shape per layout.
func (in *Input) dims() (n, h, w, c int) {
	if len(in.Shape) != 4 {
		return 0, 0, 0, 0
	}
	s := in.Shape
	if in.Layout == LayoutNHWC {
		return int(s[0]), int(s[1]), int(s[2]), int(s[3])
	}
	return int(s[0]), int(s[2]), int(s[3]), int(s[1])
}

func (m *Manifest) validateOutputs(v *validate.V) {
	if len(m.Outputs) == 0 {
		v.Add("outputs", nil, "must list the graph outputs LineSight reads, with their role")
		return
	}
	roles := rolesByTask[m.Task]
	names := map[string]bool{}
	count := map[string]int{}
	for i, o := range m.Outputs {
		ov := v.Index("outputs", i)
		ov.Required("name", o.Name, "the graph's output tensor name")
		if names[o.Name] {
			ov.Add("name", o.Name, "is listed twice")
		}
		names[o.Name] = true
		if roles != nil {
			ov.OneOf("role", o.Role, roles...)
		}
		count[o.Role]++
		if o.Role == RoleBoxes {
			ov.OneOf("box_format", o.BoxFormat, BoxCXCYWH, BoxXYXY)
		} else if o.BoxFormat != "" {
			ov.Add("box_format", o.BoxFormat, "only applies to role boxes")
		}
	}
	for _, r := range sortedKeys(count) {
		if n := count[r]; n > 1 {
			v.Add("outputs", r, fmt.Sprintf("role %s is given to %d outputs; each role at most once", r, n))
		}
	}
	switch m.Task {
	case TaskClassify:
		if count[RoleLogits]+count[RoleProbabilities] != 1 {
			v.Add("outputs", nil, "a classifier needs exactly one output with role logits or probabilities")
		}
	case TaskAnomaly:
		if count[RoleScore] != 1 {
			v.Add("outputs", nil, "an anomaly model needs an output with role score (Anomalib's pred_score)")
		}
	case TaskDetect:
		if count[RoleBoxes] != 1 {
			v.Add("outputs", nil, "a detector needs an output with role boxes (Ultralytics' output0)")
		}
	}
}

func (m *Manifest) validateLabels(v *validate.V) {
	min := 2
	if m.Task == TaskDetect {
		min = 1
	}
	if len(m.Labels) < min {
		v.Add("labels", m.Labels, fmt.Sprintf("must list at least %d labels, in the order of the model's outputs", min))
	}
	seen := map[string]bool{}
	for i, l := range m.Labels {
		if strings.TrimSpace(l) == "" {
			v.Index("labels", i).Add("", l, "must not be empty")
		}
		if seen[l] {
			v.Index("labels", i).Add("", l, "is listed twice")
		}
		seen[l] = true
	}
	for i, g := range m.GoodLabels {
		if !seen[g] {
			v.Index("good_labels", i).Add("", g, "is not one of labels", m.Labels...)
		}
	}
	switch m.Task {
	case TaskClassify:
		if len(m.GoodLabels) == 0 {
			v.Add("good_labels", nil, "must name the label(s) of good parts")
		} else if len(m.GoodLabels) >= len(m.Labels) {
			v.Add("good_labels", m.GoodLabels, "must leave at least one defect label")
		}
	case TaskAnomaly:
		if len(m.Labels) != 2 || len(m.GoodLabels) != 1 || (len(m.Labels) == 2 && m.GoodLabels[0] != m.Labels[0]) {
			v.Add("good_labels", m.GoodLabels, "an anomaly model has labels [good, anomalous] and good_labels [good]")
		}
	}
}

func (m *Manifest) validateThresholds(v *validate.V) {
	t := &m.Thresholds
	for _, f := range []struct {
		name string
		x    float64
		zero bool
	}{{"pass", t.Pass, false}, {"reject", t.Reject, false}, {"anomaly", t.Anomaly, true}, {"score", t.Score, true}, {"iou", t.IoU, true}} {
		if !(f.x > 0 && f.x <= 1) && !(f.zero && f.x == 0) {
			v.Add(f.name, f.x, "must be in (0, 1]")
		}
	}
	for _, k := range sortedKeys(t.PerClass) {
		if !slices.Contains(m.Labels, k) || slices.Contains(m.GoodLabels, k) {
			v.At("per_class").Add(k, k, "is not a defect label")
		}
		if x := t.PerClass[k]; !(x > 0 && x <= 1) {
			v.At("per_class").Add(k, x, "must be in (0, 1]")
		}
	}
}

func validDist(v *validate.V, d *Distribution) {
	for name, x := range map[string]float64{"mean": d.Mean, "std": d.Std, "min": d.Min, "max": d.Max, "p01": d.P01, "p50": d.P50, "p99": d.P99} {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			v.Add(name, x, "must be finite")
		}
	}
	if d.Std < 0 {
		v.Add("std", d.Std, "must be >= 0")
	}
	if len(d.Hist) == 0 && len(d.Edges) == 0 {
		return
	}
	if len(d.Edges) != len(d.Hist)+1 {
		v.Add("edges", len(d.Edges), fmt.Sprintf("must have len(hist)+1 = %d values", len(d.Hist)+1))
	}
	for i := 1; i < len(d.Edges); i++ {
		if !(d.Edges[i] > d.Edges[i-1]) {
			v.Add("edges", d.Edges, "must be strictly increasing")
			break
		}
	}
	sum := 0.0
	for _, h := range d.Hist {
		if h < 0 {
			v.Add("hist", d.Hist, "shares must be >= 0")
			break
		}
		sum += h
	}
	if math.Abs(sum-1) > 1e-3 {
		v.Add("hist", sum, "shares must sum to 1")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// InputSize returns the model input's width, height and channel count.
func (m *Manifest) InputSize() (w, h, c int) {
	_, h, w, c = m.Input.dims()
	return w, h, c
}

// Batch is the input's fixed batch size, or -1 when it is dynamic.
func (m *Manifest) Batch() int {
	n, _, _, _ := m.Input.dims()
	return n
}

// OutputByRole returns the output with role r.
func (m *Manifest) OutputByRole(r string) (Output, bool) {
	for _, o := range m.Outputs {
		if o.Role == r {
			return o, true
		}
	}
	return Output{}, false
}

// IsGood reports whether label is a good-part label.
func (m *Manifest) IsGood(label string) bool { return slices.Contains(m.GoodLabels, label) }
