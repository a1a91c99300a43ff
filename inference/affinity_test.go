//go:build linux

package inference

import (
	"context"
	"errors"
	"image"
	"slices"
	"strings"
	"testing"

	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/internal/affinity"
)

// TestEngineCPUs: with Config.CPUs the session's thread runs on those CPUs
// only (the kernel's own account) from the moment Open returns, and frames
// still come out right; a CPU the process may not use is refused at Open.
func TestEngineCPUs(t *testing.T) {
	allowed, err := affinity.Allowed()
	if err != nil {
		t.Skip(err)
	}
	if len(allowed) < 2 {
		t.Skipf("needs 2 CPUs, this process may use %s", affinity.Format(allowed))
	}
	model := affinity.Format(allowed[len(allowed)-1:])
	rt := openRuntime(t)
	pkg, err := LoadPackage(modelDir("nan"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(rt, pkg, Config{Options: onnxCPU(1, model)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	w := e.cur.Load().workers[0]
	threads, err := affinity.Threads(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := affinity.Format(threads[w.tid]); got != model {
		t.Errorf("the session's thread %d may run on CPUs %q, want %s", w.tid, got, model)
	}
	if got, _ := affinity.Allowed(); !slices.Equal(got, allowed) {
		t.Errorf("Open left the caller's thread on %v, want %v", got, allowed)
	}
	bright := solid(t, 32, 32, 220, image.Rectangle{}, 0)
	res, err := e.Run(context.Background(), Frame{Image: bright})
	if err != nil || res.TopLabel != "good" {
		t.Errorf("run on a pinned session: %v, top %q", err, res.TopLabel)
	}

	_, err = Open(rt, pkg, Config{Options: onnxCPU(1, "1000")})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "cpus 1000") {
		t.Errorf("Open with cpus 1000: %v, want ErrConfig naming the list", err)
	}
}

func onnxCPU(threads int, cpus string) onnx.Options {
	return onnx.Options{Provider: onnx.ProviderCPU, IntraOpThreads: threads, CPUs: cpus, Sessions: 1}
}
