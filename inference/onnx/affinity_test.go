//go:build linux

package onnx

import (
	"testing"
	"time"

	"github.com/linesight/linesight/internal/affinity"
)

// TestIntraOpPoolOnModelCPUs: with CPUs and a 2-thread pool, ONNX Runtime
// starts its pool thread on those CPUs (session.intra_op_thread_affinities,
// numbered from 1 as ONNX Runtime counts): the kernel reports a new thread
// allowed on exactly the model's CPU, and the session runs.
func TestIntraOpPoolOnModelCPUs(t *testing.T) {
	allowed, err := affinity.Allowed()
	if err != nil || len(allowed) < 2 {
		t.Skipf("needs 2 CPUs (%v, %v)", allowed, err)
	}
	model := affinity.Format(allowed[len(allowed)-1:])
	before := threadsAllowedOn(t, model)
	rt := openRT(t)
	s, err := rt.NewSession(classifySpec(t, 1), Options{Provider: ProviderCPU, IntraOpThreads: 2, CPUs: model}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The pool thread sets its own affinity once it first runs.
	for deadline := time.Now().Add(5 * time.Second); threadsAllowedOn(t, model) < before+1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := threadsAllowedOn(t, model); got != before+1 {
		t.Errorf("threads allowed on CPU %s only: %d before the session, %d after; want one more (the pool's)", model, before, got)
	}
	if err := s.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func threadsAllowedOn(t *testing.T, list string) int {
	t.Helper()
	threads, err := affinity.Threads(0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, cpus := range threads {
		if affinity.Format(cpus) == list {
			n++
		}
	}
	return n
}
