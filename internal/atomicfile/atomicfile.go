package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes b to path with permissions perm, durably and atomically:
// it writes TempName(path), fsyncs it, renames it over path and fsyncs the
// directory. On error the temp file is removed and path is as it was. One
// writer per path at a time (the temp file's name is fixed, so that a
// crash leaves a name the owner can clean up).
func WriteFile(path string, b []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.OpenFile(TempName(path), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// TempName is the temp file WriteFile writes before it renames it to path.
func TempName(path string) string { return path + ".tmp" }

// SyncDir fsyncs the directory dir, making the renames and creations in
// it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
