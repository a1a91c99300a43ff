package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.json")
	for _, c := range []struct {
		data string
		perm os.FileMode
	}{{"one", 0o600}, {"two, longer", 0o644}} {
		if err := WriteFile(path, []byte(c.data), c.perm); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		st, serr := os.Stat(path)
		if err != nil || serr != nil || string(b) != c.data || st.Mode().Perm() != c.perm {
			t.Errorf("after writing %q %v: %q %v, %v %v", c.data, c.perm, b, err, st.Mode(), serr)
		}
	}
	// No temp files are left behind.
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("folder holds %d entries, want only a.json", len(es))
	}
	// A path in a missing folder fails and names the path.
	if err := WriteFile(filepath.Join(dir, "no", "b"), []byte("x"), 0o644); err == nil {
		t.Error("write into a missing folder succeeded")
	}
	// A directory in the way: the rename fails, the temp file is removed.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d", "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "d"), []byte("x"), 0o644); err == nil {
		t.Error("replacing a non-empty folder succeeded")
	}
	if es, _ := os.ReadDir(dir); len(es) != 2 {
		t.Errorf("folder holds %d entries after a failed write, want 2 (a.json, d)", len(es))
	}
}
