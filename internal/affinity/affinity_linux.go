//go:build linux

package affinity

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Allowed is the CPUs the calling thread may run on.
func Allowed() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	return fromSet(&set), nil
}

// PinThread restricts the calling OS thread to cpus. The caller must hold
// its thread (runtime.LockOSThread) for as long as the pin should last, and
// should let the thread end with it (exit the goroutine while locked)
// rather than hand a pinned thread back to the Go scheduler.
func PinThread(cpus []int) error {
	if len(cpus) == 0 {
		return errors.New("pin thread: no CPUs")
	}
	set := toSet(cpus)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin thread to CPUs %s: %w", Format(cpus), err)
	}
	return nil
}

// Exclude takes cpus out of the affinity of every thread of this process
// except keep (thread IDs, e.g. the pinned session threads). A thread whose
// mask holds nothing but cpus is left as it is. It returns how many threads
// it changed.
func Exclude(cpus []int, keep ...int) (int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, fmt.Errorf("list threads: %w", err)
	}
	skip := map[int]bool{}
	for _, t := range keep {
		skip[t] = true
	}
	changed := 0
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil || skip[tid] {
			continue
		}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			continue // the thread has ended meanwhile
		}
		rest := Without(fromSet(&set), cpus)
		if len(rest) == 0 || len(rest) == set.Count() {
			continue
		}
		ns := toSet(rest)
		if err := unix.SchedSetaffinity(tid, &ns); err != nil {
			if errors.Is(err, unix.ESRCH) {
				continue
			}
			return changed, fmt.Errorf("move thread %d off CPUs %s: %w", tid, Format(cpus), err)
		}
		changed++
	}
	return changed, nil
}

// ThreadID is the calling OS thread's ID.
func ThreadID() int { return unix.Gettid() }

func toSet(cpus []int) unix.CPUSet {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	return set
}

func fromSet(set *unix.CPUSet) []int {
	var cpus []int
	for c := range maxCPU {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// Choose resolves a model.cpus value to CPUs: a CPU list as written, or
// for Auto the n allowed CPUs that served the fewest device interrupts so
// far (Quietest); nil for the empty value, or for Auto on a single CPU.
func Choose(spec string, n int) ([]int, error) {
	if spec != Auto {
		return Parse(spec)
	}
	allowed, err := Allowed()
	if err != nil {
		return nil, err
	}
	text, err := os.ReadFile("/proc/interrupts")
	if err != nil {
		return nil, fmt.Errorf("cpus auto: %w", err)
	}
	counts, err := DeviceInterrupts(string(text), allowed)
	if err != nil {
		return nil, fmt.Errorf("cpus auto: %w", err)
	}
	return Quietest(allowed, counts, n), nil
}

// Reset sets the affinity of every thread of this process to cpus: for a
// test or benchmark that borrowed CPUs with Exclude and gives them back.
func Reset(cpus []int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("list threads: %w", err)
	}
	set := toSet(cpus)
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("reset thread %d to CPUs %s: %w", tid, Format(cpus), err)
		}
	}
	return nil
}
