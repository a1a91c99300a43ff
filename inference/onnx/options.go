package onnx

import (
	"github.com/linesight/linesight/internal/affinity"
	"github.com/linesight/linesight/internal/validate"
)

// Execution provider names as they appear in configuration.
const (
	ProviderAuto     = "auto"
	ProviderCPU      = "cpu"
	ProviderCUDA     = "cuda"
	ProviderTensorRT = "tensorrt"
	ProviderOpenVINO = "openvino"
	ProviderCoreML   = "coreml"
	ProviderQNN      = "qnn"
	ProviderDML      = "dml"
)

// Providers lists the allowed values of Options.Provider.
var Providers = []string{ProviderAuto, ProviderCPU, ProviderCUDA, ProviderTensorRT, ProviderOpenVINO, ProviderCoreML, ProviderQNN, ProviderDML}

// Options configures ONNX Runtime for a model: where the library is, which
// execution provider runs it and how many threads it may use.
type Options struct {
	// Library is the path of libonnxruntime.so.1; empty means search (see FindLibrary).
	Library string `yaml:"onnxruntime_library,omitempty"`
	// Provider is one of Providers. "auto" tries Accelerators in order and falls back to cpu.
	Provider string `yaml:"provider"`
	// Accelerators is the order "auto" tries, e.g. [tensorrt, cuda].
	Accelerators []string `yaml:"accelerators,omitempty"`
	// Fallback lets an explicitly named accelerator that cannot load fall back to cpu (logged).
	Fallback bool `yaml:"fallback,omitempty"`
	// ProviderOptions are passed through to the provider, keyed by provider name.
	ProviderOptions map[string]map[string]string `yaml:"provider_options,omitempty"`
	// IntraOpThreads: 0 means all physical cores but one, shared among the
	// sessions, on the CPU provider (see IntraThreads), and ONNX Runtime's
	// choice on an accelerator. InterOpThreads: 0 lets ONNX Runtime decide.
	IntraOpThreads int `yaml:"intra_op_threads,omitempty"`
	InterOpThreads int `yaml:"inter_op_threads,omitempty"`
	// Spinning lets ONNX Runtime's intra-op threads spin-wait between runs
	// (its own default). LineSight turns it off unless asked: on a small
	// CPU the spinning threads take the cores the rest of the line needs
	// (on the 2-core development VM a bare session ran twice as fast
	// without it; see the README's figures).
	Spinning bool `yaml:"spinning,omitempty"`
	// CPUs, a Linux CPU list ("1", "2-3"), "auto" or "none", keeps the model on
	// those CPUs: each session's thread and ONNX Runtime's intra-op pool
	// run there and nowhere else, and (in the agent) every other thread of
	// the process is moved off them, so capture, the store's commits and
	// the UI never preempt a run. "auto" takes as many CPUs as the sessions
	// have threads, those that served the fewest device interrupts (the
	// disk's completions then land on the line's CPUs), and always leaves
	// one for the line (and pins nothing when the threads would take every
	// CPU). Empty or "none": no pinning. With a list and IntraOpThreads 0,
	// the sessions share len(CPUs) threads. The pool's affinities are set
	// on the CPU provider only.
	CPUs string `yaml:"cpus,omitempty"`
	// Sessions is the number of sessions in the engine's pool.
	Sessions int `yaml:"sessions"`
}

// CPUList is CPUs parsed (nil when empty, "auto" (not yet chosen) or
// invalid; Validate reports an invalid list).
func (o Options) CPUList() []int {
	if o.CPUs == affinity.Auto || o.CPUs == affinity.None {
		return nil
	}
	cpus, _ := affinity.Parse(o.CPUs)
	return cpus
}

// ChooseCPUs resolves CPUs ("auto" or a list) to the CPUs the model gets
// on this machine, physicalCores as PhysicalCores gives it; nil: no pinning.
func (o Options) ChooseCPUs(physicalCores int) ([]int, error) {
	if o.CPUs == "" || o.CPUs == affinity.None {
		return nil, nil
	}
	auto := o
	auto.CPUs = ""
	return affinity.Choose(o.CPUs, auto.IntraThreads(ProviderCPU, physicalCores)*max(1, o.Sessions))
}

// DefaultOptions returns CPU-safe defaults.
func DefaultOptions() Options {
	return Options{Provider: ProviderAuto, Accelerators: []string{ProviderCUDA}, Sessions: 1}
}

// Validate reports every invalid field under v.
func (o *Options) Validate(v *validate.V) {
	v.OneOf("provider", o.Provider, Providers...)
	for i, a := range o.Accelerators {
		if a == ProviderAuto || a == ProviderCPU {
			v.Index("accelerators", i).Add("", a, "is not an accelerator; list accelerators only (cpu is always the last resort)")
			continue
		}
		v.Index("accelerators", i).OneOf("", a, Providers[2:]...)
	}
	for name := range o.ProviderOptions {
		v.At("provider_options").OneOf(name, name, Providers[1:]...)
	}
	validate.Range(v, "intra_op_threads", o.IntraOpThreads, 0, 256)
	validate.Range(v, "inter_op_threads", o.InterOpThreads, 0, 256)
	validate.Range(v, "sessions", o.Sessions, 1, 64)
	if o.CPUs != affinity.Auto && o.CPUs != affinity.None {
		if _, err := affinity.Parse(o.CPUs); err != nil {
			v.Add("cpus", o.CPUs, err.Error()+`; want a CPU list such as 1 or 2-3, auto, or none`)
		}
	}
}
