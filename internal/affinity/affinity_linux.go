//go:build linux

package affinity

import (
	"errors"
	"fmt"
	"os"
	"slices"
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

// Threads is every live thread of process pid (0: this one) with the CPUs
// it may run on, as the kernel reports them; a thread that ends while it
// is read is left out.
func Threads(pid int) (map[int][]int, error) {
	dir := "/proc/self/task"
	if pid != 0 {
		dir = fmt.Sprintf("/proc/%d/task", pid)
	}
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	out := make(map[int][]int, len(tasks))
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			continue // the thread has ended meanwhile
		}
		out[tid] = fromSet(&set)
	}
	return out, nil
}

// Exclude takes cpus out of the affinity of every thread of this process
// except keep (thread IDs, e.g. the pinned session threads). A thread whose
// mask holds nothing but cpus is left as it is. It returns how many threads
// it changed.
func Exclude(cpus []int, keep ...int) (int, error) {
	threads, err := Threads(0)
	if err != nil {
		return 0, err
	}
	changed := 0
	for tid, mask := range threads {
		if slices.Contains(keep, tid) {
			continue
		}
		rest := Without(mask, cpus)
		if len(rest) == 0 || len(rest) == len(mask) {
			continue
		}
		if err := setThread(tid, rest); err != nil {
			return changed, fmt.Errorf("move thread %d off CPUs %s: %w", tid, Format(cpus), err)
		}
		changed++
	}
	return changed, nil
}

// setThread sets thread tid's affinity to cpus; a thread that has ended
// meanwhile is no error.
func setThread(tid int, cpus []int) error {
	set := toSet(cpus)
	if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	return nil
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
	threads, err := Threads(0)
	if err != nil {
		return err
	}
	for tid := range threads {
		if err := setThread(tid, cpus); err != nil {
			return fmt.Errorf("reset thread %d to CPUs %s: %w", tid, Format(cpus), err)
		}
	}
	return nil
}

// Reserve gives cpus to whatever this process pins there next: it checks
// that the process may run on them with at least one CPU left over, then
// moves every thread it has off them, pass after pass until one moves
// nothing (a thread the runtime starts from one not yet moved, during a
// pass, still has the old mask). Threads started later inherit their
// creator's mask. release gives every thread the process's CPUs back.
// moved counts the threads moved. On an error nothing stays moved.
func Reserve(cpus []int) (release func() error, moved int, err error) {
	allowed, err := Allowed()
	if err != nil {
		return nil, 0, err
	}
	if err := Check(cpus, allowed); err != nil {
		return nil, 0, err
	}
	for range 4 {
		n, err := Exclude(cpus)
		if err != nil {
			_ = Reset(allowed)
			return nil, 0, err
		}
		if n == 0 {
			break
		}
		moved += n
	}
	return func() error { return Reset(allowed) }, moved, nil
}
