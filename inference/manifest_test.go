package inference

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./inference -run %s -update to create it)", err, t.Name())
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestManifestGolden parses every testdata/manifests/*.json: a valid one
// must re-encode to its .golden (defaults filled in) and parse again to the
// same; an invalid one must give the error text in its .err.
func TestManifestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "manifests", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseManifest(data)
			if strings.HasPrefix(name, "bad-") || name == "unknown-field" || name == "truncated" {
				if !errors.Is(err, ErrInvalidManifest) {
					t.Fatalf("err = %v, want ErrInvalidManifest", err)
				}
				var me *ManifestError
				if !errors.As(err, &me) {
					t.Fatalf("err %T is not a *ManifestError", err)
				}
				golden(t, filepath.Join("manifests", name+".err"), []byte(err.Error()+"\n"))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("manifests", name+".golden"), out)
			m2, err := ParseManifest(out)
			if err != nil {
				t.Fatalf("the encoded manifest does not parse: %v", err)
			}
			out2, _ := m2.Marshal()
			if string(out) != string(out2) {
				t.Errorf("encode/parse is not stable")
			}
		})
	}
}

func TestManifestAccessors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "manifests", "detect-defaults.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if w, h, c := m.InputSize(); w != 640 || h != 640 || c != 3 {
		t.Errorf("InputSize = %d %d %d (nhwc)", w, h, c)
	}
	if m.Batch() != 1 || m.Thresholds.Score != 0.25 || m.Thresholds.IoU != 0.45 || m.Outputs[0].BoxFormat != BoxCXCYWH {
		t.Errorf("defaults: batch %d score %v iou %v box %q", m.Batch(), m.Thresholds.Score, m.Thresholds.IoU, m.Outputs[0].BoxFormat)
	}
	if o, ok := m.OutputByRole(RoleBoxes); !ok || o.Name != "output0" {
		t.Errorf("OutputByRole(boxes) = %v %v", o, ok)
	}
	if _, ok := m.OutputByRole(RoleHeatmap); ok {
		t.Error("a detector has no heatmap")
	}
}

func TestLoadPackage(t *testing.T) {
	src := filepath.Join("testdata", "models", "classify")
	p, err := LoadPackage(src)
	if err != nil {
		t.Fatal(err)
	}
	if p.Manifest.Name != "tiny-cam" || len(p.Model) == 0 || p.ModelPath != filepath.Join(src, "model.onnx") || len(p.Assumed) != 0 {
		t.Errorf("package %+v", p.Manifest)
	}

	copyPkg := func(t *testing.T, edit func(dir string)) string {
		dir := t.TempDir()
		for _, f := range []string{ManifestFile, ModelFile} {
			b, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		edit(dir)
		return dir
	}
	tests := []struct {
		name string
		edit func(dir string)
		want error
	}{
		{"damaged model", func(dir string) {
			f, _ := os.OpenFile(filepath.Join(dir, ModelFile), os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte{0})
			f.Close()
		}, ErrChecksum},
		{"no model file", func(dir string) { os.Remove(filepath.Join(dir, ModelFile)) }, ErrNoModel},
		{"no manifest", func(dir string) { os.Remove(filepath.Join(dir, ManifestFile)) }, ErrNoModel},
		{"broken manifest", func(dir string) { os.WriteFile(filepath.Join(dir, ManifestFile), []byte("{"), 0o644) }, ErrInvalidManifest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadPackage(copyPkg(t, tt.edit))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("checksum message names both sums", func(t *testing.T) {
		_, err := LoadPackage(copyPkg(t, tests[0].edit))
		if err == nil || !strings.Contains(err.Error(), p.Manifest.Model.SHA256) {
			t.Errorf("message should name the manifest's sha256: %v", err)
		}
	})
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := write("free/a.jpg", "A"), write("crack/b.jpg", "B")
	f1, err := Fingerprint(dir, []string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	f2, _ := Fingerprint(dir, []string{b, a})
	if f1 != f2 {
		t.Error("the fingerprint depends on the order of files")
	}
	// sha256("crack/b.jpg\t<sha(B)>\nfree/a.jpg\t<sha(A)>\n"), as Python's hashlib gives it.
	want := "sha256:" + SHA256([]byte("crack/b.jpg\t"+SHA256([]byte("B"))+"\nfree/a.jpg\t"+SHA256([]byte("A"))+"\n"))
	if f1 != want {
		t.Errorf("fingerprint %s, want %s", f1, want)
	}
	write("free/a.jpg", "A2")
	if f3, _ := Fingerprint(dir, []string{a, b}); f3 == f1 {
		t.Error("changing an image must change the fingerprint")
	}
}
