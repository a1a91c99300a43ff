package output

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// JSONL appends every message as one JSON line to a local file: the
// plant-side log of verdicts, shadow ones included. When the file reaches
// MaxBytes it is renamed to <path>.1 (replacing the previous one) and a new
// file is started, so the sink never fills the disk.
type JSONL struct {
	path     string
	maxBytes int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

// DefaultJSONLMax is the size at which the JSON-lines file is rotated.
const DefaultJSONLMax = 64 << 20

// OpenJSONL opens (appends to) path, creating its directory.
func OpenJSONL(path string, maxBytes int64) (*JSONL, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultJSONLMax
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("jsonl output: %w", err)
	}
	j := &JSONL{path: path, maxBytes: maxBytes}
	if err := j.open(); err != nil {
		return nil, err
	}
	return j, nil
}

func (j *JSONL) open() error {
	f, err := os.OpenFile(j.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("jsonl output: %w (check outputs.jsonl and the directory's permissions)", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("jsonl output: %w", err)
	}
	j.f, j.size = f, st.Size()
	return nil
}

// Name implements Output.
func (j *JSONL) Name() string { return "jsonl" }

// Actuating implements Output: the file records every decision.
func (j *JSONL) Actuating() bool { return false }

// Send implements Output.
func (j *JSONL) Send(_ context.Context, m *Message) error {
	b, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("jsonl: encode: %w", err)
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return fmt.Errorf("jsonl: closed")
	}
	if j.size+int64(len(b)) > j.maxBytes && j.size > 0 {
		if err := j.rotate(); err != nil {
			return err
		}
	}
	n, err := j.f.Write(b)
	j.size += int64(n)
	if err != nil {
		return fmt.Errorf("jsonl: write %s: %w", j.path, err)
	}
	return nil
}

func (j *JSONL) rotate() error {
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("jsonl: rotate: %w", err)
	}
	j.f = nil
	if err := os.Rename(j.path, j.path+".1"); err != nil {
		return fmt.Errorf("jsonl: rotate: %w", err)
	}
	return j.open()
}

// Close implements Output; it syncs the file.
func (j *JSONL) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Sync()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	j.f = nil
	return err
}
