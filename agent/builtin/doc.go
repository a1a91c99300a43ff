// Package builtin carries LineSight's built-in default model inside the
// binary (go:embed), so `linesight demo` and a fresh device need no model
// files: a tile classifier trained on the synthetic generator's output
// (camera.Generator, via `linesight synth`) with fixed seeds.
//
// The package files live in model/ (fp32, the default) and model/int8/
// (the same network, static int8 QDQ). `make model` rebuilds them end to
// end: it writes a synthetic training set, runs scripts/train/train.py and
// copies the two packages here. The README reports their figures on a
// fresh synthetic set of a different seed.
//
// # Caveats
//
// The model knows the synthetic tiles only; on real parts it is a
// placeholder until a trained package is installed.
package builtin
