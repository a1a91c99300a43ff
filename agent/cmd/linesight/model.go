package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gocv.io/x/gocv"

	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/internal/cli"
)

// modelSubcommands are the subcommands of `linesight model`. To add one
// (issue 5's eval), add its line here and its function in its own file.
func modelSubcommands() []command {
	return []command{
		{Name: "inspect", Summary: "print a model's manifest and graph: linesight model inspect DIR|FILE.onnx", Run: modelInspectCmd},
		{Name: "bench", Summary: "latency and throughput per stage: linesight model bench DIR [DIR...]", Run: modelBenchCmd},
		{Name: "eval", Summary: "measure a model on a labelled folder: linesight model eval --model DIR --data DIR [--policy FILE] [--json]", Run: modelEvalCmd},
		{Name: "calibrate", Summary: "set the pass/reject thresholds from the Go engine's scores on a validation folder: linesight model calibrate --model DIR --data DIR", Run: modelCalibrateCmd},
	}
}

// modelCmd dispatches `linesight model SUBCOMMAND`.
func modelCmd(ctx context.Context, stdio Stdio, args []string) error {
	sub := modelSubcommands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stdio.Out, "Usage: linesight model SUBCOMMAND [flags]\n\nSubcommands:")
		for _, c := range sub {
			fmt.Fprintf(stdio.Out, "  %-10s %s\n", c.Name, c.Summary)
		}
		if len(args) == 0 {
			return &cli.UsageError{Err: fmt.Errorf("a subcommand is required")}
		}
		return nil
	}
	for _, c := range sub {
		if c.Name == args[0] {
			return c.Run(ctx, stdio, args[1:])
		}
	}
	var names []string
	for _, c := range sub {
		names = append(names, c.Name)
	}
	return &cli.UsageError{Err: fmt.Errorf("unknown model subcommand %q; use one of: %s", args[0], strings.Join(names, ", "))}
}

// bareFlags registers the flags that describe a bare .onnx file.
func bareFlags(fs interface {
	String(name, value, usage string) *string
}) func() (inference.BareOptions, error) {
	task := fs.String("task", "", "bare .onnx: classify, anomaly or detect (default: guessed from the outputs)")
	channels := fs.String("channels", "", "bare .onnx: rgb, bgr or gray (default rgb)")
	resize := fs.String("resize", "", "bare .onnx: stretch, letterbox or center-crop")
	scale := fs.String("scale", "", "bare .onnx: pixel scale (default 1/255)")
	mean := fs.String("mean", "", "bare .onnx: per-channel mean after scale, comma-separated")
	std := fs.String("std", "", "bare .onnx: per-channel std, comma-separated")
	labels := fs.String("labels", "", "bare .onnx: class labels in output order, comma-separated")
	good := fs.String("good", "", "bare .onnx: good-part labels, comma-separated")
	return func() (inference.BareOptions, error) {
		o := inference.BareOptions{Task: *task, Channels: *channels, Resize: *resize, Labels: splitList(*labels), Good: splitList(*good)}
		var err error
		if *scale != "" {
			if o.Scale, err = parseFloat(*scale); err != nil {
				return o, fmt.Errorf("--scale: %w", err)
			}
		}
		if o.Mean, err = parseFloats(*mean); err != nil {
			return o, fmt.Errorf("--mean: %w", err)
		}
		if o.Std, err = parseFloats(*std); err != nil {
			return o, fmt.Errorf("--std: %w", err)
		}
		return o, nil
	}
}

func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(p))
	}
	return out
}

func parseFloat(s string) (float64, error) {
	if a, b, ok := strings.Cut(s, "/"); ok {
		x, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
		y, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
		if err1 != nil || err2 != nil || y == 0 {
			return 0, fmt.Errorf("%q is not a number or fraction", s)
		}
		return x / y, nil
	}
	return strconv.ParseFloat(s, 64)
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, p := range splitList(s) {
		x, err := parseFloat(p)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// loadModel opens the runtime and loads path as a package or bare .onnx.
func loadModel(lib, path string, bare inference.BareOptions) (*onnx.Runtime, *inference.Package, error) {
	rt, err := onnx.OpenRuntime(onnx.ProcessSearch(lib))
	if err != nil {
		return nil, nil, &cli.UsageError{Err: err}
	}
	pkg, err := inference.Load(rt, path, bare)
	if err != nil {
		rt.Close()
		return nil, nil, modelInputError(err)
	}
	return rt, pkg, nil
}

// modelInputError marks errors caused by the model files the user named
// (missing, corrupt, inconsistent) as usage errors: exit code 2.
func modelInputError(err error) error {
	for _, target := range []error{inference.ErrNoModel, inference.ErrInvalidManifest, inference.ErrChecksum,
		inference.ErrShape, inference.ErrInvalidModel, onnx.ErrSignature, onnx.ErrLibraryNotFound} {
		if errors.Is(err, target) {
			return &cli.UsageError{Err: err}
		}
	}
	return err
}

func modelInspectCmd(ctx context.Context, stdio Stdio, args []string) error {
	fs := newFlags("model inspect", stdio)
	lib := fs.String("onnxruntime-lib", "", "path of "+onnx.LibraryName)
	asJSON := fs.Bool("json", false, "print the manifest as JSON (defaults filled in)")
	bare := bareFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &cli.UsageError{Err: fmt.Errorf("want one model package directory or .onnx file, got %d arguments", fs.NArg())}
	}
	bo, err := bare()
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	rt, pkg, err := loadModel(*lib, fs.Arg(0), bo)
	if err != nil {
		return err
	}
	defer rt.Close()
	if *asJSON {
		b, err := pkg.Manifest.Marshal()
		if err != nil {
			return err
		}
		_, err = stdio.Out.Write(b)
		return err
	}
	sig, err := rt.Inspect(pkg.Model)
	if err != nil {
		return err
	}
	printManifest(stdio.Out, pkg, sig)
	if err := inference.CheckGraph(pkg.Manifest, sig); err != nil {
		return err
	}
	return nil
}

func printManifest(out io.Writer, pkg *inference.Package, sig *onnx.Signature) {
	m := pkg.Manifest
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	p := func(k, f string, a ...any) { fmt.Fprintf(w, "%s\t"+f+"\n", append([]any{k}, a...)...) }
	p("model", "%s %s (%s)", m.Name, m.Version, m.Task)
	if m.Description != "" {
		p("description", "%s", m.Description)
	}
	check := "matches the manifest"
	if pkg.Dir == "" {
		check = "computed; no manifest to check it against"
	}
	p("file", "%s (%d bytes, sha256 %s, %s)", pkg.ModelPath, len(pkg.Model), m.Model.SHA256, check)
	if m.Model.Precision != "" {
		p("precision", "%s, opset %d", m.Model.Precision, m.Model.Opset)
	}
	in := m.Input
	p("input", "%s %v %s %s", in.Name, in.Shape, in.Layout, in.Channels)
	p("preprocess", "resize %s (%s), orient %s, pad %g, scale %g, mean %v, std %v", in.Resize, in.Interpolation, in.Orient, in.PadValue, in.Scale, in.Mean, in.Std)
	if w := in.Windows; w != nil {
		var views []string
		if w.MinAspect >= 1 {
			views = append(views, fmt.Sprintf("a ROI at least %g:1 is also scored in squares of its short side along its long side (overlap >= %g)", w.MinAspect, w.Overlap))
		}
		if w.Corners > 0 {
			views = append(views, fmt.Sprintf("every ROI also in its four corners, squares of %g of its short side", w.Corners))
		}
		p("windows", "%s; the lowest P(good) decides", strings.Join(views, "; "))
	}
	for _, o := range m.Outputs {
		g, _ := sig.Output(o.Name)
		extra := ""
		if o.BoxFormat != "" {
			extra = " boxes " + o.BoxFormat
		}
		p("output", "%s: %s %v %s%s", o.Name, o.Role, g.Shape, g.Type, extra)
	}
	p("labels", "%s", strings.Join(m.Labels, ", "))
	p("good labels", "%s", strings.Join(m.GoodLabels, ", "))
	t := m.Thresholds
	p("thresholds", "pass %g, reject %g%s", t.Pass, t.Reject, perClass(t.PerClass))
	if m.Task == inference.TaskDetect {
		p("", "score %g, iou %g", t.Score, t.IoU)
	}
	if t.Anomaly > 0 {
		p("", "anomaly %g", t.Anomaly)
	}
	if c := t.Calibration; c != nil {
		p("calibration", "%s (%d images): automation %.1f%%, escapes %.2f%% (target %.2f%%), false rejects %.2f%% (target %.2f%%)",
			c.Split, c.Images, 100*c.AutomationRate, 100*c.EscapeRate, 100*c.TargetEscape, 100*c.FalseRejectRate, 100*c.TargetFalseReject)
	}
	if r := m.Reference; r != nil {
		p("reference", "%d images: brightness %.3f±%.3f, contrast %.3f±%.3f, sharpness %.4g±%.4g",
			r.Images, r.Brightness.Mean, r.Brightness.Std, r.Contrast.Mean, r.Contrast.Std, r.Sharpness.Mean, r.Sharpness.Std)
	} else {
		p("reference", "none (input drift cannot be monitored)")
	}
	if tr := m.Training; tr != nil {
		p("training", "%s, %d images, seed %d, fingerprint %s", tr.Dataset, tr.Images, tr.Seed, tr.Fingerprint)
	}
	if mt := m.Metrics; mt != nil {
		p("metrics", "%s: accuracy %.3f, macro F1 %.3f, automation %.1f%%, escapes %.2f%%, false rejects %.2f%%",
			mt.Split, mt.Accuracy, mt.MacroF1, 100*mt.AutomationRate, 100*mt.EscapeRate, 100*mt.FalseRejectRate)
	}
	var gin []string
	for _, i := range sig.Inputs {
		gin = append(gin, fmt.Sprintf("%s %v %s", i.Name, i.Shape, i.Type))
	}
	p("graph inputs", "%s", strings.Join(gin, "; "))
	w.Flush()
	if len(pkg.Assumed) > 0 {
		fmt.Fprintf(out, "\nNo manifest: %s is a bare .onnx. Assumed:\n", pkg.ModelPath)
		for _, a := range pkg.Assumed {
			fmt.Fprintf(out, "  - %s\n", a)
		}
	}
}

func perClass(m map[string]float64) string {
	if len(m) == 0 {
		return ""
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s %g", k, m[k]))
	}
	return " (reject per class: " + strings.Join(parts, ", ") + ")"
}

func modelBenchCmd(ctx context.Context, stdio Stdio, args []string) error {
	fs := newFlags("model bench", stdio)
	lib := fs.String("onnxruntime-lib", "", "path of "+onnx.LibraryName)
	n := fs.Int("n", 200, "frames per stage")
	threads := fs.Int("threads", 0, "ONNX Runtime intra-op threads (0: ONNX Runtime decides)")
	provider := fs.String("provider", onnx.ProviderCPU, "execution provider: "+strings.Join(onnx.Providers, ", "))
	fallback := fs.Bool("fallback", false, "fall back to cpu when the provider cannot start")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	opencv := fs.Bool("opencv", false, "also run the graph with OpenCV's DNN module (gocv ReadNetFromONNX); OpenCV 4.6 aborts the process on graphs it cannot import")
	framePath := fs.String("frame", "", "benchmark on this image (e.g. a part photo; a model with input windows scores an elongated one in several views); default a 640x480 BGR test frame")
	bare := bareFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return &cli.UsageError{Err: fmt.Errorf("want one or more model package directories or .onnx files")}
	}
	bo, err := bare()
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	rt, err := onnx.OpenRuntime(onnx.ProcessSearch(*lib))
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	defer rt.Close()
	var frame gocv.Mat // zero: Bench makes its test frame
	frameDesc := "640x480 BGR test frame"
	if *framePath != "" {
		frame = gocv.IMRead(*framePath, gocv.IMReadColor)
		defer frame.Close()
		if frame.Empty() {
			return &cli.UsageError{Err: fmt.Errorf("--frame %s: not an image OpenCV can decode; give a JPEG, PNG or BMP file", *framePath)}
		}
		frameDesc = fmt.Sprintf("%dx%d frame %s", frame.Cols(), frame.Rows(), filepath.Base(*framePath))
	}
	var reps []*inference.BenchReport
	for _, path := range fs.Args() {
		pkg, err := inference.Load(rt, path, bo)
		if err != nil {
			return modelInputError(err)
		}
		for _, a := range pkg.Assumed {
			fmt.Fprintf(stdio.Err, "%s: assumed %s\n", path, a)
		}
		rep, err := inference.Bench(rt, pkg, inference.BenchOptions{N: *n, OpenCV: *opencv, Frame: frame,
			Options: onnx.Options{Provider: *provider, Fallback: *fallback, IntraOpThreads: *threads, InterOpThreads: 1, Sessions: 1}})
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		reps = append(reps, rep)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(reps)
	}
	host, _ := os.Hostname()
	fmt.Fprintf(stdio.Out, "machine: %s, %s; %d frames per stage, %s, batch 1, threads %d\n\n", host, machineSummary(), *n, frameDesc, *threads)
	w := tabwriter.NewWriter(stdio.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "model\tprecision\tprovider\tstage\tp50\tp99\tframes/s\t")
	for _, r := range reps {
		for _, s := range r.Stages {
			name := s.Name
			if name == "end-to-end" && r.Views > 1 {
				name = fmt.Sprintf("end-to-end (%d views)", r.Views)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t\n", r.Model, r.Precision, r.Provider, name, fmtDur(s.P50), fmtDur(s.P99), s.PerSecond)
		}
		if r.OpenCVErr != "" && *opencv {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t\t\t\n", r.Model, r.Precision, "opencv", "opencv-dnn run", "n/a")
		}
	}
	w.Flush()
	for _, r := range reps {
		if !*opencv {
			continue
		}
		if r.OpenCVErr != "" {
			fmt.Fprintf(stdio.Out, "\n%s %s: OpenCV DNN could not run it: %s\n", r.Model, r.Precision, firstLine(r.OpenCVErr))
		} else if r.OpenCVMaxDiff >= 0 {
			fmt.Fprintf(stdio.Out, "\n%s %s: OpenCV DNN and ONNX Runtime outputs differ by at most %.2g on the same tensor\n", r.Model, r.Precision, r.OpenCVMaxDiff)
		}
	}
	return nil
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
