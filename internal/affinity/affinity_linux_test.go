//go:build linux

package affinity

import (
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// TestPinAndExclude pins one locked thread to the last allowed CPU, moves
// every other thread of the test process off it, and checks both masks as
// the kernel reports them; then it gives every thread its mask back.
func TestPinAndExclude(t *testing.T) {
	allowed, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	if len(allowed) < 2 {
		t.Skipf("needs 2 CPUs, this process may use %s", Format(allowed))
	}
	t.Cleanup(func() {
		if err := Reset(allowed); err != nil {
			t.Error(err)
		}
	})
	model := allowed[len(allowed)-1:]
	pinned := make(chan int)
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the pinned thread ends with the goroutine
		if err := PinThread(model); err != nil {
			t.Error(err)
			pinned <- 0
			return
		}
		pinned <- ThreadID()
		<-release
	}()
	tid := <-pinned
	if tid == 0 {
		return
	}
	defer close(release)
	n, err := Exclude(model, tid)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("Exclude changed no thread")
	}
	threads, err := Threads(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := threads[tid]; !reflect.DeepEqual(got, model) {
		t.Errorf("pinned thread runs on %v, want %v", got, model)
	}
	line := Without(allowed, model)
	// This goroutine's thread, and a thread the runtime starts from now on,
	// keep off the model's CPU.
	runtime.LockOSThread()
	if got, _ := Allowed(); !reflect.DeepEqual(got, line) {
		t.Errorf("line thread runs on %v, want %v", got, line)
	}
	runtime.UnlockOSThread()
	done := make(chan []int)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		got, _ := Allowed()
		done <- got
	}()
	if got := <-done; !reflect.DeepEqual(got, line) {
		t.Errorf("a new goroutine's thread runs on %v, want %v", got, line)
	}
}

// TestReserveRefusesAll: a reservation of every CPU the process has is
// refused before any thread moves.
func TestReserveRefusesAll(t *testing.T) {
	allowed, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Reserve(allowed); err == nil || !strings.Contains(err.Error(), "no CPU for the rest of the line") {
		t.Fatalf("Reserve(%v) = %v, want a refusal", allowed, err)
	}
	threads, err := Threads(0)
	if err != nil {
		t.Fatal(err)
	}
	for tid, cpus := range threads {
		if !reflect.DeepEqual(cpus, allowed) {
			t.Errorf("thread %d on %v after a refused reservation, want %v", tid, cpus, allowed)
		}
	}
}
