package inference

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"slices"
	"time"

	"gocv.io/x/gocv"

	"github.com/linesight/linesight/inference/onnx"
)

// Stage is the latency distribution of one stage over a benchmark.
type Stage struct {
	Name          string
	N             int
	P50, P99, Max time.Duration
	// PerSecond is the throughput: frames per second of back-to-back calls.
	PerSecond float64
}

func stageOf(name string, ds []time.Duration, wall time.Duration) Stage {
	slices.Sort(ds)
	s := Stage{Name: name, N: len(ds)}
	if len(ds) == 0 {
		return s
	}
	s.P50 = ds[len(ds)/2]
	s.P99 = ds[min(len(ds)-1, len(ds)*99/100)]
	s.Max = ds[len(ds)-1]
	if wall > 0 {
		s.PerSecond = float64(len(ds)) / wall.Seconds()
	}
	return s
}

// BenchOptions configure Bench.
type BenchOptions struct {
	N       int // frames per stage (default 200)
	Warmup  int // frames run first and not counted (default 10)
	Options onnx.Options
	// Frame is the image benchmarked; zero makes a 640x480 BGR test frame.
	Frame gocv.Mat
	// OpenCV also runs the graph with OpenCV's DNN module. Caveat: OpenCV
	// 4.6 throws a C++ exception on graphs it cannot import (e.g. Clip with
	// min/max inputs, bool outputs) and gocv 0.31 does not catch it, so
	// the process aborts; ask for it only on graphs known to import.
	OpenCV bool
}

// BenchReport is one model's benchmark.
type BenchReport struct {
	Model, Version, Precision, Provider string
	Stages                              []Stage // preprocess, run, decode, end-to-end, opencv-dnn
	// Views is the number of views the engine scored per frame end to end:
	// 1, or with input windows 1 + the frame's windows.
	Views int
	// OpenCVErr says why OpenCV's DNN module could not run the model, if so.
	OpenCVErr string
	// OpenCVMaxDiff is the largest difference between ONNX Runtime's and
	// OpenCV's first output on the same input tensor.
	OpenCVMaxDiff float64
}

// Bench measures preprocess, run and decode separately, the engine end to
// end, and OpenCV's DNN module (gocv ReadNetFromONNX) running the same
// graph on the same tensor. Single frames, batch 1, one caller.
func Bench(rt *onnx.Runtime, pkg *Package, o BenchOptions) (*BenchReport, error) {
	if o.N <= 0 {
		o.N = 200
	}
	if o.Warmup <= 0 {
		o.Warmup = 10
	}
	frame := o.Frame
	if frame.Ptr() == nil || frame.Empty() {
		frame = gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 120, 150, 0), 480, 640, gocv.MatTypeCV8UC3)
		defer frame.Close()
		gocv.Circle(&frame, image.Pt(320, 240), 60, color.RGBA{R: 230, G: 230, B: 230, A: 255}, -1)
	}
	man := pkg.Manifest
	rep := &BenchReport{Model: man.Name, Version: man.Version, Precision: man.Model.Precision}
	dec := newDecoder(man)
	pre := NewPreprocess(man.Input)
	shape := append([]int64{1}, man.Input.Shape[1:]...)
	sess, err := rt.NewSession(onnx.SessionSpec{Model: pkg.Model, Input: man.Input.Name, Shape: shape, Outputs: dec.names}, o.Options, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer sess.Close()
	rep.Provider = sess.Provider()
	pp := NewPreprocessor(pre)
	defer pp.Close()
	ctx := context.Background()

	measure := func(name string, f func() error) error {
		for range o.Warmup {
			if err := f(); err != nil {
				return fmt.Errorf("bench %s: %w", name, err)
			}
		}
		ds := make([]time.Duration, o.N)
		start := time.Now()
		for i := range ds {
			t0 := time.Now()
			if err := f(); err != nil {
				return fmt.Errorf("bench %s: %w", name, err)
			}
			ds[i] = time.Since(t0)
		}
		rep.Stages = append(rep.Stages, stageOf(name, ds, time.Since(start)))
		return nil
	}
	var g Geometry
	if err := measure("preprocess", func() (err error) { g, err = pp.Run(frame, image.Rectangle{}, sess.Input()); return err }); err != nil {
		return nil, err
	}
	if err := measure("run", func() error { return sess.Run(ctx) }); err != nil {
		return nil, err
	}
	var res Result
	if err := measure("decode", func() error { return dec.decode(sess.Outputs(), 0, g, &res) }); err != nil {
		return nil, err
	}
	opt := o.Options
	opt.Sessions = 1
	e, err := Open(rt, pkg, Config{Options: opt})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer e.Close()
	if err := measure("end-to-end", func() error {
		r, err := e.Run(ctx, Frame{Image: frame})
		rep.Views = r.Views
		return err
	}); err != nil {
		return nil, err
	}
	// OpenCV DNN on the same tensor.
	ortOut := slices.Clone(sess.Outputs()[0].Data)
	if _, err := pp.Run(frame, image.Rectangle{}, sess.Input()); err == nil {
		sess.Run(ctx)
		ortOut = slices.Clone(sess.Outputs()[0].Data)
	}
	if !o.OpenCV {
		rep.OpenCVErr = "not asked for"
		return rep, nil
	}
	if err := benchOpenCV(rep, pkg, sess.Input(), shape, dec.names[0], ortOut, measure); err != nil {
		rep.OpenCVErr = err.Error()
	}
	return rep, nil
}

func benchOpenCV(rep *BenchReport, pkg *Package, input []float32, shape []int64, out string, ortOut []float32, measure func(string, func() error) error) error {
	net, err := gocv.ReadNetFromONNXBytes(pkg.Model)
	if err != nil {
		return fmt.Errorf("opencv cannot read the graph: %w", err)
	}
	defer net.Close()
	if net.Empty() {
		return fmt.Errorf("opencv read an empty network")
	}
	net.SetPreferableBackend(gocv.NetBackendOpenCV)
	net.SetPreferableTarget(gocv.NetTargetCPU)
	dims := make([]int, len(shape))
	for i, d := range shape {
		dims[i] = int(d)
	}
	blob := gocv.NewMatWithSizes(dims, gocv.MatTypeCV32F)
	defer blob.Close()
	data, err := blob.DataPtrFloat32()
	if err != nil {
		return err
	}
	copy(data, input)
	var last []float32
	forward := func() error {
		net.SetInput(blob, "")
		m := net.Forward(out)
		defer m.Close()
		if m.Empty() {
			return fmt.Errorf("opencv forward gave no output %q", out)
		}
		if m.Type() == gocv.MatTypeCV32F {
			v, err := m.DataPtrFloat32()
			if err != nil {
				return err
			}
			last = append(last[:0], v...)
		}
		return nil
	}
	if err := measure("opencv-dnn run", forward); err != nil {
		return err
	}
	if len(last) == len(ortOut) {
		for i := range last {
			d := float64(last[i] - ortOut[i])
			rep.OpenCVMaxDiff = max(rep.OpenCVMaxDiff, max(d, -d))
		}
	} else {
		rep.OpenCVMaxDiff = -1
	}
	return nil
}
