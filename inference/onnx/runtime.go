package onnx

import (
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// The ONNX Runtime environment is process-wide (onnxruntime_go keeps it in
// package state), so Runtime handles share it through this one guarded
// reference count: the only package-level mutable state in LineSight, and it
// mirrors the library's own.
var env struct {
	sync.Mutex
	refs int
	path string
}

// Runtime is a handle on the process's ONNX Runtime environment. Open one
// before creating sessions and Close it after they are closed.
type Runtime struct {
	path   string
	cores  int // physical cores, for the default intra-op thread count
	closed bool
}

// OpenRuntime loads the ONNX Runtime library found by search and initialises
// the environment, or joins the one already initialised from the same
// library. The error is a *LibraryNotFoundError when no library is found.
func OpenRuntime(search LibrarySearch) (*Runtime, error) {
	path, err := search.FindLibrary()
	if err != nil {
		return nil, err
	}
	env.Lock()
	defer env.Unlock()
	if env.refs > 0 {
		if env.path != path {
			return nil, fmt.Errorf("onnx runtime already loaded from %s; cannot also load %s in one process", env.path, path)
		}
		env.refs++
		return &Runtime{path: path, cores: PhysicalCores()}, nil
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return nil, fmt.Errorf("load onnx runtime %s: %w (is it the %s build for this platform? %s)", path, err, RuntimeVersion, InstallHint)
	}
	env.refs, env.path = 1, path
	return &Runtime{path: path, cores: PhysicalCores()}, nil
}

// Path is the library file in use.
func (r *Runtime) Path() string { return r.path }

// Version is the loaded library's version string, e.g. "1.24.1".
func (r *Runtime) Version() string { return ort.GetVersion() }

// Close releases the handle; the last one destroys the environment.
func (r *Runtime) Close() error {
	env.Lock()
	defer env.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	env.refs--
	if env.refs == 0 {
		env.path = ""
		if err := ort.DestroyEnvironment(); err != nil {
			return fmt.Errorf("destroy onnx runtime environment: %w", err)
		}
	}
	return nil
}
