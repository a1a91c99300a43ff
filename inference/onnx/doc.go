// Package onnx runs models through ONNX Runtime: it finds and loads the
// pinned libonnxruntime (1.24.1), selects the execution provider and owns
// the sessions the inference engine runs frames through.
//
// # Lifecycle
//
// OpenRuntime once per process (handles share the one environment ONNX
// Runtime allows), then sessions; Close sessions before the Runtime.
//
// # Caveats
//
// The library is loaded with dlopen at run time, not linked, so a binary
// built here runs on a machine without ONNX Runtime until a model is
// opened; FindLibrary's error names every path it searched.
package onnx
