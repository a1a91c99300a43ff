// Package config is the edge agent's configuration: one YAML file that
// describes the device, its cameras, the model and its runtime, the policy,
// the store, the review UI, outputs and the MQTT link.
//
// It follows one pattern: Default() gives a complete working config (the
// demo's), Parse(r) reads YAML over those defaults (unknown fields are
// errors), ApplyEnv() lets secrets come from the environment instead of the
// file, and Validate() reports every invalid field with the allowed values.
// Sections that a package consumes are defined in that package
// (camera.Spec, onnx.Options) and aggregated here.
package config
