package builtin

import (
	"embed"
	"fmt"
	"io/fs"

	"github.com/linesight/linesight/inference"
)

//go:embed model/manifest.json model/model.onnx model/int8/manifest.json model/int8/model.onnx
var files embed.FS

// Precisions of the built-in model.
const (
	FP32 = "fp32"
	Int8 = "int8"
)

// FS is the built-in fp32 package as a file system: manifest.json and
// model.onnx at its root.
func FS() fs.FS { return sub("model") }

// FSInt8 is the built-in int8 package.
func FSInt8() fs.FS { return sub("model/int8") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // a constant path into the embedded tree
	}
	return f
}

// Package returns the built-in model at precision (FP32 or Int8), its
// manifest parsed and validated and the graph's sha256 checked, as
// inference.LoadPackage does for a directory. Dir is empty and ModelPath
// names the embedded file.
func Package(precision string) (*inference.Package, error) {
	var fsys fs.FS
	switch precision {
	case FP32, "":
		fsys = FS()
	case Int8:
		fsys = FSInt8()
	default:
		return nil, fmt.Errorf("built-in model: no %q precision (have %s, %s)", precision, FP32, Int8)
	}
	return Load(fsys, "builtin:"+precision)
}

// Load reads a model package from fsys (manifest.json and the model file it
// names) and checks the model's sha256; name labels it in errors and in
// Package.ModelPath.
func Load(fsys fs.FS, name string) (*inference.Package, error) {
	data, err := fs.ReadFile(fsys, inference.ManifestFile)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w: %v", name, inference.ErrNoModel, err)
	}
	m, err := inference.ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", name, err)
	}
	model, err := fs.ReadFile(fsys, m.Model.File)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w: %v", name, inference.ErrNoModel, err)
	}
	if got := inference.SHA256(model); got != m.Model.SHA256 {
		return nil, fmt.Errorf("load model %s: %w: %s has sha256 %s, the manifest says %s", name, inference.ErrChecksum, m.Model.File, got, m.Model.SHA256)
	}
	return &inference.Package{ModelPath: name + "/" + m.Model.File, Manifest: m, Model: model}, nil
}
