//go:build linux

package inference

import (
	"context"
	"errors"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/internal/affinity"
)

// threadsOn counts this process's threads whose Cpus_allowed_list is
// exactly list, as the kernel reports them.
func threadsOn(t *testing.T, list string) int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // ended meanwhile
		}
		for l := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok && strings.TrimSpace(v) == list {
				n++
			}
		}
	}
	return n
}

// TestEngineCPUs: with Config.CPUs the session's thread runs on those CPUs
// only (the kernel's own account), frames still come out right, and the
// pinned thread ends with the engine instead of going back to Go's
// scheduler; a CPU the process may not use is refused at Open.
func TestEngineCPUs(t *testing.T) {
	allowed, err := affinity.Allowed()
	if err != nil {
		t.Skip(err)
	}
	if len(allowed) < 2 {
		t.Skipf("needs 2 CPUs, this process may use %s", affinity.Format(allowed))
	}
	model := affinity.Format(allowed[len(allowed)-1:])
	before := threadsOn(t, model)
	rt := openRuntime(t)
	pkg, err := LoadPackage(modelDir("nan"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(rt, pkg, Config{Options: onnxCPU(1, model)})
	if err != nil {
		t.Fatal(err)
	}
	if got := threadsOn(t, model); got != before+1 {
		t.Errorf("threads on CPU %s after Open: %d, want %d (the session's)", model, got, before+1)
	}
	bright := solid(t, 32, 32, 220, image.Rectangle{}, 0)
	res, err := e.Run(context.Background(), Frame{Image: bright})
	if err != nil || res.TopLabel != "good" {
		t.Errorf("run on a pinned session: %v, top %q", err, res.TopLabel)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for threadsOn(t, model) != before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the thread exits just after its goroutine
	}
	if got := threadsOn(t, model); got != before {
		t.Errorf("threads on CPU %s after Close: %d, want %d (the pinned thread ends)", model, got, before)
	}

	_, err = Open(rt, pkg, Config{Options: onnxCPU(1, "1000")})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "cpus 1000") {
		t.Errorf("Open with cpus 1000: %v, want ErrConfig naming the list", err)
	}
}

func onnxCPU(threads int, cpus string) onnx.Options {
	return onnx.Options{Provider: onnx.ProviderCPU, IntraOpThreads: threads, CPUs: cpus, Sessions: 1}
}
