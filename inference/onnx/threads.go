package onnx

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// IntraThreads is the intra-op thread count a session on provider gets:
// Options.IntraOpThreads when set; otherwise, on the CPU provider, all
// physical cores but one, shared among the engine's sessions, and at least
// 1. The core left over is the line's: capture, preprocessing, JPEG
// encoding, the store's commits and the UI run there instead of preempting
// the model's thread pool in the middle of a run (on the 2-core development
// VM a pipeline around a 2-thread session lost a third of the session's
// throughput to that; see the README's figures). 0 on an accelerator lets
// ONNX Runtime decide. With CPUs set, the default is those CPUs, shared
// among the sessions.
func (o Options) IntraThreads(provider string, physicalCores int) int {
	if o.IntraOpThreads > 0 {
		return o.IntraOpThreads
	}
	if provider != ProviderCPU {
		return 0
	}
	if cpus := o.CPUList(); len(cpus) > 0 {
		return max(1, len(cpus)/max(1, o.Sessions))
	}
	return max(1, (physicalCores-1)/max(1, o.Sessions))
}

// PhysicalCores counts the physical cores this process may run on (Linux
// sysfs topology: distinct package and core ids among the CPUs in the
// affinity mask), as ONNX Runtime sizes its default pool; elsewhere, or when
// sysfs cannot be read, runtime.NumCPU.
func PhysicalCores() int {
	n := runtime.NumCPU()
	cpus, err := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/topology")
	if err != nil || len(cpus) == 0 {
		return n
	}
	cores := map[string]bool{}
	for _, dir := range cpus {
		pkg, err1 := os.ReadFile(filepath.Join(dir, "physical_package_id"))
		core, err2 := os.ReadFile(filepath.Join(dir, "core_id"))
		if err1 != nil || err2 != nil {
			return n
		}
		cores[strings.TrimSpace(string(pkg))+"/"+strings.TrimSpace(string(core))] = true
	}
	// The affinity mask (containers, taskset) may allow fewer CPUs than the
	// machine has: never more cores than usable CPUs.
	return max(1, min(len(cores), n))
}
