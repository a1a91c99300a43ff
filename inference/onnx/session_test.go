package onnx

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestPlanProviders(t *testing.T) {
	avail := []string{ProviderTensorRT, ProviderCUDA, ProviderCPU}
	tests := []struct {
		name     string
		opt      Options
		plan     []string
		skipped  []string
		wantErr  bool
		provider string // in the error
	}{
		{name: "cpu", opt: Options{Provider: "cpu"}, plan: []string{"cpu"}},
		{name: "auto default order", opt: Options{Provider: "auto", Accelerators: []string{"tensorrt", "cuda"}}, plan: []string{"tensorrt", "cuda", "cpu"}},
		{name: "auto skips missing", opt: Options{Provider: "auto", Accelerators: []string{"openvino", "cuda", "cuda"}}, plan: []string{"cuda", "cpu"}, skipped: []string{"openvino"}},
		{name: "auto no accelerators", opt: Options{Provider: "auto"}, plan: []string{"cpu"}},
		{name: "explicit compiled", opt: Options{Provider: "cuda"}, plan: []string{"cuda"}},
		{name: "explicit with fallback", opt: Options{Provider: "cuda", Fallback: true}, plan: []string{"cuda", "cpu"}},
		{name: "explicit missing", opt: Options{Provider: "qnn"}, wantErr: true, provider: "qnn"},
		{name: "explicit missing fallback", opt: Options{Provider: "qnn", Fallback: true}, plan: []string{"cpu"}, skipped: []string{"qnn"}},
		{name: "unknown", opt: Options{Provider: "tpu"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, skipped, err := PlanProviders(tt.opt, avail)
			if tt.wantErr {
				if !errors.Is(err, ErrProviderUnavailable) {
					t.Fatalf("err = %v, want ErrProviderUnavailable", err)
				}
				var pe *ProviderError
				if tt.provider != "" && (!errors.As(err, &pe) || pe.Provider != tt.provider) {
					t.Fatalf("err = %v, want a ProviderError for %s", err, tt.provider)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(plan, tt.plan) {
				t.Errorf("plan = %v, want %v", plan, tt.plan)
			}
			var sk []string
			for _, s := range skipped {
				sk = append(sk, s.Provider)
			}
			if !slices.Equal(sk, tt.skipped) {
				t.Errorf("skipped = %v, want %v", sk, tt.skipped)
			}
		})
	}
}

func openRT(t testing.TB) *Runtime {
	t.Helper()
	rt, err := OpenRuntime(ProcessSearch(""))
	if err != nil {
		t.Fatalf("open runtime (run scripts/setup.sh first): %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func classifySpec(t testing.TB, batch int64) SessionSpec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "models", "classify", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return SessionSpec{Model: b, Input: "input", Shape: []int64{batch, 3, 64, 64}, Outputs: []string{"logits", "cam"}}
}

func TestSessionRunsOnCPU(t *testing.T) {
	rt := openRT(t)
	s, err := rt.NewSession(classifySpec(t, 2), Options{Provider: ProviderCPU, IntraOpThreads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Provider() != ProviderCPU {
		t.Errorf("provider = %s", s.Provider())
	}
	in := s.Input()
	if len(in) != 2*3*64*64 {
		t.Fatalf("input has %d elements", len(in))
	}
	for i := range in {
		in[i] = float32(i%97) / 97
	}
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	outs := s.Outputs()
	if !slices.Equal(outs[0].Shape, []int64{2, 6}) || !slices.Equal(outs[1].Shape, []int64{2, 6, 16, 16}) {
		t.Fatalf("output shapes %v %v", outs[0].Shape, outs[1].Shape)
	}
	// logits are the spatial mean of the class map (the graph's definition).
	for c := range 6 {
		var sum float32
		for _, v := range outs[1].Data[c*256 : (c+1)*256] {
			sum += v
		}
		if d := sum/256 - outs[0].Data[c]; d > 1e-4 || d < -1e-4 {
			t.Errorf("class %d: logit %v, mean of map %v", c, outs[0].Data[c], sum/256)
		}
	}
}

// TestProviderUnavailable asks for accelerators this machine lacks (the
// pinned build lists cuda and tensorrt but ships without their provider
// libraries; openvino, qnn and others are not compiled in).
func TestProviderUnavailable(t *testing.T) {
	rt := openRT(t)
	for _, p := range []string{ProviderCUDA, ProviderTensorRT, ProviderOpenVINO, ProviderQNN, ProviderDML, ProviderCoreML} {
		t.Run(p, func(t *testing.T) {
			s, err := rt.NewSession(classifySpec(t, 1), Options{Provider: p}, nil)
			if err == nil {
				s.Close()
				t.Skipf("%s started on this machine", p)
			}
			var pe *ProviderError
			if !errors.As(err, &pe) || !errors.Is(err, ErrProviderUnavailable) || pe.Provider != p {
				t.Fatalf("err = %v, want *ProviderError for %s", err, p)
			}
			s, err = rt.NewSession(classifySpec(t, 1), Options{Provider: p, Fallback: true}, nil)
			if err != nil {
				t.Fatalf("with fallback: %v", err)
			}
			defer s.Close()
			if s.Provider() != ProviderCPU {
				t.Errorf("fell back to %s, want cpu", s.Provider())
			}
			if err := s.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAutoFallsBackToCPU(t *testing.T) {
	rt := openRT(t)
	s, err := rt.NewSession(classifySpec(t, 1), Options{Provider: ProviderAuto, Accelerators: []string{ProviderTensorRT, ProviderCUDA, ProviderOpenVINO},
		ProviderOptions: map[string]map[string]string{ProviderCUDA: {"device_id": "0"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Provider() != ProviderCPU {
		t.Skipf("auto chose %s: an accelerator works here", s.Provider())
	}
}

func TestBadModels(t *testing.T) {
	rt := openRT(t)
	good := classifySpec(t, 1)
	corrupt, err := os.ReadFile(filepath.Join("..", "testdata", "models", "corrupt.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*SessionSpec)
		want error
	}{
		{"corrupt", func(s *SessionSpec) { s.Model = corrupt }, ErrInvalidModel},
		{"empty", func(s *SessionSpec) { s.Model = nil }, ErrInvalidModel},
		{"garbage", func(s *SessionSpec) { s.Model = []byte("not an onnx file at all") }, ErrInvalidModel},
		{"wrong input name", func(s *SessionSpec) { s.Input = "images" }, ErrSignature},
		{"wrong size", func(s *SessionSpec) { s.Shape = []int64{1, 3, 32, 32} }, ErrSignature},
		{"wrong channels", func(s *SessionSpec) { s.Shape = []int64{1, 1, 64, 64} }, ErrSignature},
		{"wrong rank", func(s *SessionSpec) { s.Shape = []int64{1, 64, 64} }, ErrSignature},
		{"missing output", func(s *SessionSpec) { s.Outputs = []string{"probs"} }, ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := good
			tt.edit(&spec)
			s, err := rt.NewSession(spec, Options{Provider: ProviderCPU}, nil)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	rt := openRT(t)
	s, err := rt.NewSession(classifySpec(t, 1), Options{Provider: ProviderCPU}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if err := s.Run(ctx); !errors.Is(err, ErrDeadline) {
		t.Fatalf("err = %v, want ErrDeadline", err)
	}
	// The session keeps serving after a missed deadline.
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	if err := s.Run(ctx2); err != nil {
		t.Fatalf("run after a missed deadline: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("run after close: %v", err)
	}
}

func TestIntraThreads(t *testing.T) {
	tests := []struct {
		name     string
		opt      Options
		provider string
		cores    int
		want     int
	}{
		{"configured wins", Options{IntraOpThreads: 3}, ProviderCPU, 8, 3},
		{"configured on cuda", Options{IntraOpThreads: 2}, ProviderCUDA, 8, 2},
		{"2 cores: one for the model, one for the line", Options{}, ProviderCPU, 2, 1},
		{"1 core", Options{}, ProviderCPU, 1, 1},
		{"8 cores", Options{Sessions: 1}, ProviderCPU, 8, 7},
		{"8 cores, 2 sessions", Options{Sessions: 2}, ProviderCPU, 8, 3},
		{"4 cores, 4 sessions", Options{Sessions: 4}, ProviderCPU, 4, 1},
		{"accelerator: ONNX Runtime decides", Options{}, ProviderCUDA, 8, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.opt.IntraThreads(tt.provider, tt.cores); got != tt.want {
				t.Errorf("IntraThreads(%s, %d) = %d, want %d", tt.provider, tt.cores, got, tt.want)
			}
		})
	}
	if n := PhysicalCores(); n < 1 {
		t.Errorf("PhysicalCores() = %d", n)
	}
}
