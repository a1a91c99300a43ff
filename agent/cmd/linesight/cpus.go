package main

import (
	"fmt"
	"log/slog"

	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/internal/affinity"
)

// reserveModelCPUs gives model.cpus to the model alone: it resolves the
// value ("auto" or a list) once, moves every thread the agent has now off
// those CPUs (the threads started later inherit that; the engine then
// pins its session threads there) and returns the options with the
// concrete list, for the engine. It runs before the engine opens. Nothing
// to do when model.cpus is empty, or "auto" finds a single CPU. release
// gives every thread the CPUs back (after the engine closed), so that an
// agent run in-process (tests, the closed loop) leaves its caller as it was.
func reserveModelCPUs(o onnx.Options, log *slog.Logger) (_ onnx.Options, release func() error, _ error) {
	release = func() error { return nil }
	if o.CPUs == "" || o.CPUs == affinity.None {
		o.CPUs = ""
		return o, release, nil
	}
	// "auto" (the default) never stops the agent: where it cannot pin, the
	// model runs unpinned and the log says why. A list the operator wrote
	// is an error when it cannot be had.
	auto := o.CPUs == affinity.Auto
	fail := func(err error) (onnx.Options, func() error, error) {
		if auto {
			log.Warn("model.cpus auto: the model runs unpinned", "err", err)
			o.CPUs = ""
			return o, release, nil
		}
		return o, release, err
	}
	cpus, err := o.ChooseCPUs(onnx.PhysicalCores())
	if err != nil {
		return fail(fmt.Errorf("model.cpus %s: %w (set model.cpus: none on this system)", o.CPUs, err))
	}
	if len(cpus) == 0 {
		log.Info("model.cpus auto: no CPU to spare for the model alone; it runs unpinned")
		o.CPUs = ""
		return o, release, nil
	}
	allowed, _ := affinity.Allowed()
	free, n, err := affinity.Reserve(cpus)
	if err != nil {
		return fail(fmt.Errorf("model.cpus %s: %w", o.CPUs, err))
	}
	log.Info("cpus reserved for the model", "model_cpus", affinity.Format(cpus),
		"line_cpus", affinity.Format(affinity.Without(allowed, cpus)), "threads_moved", n, "asked", o.CPUs)
	o.CPUs = affinity.Format(cpus)
	return o, free, nil
}
