package onnx

import (
	"errors"
	"fmt"
	"slices"
)

// PlanProviders turns the configured provider choice into the ordered list
// of execution providers a session tries, given the providers compiled into
// the loaded library. It is pure: NewSession runs the plan, moving to the
// next entry when a provider fails to start on this machine.
//
//   - cpu: [cpu]
//   - auto: each of Accelerators that is compiled in, in order, then cpu
//   - an accelerator X: [X], then cpu when Fallback is set
//
// skipped lists the providers left out because the library lacks them (for
// the log). With an explicit accelerator that the library lacks and no
// Fallback, err is a *ProviderError.
func PlanProviders(opt Options, available []string) (plan []string, skipped []*ProviderError, err error) {
	missing := func(p string) *ProviderError {
		return &ProviderError{Provider: p, Available: available, Cause: errors.New("not compiled into this ONNX Runtime build")}
	}
	switch opt.Provider {
	case ProviderCPU:
		return []string{ProviderCPU}, nil, nil
	case ProviderAuto, "":
		for _, a := range opt.Accelerators {
			if a == ProviderCPU || a == ProviderAuto || slices.Contains(plan, a) {
				continue
			}
			if !slices.Contains(available, a) {
				skipped = append(skipped, missing(a))
				continue
			}
			plan = append(plan, a)
		}
		return append(plan, ProviderCPU), skipped, nil
	}
	if !slices.Contains(Providers, opt.Provider) {
		return nil, nil, fmt.Errorf("%w: unknown execution provider %q; use one of %v", ErrProviderUnavailable, opt.Provider, Providers)
	}
	if !slices.Contains(available, opt.Provider) {
		if !opt.Fallback {
			return nil, nil, missing(opt.Provider)
		}
		return []string{ProviderCPU}, []*ProviderError{missing(opt.Provider)}, nil
	}
	plan = []string{opt.Provider}
	if opt.Fallback {
		plan = append(plan, ProviderCPU)
	}
	return plan, nil, nil
}

// Plan is PlanProviders with the loaded library's providers.
func (r *Runtime) Plan(opt Options) ([]string, []*ProviderError, error) {
	avail, err := r.AvailableProviders()
	if err != nil {
		return nil, nil, err
	}
	return PlanProviders(opt, avail)
}
