package affinity

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrUnsupported is returned where the platform has no thread affinity.
var ErrUnsupported = errors.New("cpu affinity is not supported on this platform")

// maxCPU bounds the CPU numbers a list may name (the kernel's CPU set size).
const maxCPU = 1024

// Parse reads a CPU list ("0", "2-3", "0,4-5") into sorted, distinct CPU
// numbers. The empty string is the empty list. An error says which part
// is wrong; the caller names the list.
func Parse(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := cpuNumber(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = cpuNumber(hi); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("range %s runs backwards (write low-high)", part)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

func cpuNumber(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a CPU number (want e.g. 0, 2-3 or 0,4-5)", s)
	}
	if n >= maxCPU {
		return 0, fmt.Errorf("CPU %d is beyond %d", n, maxCPU-1)
	}
	return n, nil
}

// Format writes cpus as a CPU list, ranges collapsed ("0,2-4").
func Format(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}

// Without is a minus b (both sorted).
func Without(a, b []int) []int {
	var out []int
	for _, c := range a {
		if _, found := slices.BinarySearch(b, c); !found {
			out = append(out, c)
		}
	}
	return out
}

// Check says whether cpus can be the model's: every one of them allowed to
// this process, and at least one allowed CPU left for the rest of the line.
func Check(cpus, allowed []int) error {
	if len(cpus) == 0 {
		return nil
	}
	if out := Without(cpus, allowed); len(out) > 0 {
		return fmt.Errorf("CPU %s is not one this process may run on (allowed: %s)", Format(out), Format(allowed))
	}
	if len(Without(allowed, cpus)) == 0 {
		return fmt.Errorf("%s would leave no CPU for the rest of the line (allowed: %s); leave at least one out", Format(cpus), Format(allowed))
	}
	return nil
}

// ORTAffinities is ONNX Runtime's session.intra_op_thread_affinities value
// for a pool of threads intra-op threads on cpus: one entry per pool thread
// (ONNX Runtime does not place the calling thread, which the engine pins
// itself), each the whole list, numbered from 1 as ONNX Runtime counts
// logical processors. Empty when the pool has no threads of its own.
func ORTAffinities(cpus []int, threads int) string {
	if threads <= 1 || len(cpus) == 0 {
		return ""
	}
	one := make([]int, len(cpus))
	for i, c := range cpus {
		one[i] = c + 1
	}
	entry := Format(one)
	return strings.Repeat(entry+";", threads-2) + entry
}

// The words a model.cpus value may be instead of a list: Auto lets
// LineSight choose the model's CPUs (see Quietest), None pins nothing.
const (
	Auto = "auto"
	None = "none"
)

// Quietest picks n of the allowed CPUs for the model: those that served
// the fewest device interrupts (counts as /proc/interrupts gives them, one
// per allowed CPU, in allowed's order), ties to the higher-numbered CPU;
// it always leaves at least one allowed CPU out, for the line, so it
// picks none when n would take them all. The disk's and the network's
// interrupts then land on the line's CPUs, where the threads that wait
// for them run.
func Quietest(allowed []int, counts []uint64, n int) []int {
	if n <= 0 || n >= len(allowed) {
		return nil
	}
	idx := make([]int, len(allowed))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		var ca, cb uint64
		if a < len(counts) {
			ca = counts[a]
		}
		if b < len(counts) {
			cb = counts[b]
		}
		switch {
		case ca < cb:
			return -1
		case ca > cb:
			return 1
		}
		return allowed[b] - allowed[a]
	})
	out := make([]int, 0, n)
	for _, i := range idx[:n] {
		out = append(out, allowed[i])
	}
	slices.Sort(out)
	return out
}

// DeviceInterrupts sums the device interrupt lines of a /proc/interrupts
// text per CPU column (the numbered lines: per-CPU timer, IPI and other
// architectural counters are left out), for the CPUs in cpus.
func DeviceInterrupts(text string, cpus []int) ([]uint64, error) {
	lines := strings.Split(text, "\n")
	if len(lines) == 0 {
		return nil, errors.New("interrupts: empty")
	}
	col := map[int]int{} // CPU number -> column
	for i, f := range strings.Fields(lines[0]) {
		n, ok := strings.CutPrefix(f, "CPU")
		if !ok {
			return nil, fmt.Errorf("interrupts: header field %q is not CPUn", f)
		}
		c, err := strconv.Atoi(n)
		if err != nil {
			return nil, fmt.Errorf("interrupts: header field %q is not CPUn", f)
		}
		col[c] = i
	}
	sums := make([]uint64, len(cpus))
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		if _, err := strconv.Atoi(strings.TrimSuffix(f[0], ":")); err != nil {
			continue // NMI, LOC, RES, ...: not a device
		}
		for i, c := range cpus {
			j, ok := col[c]
			if !ok || 1+j >= len(f) {
				continue
			}
			v, err := strconv.ParseUint(f[1+j], 10, 64)
			if err != nil {
				continue
			}
			sums[i] += v
		}
	}
	return sums, nil
}
