// Package affinity keeps the model's threads and the rest of the line on
// separate CPUs. On a small edge CPU the ONNX Runtime session's thread shares
// its core with whatever else the agent runs (capture, preprocessing, JPEG,
// the store's commits and the interrupts their fsyncs raise); each time the
// kernel puts one of those on the model's core, the run in progress waits.
// With model.cpus set, the engine pins each session's thread (and ONNX
// Runtime's intra-op pool) to those CPUs and the agent moves every other
// thread of the process off them.
//
// CPU lists are written as Linux writes them (cpuset, taskset -c,
// /sys/devices/system/cpu/online): "0", "2-3", "0,4-5".
//
// # Caveats
//
// Only Linux has per-thread affinity here; elsewhere every call returns
// ErrUnsupported and the caller runs unpinned. Threads inherit their
// creator's mask, so Exclude must run before the threads that should stay
// off the CPUs are started, or be run again after: the Go runtime starts new
// threads from threads already excluded (a locked thread asks its template
// thread, which is excluded too). Interrupts are the kernel's to place
// (/proc/irq/*/smp_affinity); pick model CPUs that do not serve the store's
// disk (see /proc/interrupts).
package affinity
