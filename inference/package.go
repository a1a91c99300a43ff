package inference

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/internal/atomicfile"
)

// Package is a loaded model: its manifest and the bytes of its graph,
// checked against the manifest's sha256.
type Package struct {
	// Dir is the package directory ("" for a bare .onnx file).
	Dir string
	// ModelPath is the .onnx file.
	ModelPath string
	Manifest  *Manifest
	// Model is the content of ModelPath.
	Model []byte
	// Assumed lists, for a bare .onnx, every manifest value that was not in
	// the graph or the flags and was assumed instead.
	Assumed []string
}

// LoadPackage reads dir/manifest.json and the model file it names, and
// verifies the file's sha256. Errors wrap ErrNoModel, ErrInvalidManifest
// or ErrChecksum.
func LoadPackage(dir string) (*Package, error) {
	mpath := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(mpath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("load model package %s: %w: no %s (a package is a directory with %s and %s)", dir, ErrNoModel, ManifestFile, ModelFile, ManifestFile)
		}
		return nil, fmt.Errorf("load model package: %w", err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		var me *ManifestError
		if errors.As(err, &me) {
			me.Path = mpath
		}
		return nil, err
	}
	p := &Package{Dir: dir, ModelPath: filepath.Join(dir, m.Model.File), Manifest: m}
	if p.Model, err = os.ReadFile(p.ModelPath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("load model package %s: %w: %s is missing", dir, ErrNoModel, m.Model.File)
		}
		return nil, fmt.Errorf("load model package: %w", err)
	}
	if got := SHA256(p.Model); got != m.Model.SHA256 {
		return nil, fmt.Errorf("load model package %s: %w: %s has sha256 %s, the manifest says %s (a damaged copy, or the manifest of another model)",
			dir, ErrChecksum, m.Model.File, got, m.Model.SHA256)
	}
	return p, nil
}

// SHA256 returns the lower-case hex sha256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Fingerprint computes a training-data fingerprint the way the manifest
// defines it: "sha256:" + hex sha256 of the lines "relpath\tsha256(file)\n",
// sorted by relpath (with '/' separators), over files. Python computes the
// same with hashlib; the fingerprint changes when any image is added,
// removed, renamed or altered.
func Fingerprint(root string, files []string) (string, error) {
	lines := make([]string, 0, len(files))
	for _, f := range files {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			return "", fmt.Errorf("fingerprint: %w", err)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("fingerprint: %w", err)
		}
		lines = append(lines, filepath.ToSlash(rel)+"\t"+SHA256(b)+"\n")
	}
	sort.Strings(lines)
	return "sha256:" + SHA256([]byte(strings.Join(lines, ""))), nil
}

// CheckGraph compares the manifest with the graph's signature: the input
// name, rank and fixed dimensions, and every listed output. The error wraps
// ErrShape and names what differs.
func CheckGraph(m *Manifest, sig *onnx.Signature) error {
	in, ok := sig.Input(m.Input.Name)
	if !ok {
		var names []string
		for _, p := range sig.Inputs {
			names = append(names, p.Name)
		}
		return fmt.Errorf("%w: the manifest's input %q is not in the graph (its inputs: %v)", ErrShape, m.Input.Name, names)
	}
	if len(in.Shape) != len(m.Input.Shape) {
		return fmt.Errorf("%w: input %q is %v in the graph but %v in the manifest", ErrShape, in.Name, in.Shape, m.Input.Shape)
	}
	for i, d := range in.Shape {
		md := m.Input.Shape[i]
		if d > 0 && md > 0 && d != md {
			return fmt.Errorf("%w: input %q is %v in the graph but %v in the manifest (dimension %d)", ErrShape, in.Name, in.Shape, m.Input.Shape, i)
		}
	}
	for _, o := range m.Outputs {
		if _, ok := sig.Output(o.Name); !ok {
			var names []string
			for _, p := range sig.Outputs {
				names = append(names, p.Name)
			}
			return fmt.Errorf("%w: the manifest's output %q (%s) is not in the graph (its outputs: %v)", ErrShape, o.Name, o.Role, names)
		}
	}
	if m.Task == TaskClassify {
		o, _ := m.OutputByRole(RoleLogits)
		if o.Name == "" {
			o, _ = m.OutputByRole(RoleProbabilities)
		}
		p, _ := sig.Output(o.Name)
		if k := p.Shape[len(p.Shape)-1]; k > 0 && int(k) != len(m.Labels) {
			return fmt.Errorf("%w: output %q has %d classes in the graph but the manifest lists %d labels", ErrShape, o.Name, k, len(m.Labels))
		}
	}
	return nil
}

// BareOptions supply what a bare .onnx file cannot say about itself. Zero
// values are assumed (and reported in Package.Assumed).
type BareOptions struct {
	Task     string  // classify (assumed), anomaly, detect
	Channels string  // rgb (assumed), bgr, gray
	Resize   string  // stretch (assumed; letterbox for detect), center-crop
	Scale    float64 // 1/255 (assumed)
	Mean     []float64
	Std      []float64
	Labels   []string // class_0.. (assumed)
	Good     []string // the first label (assumed)
}

// LoadBare makes a Package from an .onnx file without a manifest: the
// input name and shape come from the graph, outputs are matched by name
// (Anomalib and Ultralytics names) or position, and everything else from
// opt or an assumption listed in Package.Assumed.
func LoadBare(rt *onnx.Runtime, path string, opt BareOptions) (*Package, error) {
	model, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("load %s: %w", path, ErrNoModel)
		}
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	sig, err := rt.Inspect(model)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if len(sig.Inputs) != 1 {
		return nil, fmt.Errorf("load %s: %w: the graph has %d inputs; LineSight feeds exactly one", path, ErrShape, len(sig.Inputs))
	}
	var assumed []string
	assume := func(format string, a ...any) { assumed = append(assumed, fmt.Sprintf(format, a...)) }
	in := sig.Inputs[0]
	m := &Manifest{Format: ManifestFormat, Version: "0.0.0", Task: opt.Task}
	m.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if !safeName.MatchString(m.Name) {
		m.Name = "model"
	}
	m.Model = ModelInfo{File: filepath.Base(path), SHA256: SHA256(model)}
	if m.Task == "" {
		switch {
		case hasOutput(sig, "pred_score"):
			m.Task = TaskAnomaly
		case hasOutput(sig, "output0") && len(sig.Outputs) == 1:
			m.Task = TaskDetect
		default:
			m.Task = TaskClassify
		}
		assume("task %s (from the output names; set --task)", m.Task)
	}
	m.Input = Input{Name: in.Name, Shape: slices.Clone(in.Shape), Channels: opt.Channels, Resize: opt.Resize, Scale: opt.Scale, Mean: opt.Mean, Std: opt.Std}
	if len(in.Shape) == 4 && (in.Shape[3] == 1 || in.Shape[3] == 3) && in.Shape[1] != 1 && in.Shape[1] != 3 {
		m.Input.Layout = LayoutNHWC
		assume("layout nhwc (the last dimension of %v looks like channels)", in.Shape)
	} else {
		m.Input.Layout = LayoutNCHW
	}
	if m.Input.Channels == "" {
		m.Input.Channels = ChannelsRGB
		if _, _, _, c := m.Input.dims(); c == 1 {
			m.Input.Channels = ChannelsGray
		}
		assume("channels %s (set --channels)", m.Input.Channels)
	}
	if m.Input.Resize == "" {
		m.Input.Resize = ResizeStretch
		if m.Task == TaskDetect {
			m.Input.Resize = ResizeLetterbox
			m.Input.PadValue = 114
		}
		assume("resize %s (set --resize)", m.Input.Resize)
	}
	if m.Input.Scale == 0 {
		m.Input.Scale = 1.0 / 255
		assume("scale 1/255, no mean/std normalisation (set --scale, --mean, --std)")
	}
	var outNames []string
	for _, o := range sig.Outputs {
		outNames = append(outNames, o.Name)
	}
	switch m.Task {
	case TaskAnomaly:
		for name, role := range map[string]string{"pred_score": RoleScore, "pred_label": RoleLabel, "anomaly_map": RoleAnomalyMap, "pred_mask": RoleMask} {
			if slices.Contains(outNames, name) {
				m.Outputs = append(m.Outputs, Output{Name: name, Role: role})
			}
		}
		slices.SortFunc(m.Outputs, func(a, b Output) int { return strings.Compare(a.Name, b.Name) })
		m.Labels, m.GoodLabels = []string{"good", "anomalous"}, []string{"good"}
		m.Thresholds = Thresholds{Pass: 0.5, Reject: 0.5}
		assume("thresholds pass 0.5, reject 0.5; the model's pred_label decides anomalous")
	case TaskDetect:
		m.Outputs = []Output{{Name: outNames[0], Role: RoleBoxes, BoxFormat: BoxCXCYWH}}
		assume("output %q is Ultralytics [1,4+K,N] with cx,cy,w,h boxes", outNames[0])
		m.Thresholds = Thresholds{Pass: 0.5, Reject: 0.5}
	default:
		m.Outputs = []Output{{Name: outNames[0], Role: RoleLogits}}
		assume("output %q holds logits (softmax is applied; probabilities pass through it unchanged in order)", outNames[0])
		if len(outNames) > 1 {
			m.Outputs = append(m.Outputs, Output{Name: outNames[1], Role: RoleHeatmap})
			assume("output %q is a class-activation heatmap", outNames[1])
		}
		m.Thresholds = Thresholds{Pass: 0.5, Reject: 0.5}
		assume("thresholds pass 0.5, reject 0.5 (uncalibrated)")
	}
	m.Labels = append([]string(nil), opt.Labels...)
	if len(m.Labels) == 0 {
		k := 2
		if m.Task == TaskAnomaly {
			m.Labels = []string{"good", "anomalous"}
		} else {
			o, _ := sig.Output(m.Outputs[0].Name)
			if len(o.Shape) > 0 {
				last := o.Shape[len(o.Shape)-1]
				if m.Task == TaskDetect && len(o.Shape) == 3 {
					last = o.Shape[1] - 4
				}
				if last > 0 {
					k = int(last)
				}
			}
			for i := range k {
				m.Labels = append(m.Labels, fmt.Sprintf("class_%d", i))
			}
		}
		assume("labels %v (set --labels)", m.Labels)
	}
	m.GoodLabels = append([]string(nil), opt.Good...)
	if len(m.GoodLabels) == 0 && m.Task != TaskDetect {
		m.GoodLabels = []string{m.Labels[0]}
		assume("good label %q (set --good)", m.Labels[0])
	}
	m.ApplyDefaults()
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("load %s without a manifest: %w", path, err)
	}
	if err := CheckGraph(m, sig); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return &Package{ModelPath: path, Manifest: m, Model: model, Assumed: assumed}, nil
}

func hasOutput(sig *onnx.Signature, name string) bool {
	_, ok := sig.Output(name)
	return ok
}

// Load opens path as a model package directory, or as a bare .onnx file
// with bare supplying what the graph cannot tell (rt is needed only then).
func Load(rt *onnx.Runtime, path string, bare BareOptions) (*Package, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w: %v", path, ErrNoModel, err)
	}
	if st.IsDir() {
		return LoadPackage(path)
	}
	if rt == nil {
		return nil, fmt.Errorf("load model %s: a bare .onnx needs ONNX Runtime to read its signature", path)
	}
	return LoadBare(rt, path, bare)
}

// SetManifestFields replaces the top-level fields of dir's manifest.json
// with the JSON encoding of fields (key: the manifest's field name), keeps
// every other field as it was and where it was, checks the result with
// ParseManifest and only then replaces the file (temp file, fsync, rename,
// fsync of dir), so a failure leaves the old manifest in place.
func SetManifestFields(dir string, fields map[string]any) error {
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("rewrite manifest: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("rewrite manifest: %w", err)
	}
	out, err := replaceFields(data, fields)
	if err != nil {
		return fmt.Errorf("rewrite manifest %s: %w", path, err)
	}
	if _, err := ParseManifest(out); err != nil {
		return fmt.Errorf("rewrite manifest %s: the result would not load: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, append(out, '\n'), st.Mode().Perm()); err != nil {
		return fmt.Errorf("rewrite manifest: %w", err)
	}
	return nil
}

// replaceFields re-indents the JSON object doc with the values of fields
// in place of its own (new keys at the end), keeping its key order (pure).
func replaceFields(doc []byte, fields map[string]any) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	seen := map[string]bool{}
	put := func(k string, v json.RawMessage) error {
		if len(seen) > 0 {
			buf.WriteByte(',')
		}
		seen[k] = true
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		if f, ok := fields[k]; ok {
			b, err := json.Marshal(f)
			if err != nil {
				return fmt.Errorf("field %s: %w", k, err)
			}
			v = b
		}
		buf.Write(v)
		return nil
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("field %s: %w", k, err)
		}
		if seen[k] {
			return nil, fmt.Errorf("field %s appears twice", k)
		}
		if err := put(k, v); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if !seen[k] {
			if err := put(k, nil); err != nil {
				return nil, err
			}
		}
	}
	buf.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
