package onnx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/linesight/linesight/internal/affinity"
	ort "github.com/yalue/onnxruntime_go"
)

// Port is one input or output of a graph as ONNX Runtime reads it.
type Port struct {
	Name string
	// Shape has -1 for a symbolic dimension (e.g. the batch).
	Shape []int64
	// Type is the element type, e.g. "float32", "bool", "int64".
	Type string
}

// Signature is a graph's inputs and outputs.
type Signature struct {
	Inputs, Outputs []Port
}

// Output returns the output named name.
func (s *Signature) Output(name string) (Port, bool) {
	for _, p := range s.Outputs {
		if p.Name == name {
			return p, true
		}
	}
	return Port{}, false
}

// Input returns the input named name.
func (s *Signature) Input(name string) (Port, bool) {
	for _, p := range s.Inputs {
		if p.Name == name {
			return p, true
		}
	}
	return Port{}, false
}

// Inspect loads model with ONNX Runtime (on the CPU, without running it) and
// returns its inputs and outputs. A file ONNX Runtime cannot parse gives an
// error wrapping ErrInvalidModel.
func (r *Runtime) Inspect(model []byte) (*Signature, error) {
	if len(model) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrInvalidModel)
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidModel, err)
	}
	conv := func(infos []ort.InputOutputInfo) []Port {
		ps := make([]Port, len(infos))
		for i, in := range infos {
			ps[i] = Port{Name: in.Name, Shape: slices.Clone([]int64(in.Dimensions)), Type: elemType(in.DataType)}
		}
		return ps
	}
	return &Signature{Inputs: conv(ins), Outputs: conv(outs)}, nil
}

func elemType(t ort.TensorElementDataType) string {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return "float32"
	case ort.TensorElementDataTypeDouble:
		return "float64"
	case ort.TensorElementDataTypeFloat16:
		return "float16"
	case ort.TensorElementDataTypeBool:
		return "bool"
	case ort.TensorElementDataTypeInt64:
		return "int64"
	case ort.TensorElementDataTypeInt32:
		return "int32"
	case ort.TensorElementDataTypeUint8:
		return "uint8"
	case ort.TensorElementDataTypeInt8:
		return "int8"
	}
	return t.String()
}

// SessionSpec says which graph a Session runs and on which tensors.
type SessionSpec struct {
	Model []byte // the ONNX file's bytes
	Input string // the one float32 input the session feeds
	// Shape is the concrete input shape, batch included, e.g. [4 3 64 64].
	Shape   []int64
	Outputs []string // outputs to fetch, in this order
	// Buffers is the number of input tensors (0 means 1): with two, the
	// next frame is written into one while the other runs (RunBuffer).
	Buffers int
}

// Tensor is an output converted to float32 (bool gives 0 or 1). Its Data is
// owned by the Session and overwritten by the next Run.
type Tensor struct {
	Name  string
	Shape []int64
	Data  []float32
}

// Session runs one graph with tensors allocated once: Input is written in
// place and Outputs are read in place, so a Run allocates (almost) nothing.
//
// A Session is not safe for concurrent use: the engine gives each worker
// its own. Close it before the Runtime.
type Session struct {
	sess     *ort.DynamicAdvancedSession
	ins      []*ort.Tensor[float32] // the input buffers
	inputs   [][]ort.Value          // the run's input list for each buffer
	outs     []ort.Value
	conv     []Tensor
	ro       *ort.RunOptions
	provider string
	shape    []int64
	threads  int

	termMu     sync.Mutex
	terminated bool
	closed     bool
}

// NewSession creates a session for spec on the execution provider chosen
// from opt (see Plan), checks the graph's signature against spec and runs
// it once on zeros so that output shapes are known and the first frame is
// not slow. Errors wrap ErrInvalidModel, ErrSignature or
// ErrProviderUnavailable (as *ProviderError).
func (r *Runtime) NewSession(spec SessionSpec, opt Options, log *slog.Logger) (*Session, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sig, err := r.Inspect(spec.Model)
	if err != nil {
		return nil, err
	}
	if err := CheckSignature(sig, spec); err != nil {
		return nil, err
	}
	plan, skipped, err := r.Plan(opt)
	if err != nil {
		return nil, err
	}
	for _, sk := range skipped {
		log.Warn("execution provider skipped", "provider", sk.Provider, "reason", sk.Cause, "available", sk.Available)
	}
	var lastErr error
	for i, p := range plan {
		s, err := r.newSessionOn(spec, opt, p)
		if err == nil {
			if i > 0 || len(skipped) > 0 {
				log.Warn("execution provider fell back", "provider", p, "asked", opt.Provider)
			}
			log.Debug("onnx session ready", "provider", p, "input", spec.Input, "shape", spec.Shape)
			return s, nil
		}
		var pe *ProviderError
		if !errors.As(err, &pe) {
			return nil, err // the model, not the provider
		}
		lastErr = err
		if i < len(plan)-1 {
			log.Warn("execution provider failed; trying the next", "provider", p, "next", plan[i+1], "err", err)
		}
	}
	return nil, lastErr
}

// CheckSignature reports, wrapping ErrSignature, every way sig contradicts
// spec: the input missing or not float32, a fixed dimension that differs
// from spec.Shape, a missing output.
func CheckSignature(sig *Signature, spec SessionSpec) error {
	in, ok := sig.Input(spec.Input)
	if !ok {
		return fmt.Errorf("%w: the graph has no input %q (its inputs: %v)", ErrSignature, spec.Input, portNames(sig.Inputs))
	}
	if len(sig.Inputs) != 1 {
		return fmt.Errorf("%w: the graph has %d inputs %v; LineSight feeds exactly one", ErrSignature, len(sig.Inputs), portNames(sig.Inputs))
	}
	if in.Type != "float32" {
		return fmt.Errorf("%w: input %q is %s; LineSight feeds float32", ErrSignature, in.Name, in.Type)
	}
	if len(in.Shape) != len(spec.Shape) {
		return fmt.Errorf("%w: input %q has shape %v in the graph, %v requested (rank differs)", ErrSignature, in.Name, in.Shape, spec.Shape)
	}
	for i, d := range in.Shape {
		if spec.Shape[i] <= 0 {
			return fmt.Errorf("%w: requested input shape %v must be concrete", ErrSignature, spec.Shape)
		}
		if d > 0 && d != spec.Shape[i] {
			return fmt.Errorf("%w: input %q has shape %v in the graph, %v requested (dimension %d differs)", ErrSignature, in.Name, in.Shape, spec.Shape, i)
		}
	}
	if len(spec.Outputs) == 0 {
		return fmt.Errorf("%w: no outputs requested", ErrSignature)
	}
	for _, name := range spec.Outputs {
		o, ok := sig.Output(name)
		if !ok {
			return fmt.Errorf("%w: the graph has no output %q (its outputs: %v)", ErrSignature, name, portNames(sig.Outputs))
		}
		switch o.Type {
		case "float32", "float64", "bool", "int64", "int32", "uint8", "int8":
		default:
			return fmt.Errorf("%w: output %q has element type %s, which LineSight cannot decode", ErrSignature, name, o.Type)
		}
	}
	return nil
}

func portNames(ps []Port) []string {
	n := make([]string, len(ps))
	for i, p := range ps {
		n[i] = p.Name
	}
	return n
}

func (r *Runtime) newSessionOn(spec SessionSpec, opt Options, provider string) (_ *Session, err error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	defer so.Destroy()
	threads := opt.IntraThreads(provider, r.cores)
	if n := threads; n > 0 {
		if err := so.SetIntraOpNumThreads(n); err != nil {
			return nil, fmt.Errorf("intra-op threads: %w", err)
		}
	}
	if opt.InterOpThreads > 0 {
		if err := so.SetInterOpNumThreads(opt.InterOpThreads); err != nil {
			return nil, fmt.Errorf("inter-op threads: %w", err)
		}
	}
	if !opt.Spinning {
		if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return nil, fmt.Errorf("intra-op spinning: %w", err)
		}
	}
	if provider == ProviderCPU {
		// The pool's own threads on the model's CPUs; the calling thread
		// (thread 0 of the pool) is the engine's to pin.
		if aff := affinity.ORTAffinities(opt.CPUList(), threads); aff != "" {
			if err := so.AddSessionConfigEntry("session.intra_op_thread_affinities", aff); err != nil {
				return nil, fmt.Errorf("intra-op thread affinities %q: %w", aff, err)
			}
		}
	}
	avail, _ := r.AvailableProviders()
	if err := appendProvider(so, provider, opt.ProviderOptions[provider]); err != nil {
		return nil, &ProviderError{Provider: provider, Available: avail, Cause: err}
	}
	s := &Session{provider: provider, shape: slices.Clone(spec.Shape), threads: threads}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.sess, err = ort.NewDynamicAdvancedSessionWithONNXData(spec.Model, []string{spec.Input}, spec.Outputs, so)
	if err != nil {
		if provider != ProviderCPU {
			return nil, &ProviderError{Provider: provider, Available: avail, Cause: err}
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidModel, err)
	}
	for range max(1, spec.Buffers) {
		in, err := ort.NewEmptyTensor[float32](ort.NewShape(spec.Shape...))
		if err != nil {
			return nil, fmt.Errorf("allocate input %v: %w", spec.Shape, err)
		}
		s.ins = append(s.ins, in)
		s.inputs = append(s.inputs, []ort.Value{in})
	}
	if s.ro, err = ort.NewRunOptions(); err != nil {
		return nil, fmt.Errorf("run options: %w", err)
	}
	// Warm-up: ONNX Runtime allocates the outputs (of the graph's own
	// element types); they are then reused for every run.
	s.outs = make([]ort.Value, len(spec.Outputs))
	if err = s.sess.Run(s.inputs[0], s.outs); err != nil {
		if provider != ProviderCPU {
			return nil, &ProviderError{Provider: provider, Available: avail, Cause: err}
		}
		return nil, fmt.Errorf("%w: warm-up run: %v", ErrRun, err)
	}
	s.conv = make([]Tensor, len(spec.Outputs))
	for i, v := range s.outs {
		shape := []int64(v.GetShape())
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		s.conv[i] = Tensor{Name: spec.Outputs[i], Shape: slices.Clone(shape), Data: make([]float32, n)}
	}
	if err = s.convert(); err != nil {
		return nil, err
	}
	return s, nil
}

// appendProvider adds provider to so with its pass-through options.
func appendProvider(so *ort.SessionOptions, provider string, po map[string]string) error {
	switch provider {
	case ProviderCPU:
		return nil
	case ProviderCUDA:
		o, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return err
		}
		defer o.Destroy()
		if err := o.Update(po); err != nil {
			return fmt.Errorf("provider options: %w", err)
		}
		return so.AppendExecutionProviderCUDA(o)
	case ProviderTensorRT:
		o, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			return err
		}
		defer o.Destroy()
		if err := o.Update(po); err != nil {
			return fmt.Errorf("provider options: %w", err)
		}
		return so.AppendExecutionProviderTensorRT(o)
	case ProviderOpenVINO:
		return so.AppendExecutionProviderOpenVINO(po)
	case ProviderCoreML:
		return so.AppendExecutionProviderCoreMLV2(po)
	case ProviderQNN:
		return so.AppendExecutionProvider("QNN", po)
	case ProviderDML:
		id := 0
		if v, ok := po["device_id"]; ok {
			if _, err := fmt.Sscan(v, &id); err != nil {
				return fmt.Errorf("provider option device_id %q: not an integer", v)
			}
		}
		return so.AppendExecutionProviderDirectML(id)
	}
	return fmt.Errorf("unknown execution provider %q", provider)
}

// Provider is the execution provider this session runs on (config name).
func (s *Session) Provider() string { return s.provider }

// IntraThreads is the intra-op thread count the session was given (0: ONNX
// Runtime's own choice).
func (s *Session) IntraThreads() int { return s.threads }

// InputShape is the concrete input shape, batch included.
func (s *Session) InputShape() []int64 { return s.shape }

// Input is the (first) input tensor's data, written in place before Run.
func (s *Session) Input() []float32 { return s.ins[0].GetData() }

// Buffers is the number of input buffers (SessionSpec.Buffers).
func (s *Session) Buffers() int { return len(s.ins) }

// InputBuffer is input buffer k's data, written in place before
// RunBuffer(ctx, k). Writing one buffer while another runs is safe.
func (s *Session) InputBuffer(k int) []float32 { return s.ins[k].GetData() }

// Outputs are the last run's outputs, in SessionSpec.Outputs order; the
// slices are reused by the next Run.
func (s *Session) Outputs() []Tensor { return s.conv }

// Run runs the graph on Input. When ctx ends first, the run is terminated
// and the error wraps ErrDeadline; a run that finishes after ctx ended also
// reports ErrDeadline, since its result is late. Other failures wrap ErrRun.
func (s *Session) Run(ctx context.Context) error { return s.RunBuffer(ctx, 0) }

// RunBuffer is Run on input buffer k.
func (s *Session) RunBuffer(ctx context.Context, k int) error {
	if s.closed {
		return ErrClosed
	}
	if k < 0 || k >= len(s.ins) {
		return fmt.Errorf("%w: input buffer %d of %d", ErrRun, k, len(s.ins))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %v before the run started", ErrDeadline, context.Cause(ctx))
	}
	var wg sync.WaitGroup
	var stop func() bool
	if ctx.Done() != nil {
		wg.Add(1)
		stop = context.AfterFunc(ctx, func() {
			defer wg.Done()
			s.termMu.Lock()
			s.terminated = true
			s.ro.Terminate()
			s.termMu.Unlock()
		})
	}
	start := time.Now()
	err := s.sess.RunWithOptions(s.inputs[k], s.outs, s.ro)
	if stop != nil {
		if stop() {
			wg.Done() // the AfterFunc will never run
		}
		wg.Wait()
		if s.terminated {
			s.ro.UnsetTerminate()
			s.terminated = false
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %v after %s", ErrDeadline, context.Cause(ctx), time.Since(start).Round(time.Microsecond))
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRun, err)
	}
	return s.convert()
}

// convert copies the outputs into the float32 views.
func (s *Session) convert() error {
	for i, v := range s.outs {
		dst := s.conv[i].Data
		var n int
		switch t := v.(type) {
		case *ort.Tensor[float32]:
			n = copy(dst, t.GetData())
		case *ort.Tensor[float64]:
			n = convertInto(dst, t.GetData())
		case *ort.Tensor[int64]:
			n = convertInto(dst, t.GetData())
		case *ort.Tensor[int32]:
			n = convertInto(dst, t.GetData())
		case *ort.Tensor[uint8]:
			n = convertInto(dst, t.GetData())
		case *ort.Tensor[int8]:
			n = convertInto(dst, t.GetData())
		case *ort.Tensor[bool]:
			src := t.GetData()
			for j := range min(len(dst), len(src)) {
				dst[j] = 0
				if src[j] {
					dst[j] = 1
				}
			}
			n = len(src)
		default:
			return fmt.Errorf("%w: output %q is a %T, not a numeric tensor", ErrSignature, s.conv[i].Name, v)
		}
		if n != len(dst) {
			return fmt.Errorf("%w: output %q changed size from %d to %d elements between runs", ErrRun, s.conv[i].Name, len(dst), n)
		}
	}
	return nil
}

func convertInto[T float64 | int64 | int32 | uint8 | int8](dst []float32, src []T) int {
	for j := range min(len(dst), len(src)) {
		dst[j] = float32(src[j])
	}
	return len(src)
}

// Close releases the session and its tensors; calling it twice is harmless.
func (s *Session) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.sess != nil {
		errs = append(errs, s.sess.Destroy())
	}
	for _, in := range s.ins {
		errs = append(errs, in.Destroy())
	}
	for _, v := range s.outs {
		if v != nil {
			errs = append(errs, v.Destroy())
		}
	}
	if s.ro != nil {
		errs = append(errs, s.ro.Destroy())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close session: %w", err)
	}
	return nil
}
