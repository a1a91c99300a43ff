package rollout

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Source serves a release's chunks from the package directory it was
// built from (the fleet side). It is safe for concurrent use.
type Source struct {
	dir   string
	r     *Release
	spans []Span
}

// NewSource serves r's chunks from dir.
func NewSource(dir string, r *Release) *Source {
	return &Source{dir: dir, r: r, spans: r.Spans()}
}

// Chunks is the number of chunks.
func (s *Source) Chunks() int { return len(s.spans) }

// Chunk reads chunk k and checks it against its signed sha256 (so that a
// package changed on disk after push is never sent as the signed one).
func (s *Source) Chunk(k int) ([]byte, error) {
	if k < 0 || k >= len(s.spans) {
		return nil, fmt.Errorf("chunk %d of %d: %w", k, len(s.spans), ErrBadRelease)
	}
	sp := s.spans[k]
	f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(s.r.Files[sp.File].Path)))
	if err != nil {
		return nil, fmt.Errorf("read chunk %d: %w", k, err)
	}
	defer f.Close()
	b := make([]byte, sp.Len)
	if _, err := f.ReadAt(b, sp.Offset); err != nil {
		return nil, fmt.Errorf("read chunk %d: %w", k, err)
	}
	if sha256hex(b) != s.r.Chunks[k] {
		return nil, fmt.Errorf("chunk %d: %s changed since it was signed: %w", k, s.r.Files[sp.File].Path, ErrCorruptChunk)
	}
	return b, nil
}

// Assembler collects a release's chunks on disk (device side), one file
// per verified chunk, so that a transfer resumes after a restart or a lost
// link: NewAssembler re-verifies what is already there and Missing lists
// the rest. It is safe for concurrent use.
type Assembler struct {
	dir   string
	r     *Release
	spans []Span

	mu   sync.Mutex
	have []bool
	n    int
}

// NewAssembler opens (creating) the chunk directory dir for r and keeps
// the chunks already there whose sha256 still matches; others are removed.
func NewAssembler(dir string, r *Release) (*Assembler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("assembler: %w", err)
	}
	a := &Assembler{dir: dir, r: r, spans: r.Spans()}
	a.have = make([]bool, len(a.spans))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("assembler: %w", err)
	}
	for _, e := range ents {
		k, err := strconv.Atoi(e.Name())
		p := filepath.Join(dir, e.Name())
		if err != nil || k < 0 || k >= len(a.spans) || e.Name() != chunkName(k) {
			os.Remove(p) // temp files of an interrupted write, strays
			continue
		}
		b, err := os.ReadFile(p)
		if err == nil && len(b) == a.spans[k].Len && sha256hex(b) == r.Chunks[k] {
			a.have[k] = true
			a.n++
		} else {
			os.Remove(p)
		}
	}
	return a, nil
}

func chunkName(k int) string { return fmt.Sprintf("%06d", k) }

// Total is the number of chunks in the release.
func (a *Assembler) Total() int { return len(a.spans) }

// Have is the number of verified chunks on disk.
func (a *Assembler) Have() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// Missing lists up to limit chunk indexes not yet received (all when limit <= 0).
func (a *Assembler) Missing(limit int) []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	var m []int
	for k, ok := range a.have {
		if !ok {
			m = append(m, k)
			if limit > 0 && len(m) == limit {
				break
			}
		}
	}
	return m
}

// Done reports whether every chunk is on disk.
func (a *Assembler) Done() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n == len(a.spans)
}

// Put stores chunk k after checking its size and sha256 against the
// signed release; a mismatch wraps ErrCorruptChunk and stores nothing.
// A chunk already held is ignored (redelivery is harmless).
func (a *Assembler) Put(k int, data []byte) error {
	if k < 0 || k >= len(a.spans) {
		return fmt.Errorf("chunk %d of %d: %w", k, len(a.spans), ErrCorruptChunk)
	}
	if len(data) != a.spans[k].Len || sha256hex(data) != a.r.Chunks[k] {
		return fmt.Errorf("chunk %d: %d bytes, sha256 differs from the signed one: %w", k, len(data), ErrCorruptChunk)
	}
	a.mu.Lock()
	held := a.have[k]
	a.mu.Unlock()
	if held {
		return nil
	}
	p := filepath.Join(a.dir, chunkName(k))
	tmp := p + ".tmp"
	// No fsync per chunk: NewAssembler re-verifies every chunk after a
	// crash, so a torn chunk is fetched again rather than trusted.
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("store chunk %d: %w", k, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("store chunk %d: %w", k, err)
	}
	a.mu.Lock()
	if !a.have[k] {
		a.have[k] = true
		a.n++
	}
	a.mu.Unlock()
	return nil
}

// Assemble writes the package's files under dst (which must not exist;
// it is created), each fsynced and checked against its signed sha256,
// then fsyncs the directories. The caller renames dst into place.
func (a *Assembler) Assemble(dst string) error {
	if !a.Done() {
		return fmt.Errorf("assemble: %d of %d chunks: %w", a.Have(), a.Total(), ErrIncomplete)
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return fmt.Errorf("assemble: %w", err)
	}
	dirs := map[string]bool{dst: true}
	k := 0
	for i, f := range a.r.Files {
		p := filepath.Join(dst, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("assemble: %w", err)
		}
		dirs[filepath.Dir(p)] = true
		out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("assemble: %w", err)
		}
		h := sha256.New()
		w := io.MultiWriter(out, h)
		for ; k < len(a.spans) && a.spans[k].File == i; k++ {
			b, err := os.ReadFile(filepath.Join(a.dir, chunkName(k)))
			if err == nil && sha256hex(b) != a.r.Chunks[k] {
				err = fmt.Errorf("chunk %d changed on disk: %w", k, ErrCorruptChunk)
				a.forget(k)
			}
			if err == nil {
				_, err = w.Write(b)
			}
			if err != nil {
				out.Close()
				return fmt.Errorf("assemble %s: %w", f.Path, err)
			}
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return fmt.Errorf("assemble %s: %w", f.Path, err)
		}
		if err := out.Close(); err != nil {
			return fmt.Errorf("assemble %s: %w", f.Path, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
			return fmt.Errorf("assemble %s: sha256 %s, signed %s: %w", f.Path, got, f.SHA256, ErrCorruptChunk)
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("assemble: %w", err)
		}
	}
	return nil
}

func (a *Assembler) forget(k int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.have[k] {
		a.have[k] = false
		a.n--
	}
	os.Remove(filepath.Join(a.dir, chunkName(k)))
}

// Remove deletes the chunk directory (after the package is in place).
func (a *Assembler) Remove() error { return os.RemoveAll(a.dir) }

// CheckFiles verifies that dir holds exactly the release's files with their
// signed sizes and sha256 (extra files are an error too, other than the
// names in ignore). Errors wrap ErrCorruptChunk, or fs.ErrNotExist for a
// missing file.
func CheckFiles(dir string, r *Release, ignore ...string) error {
	want := map[string]File{}
	for _, f := range r.Files {
		want[f.Path] = f
	}
	skip := map[string]bool{}
	for _, n := range ignore {
		skip[n] = true
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skip[rel] {
			return nil
		}
		f, ok := want[rel]
		if !ok {
			return fmt.Errorf("%s is not in the signed release: %w", rel, ErrCorruptChunk)
		}
		delete(want, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if int64(len(b)) != f.Size || sha256hex(b) != f.SHA256 {
			return fmt.Errorf("%s differs from the signed release: %w", rel, ErrCorruptChunk)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	for p := range want {
		return fmt.Errorf("check %s: %s: %w", dir, p, fs.ErrNotExist)
	}
	return nil
}

// ReadChunks is a helper for transports that fetch a byte range of one
// file (HTTP): it splits r into the chunks of file i starting at chunk k0
// and puts each into a. It returns the number of chunks stored.
func ReadChunks(a *Assembler, file int, k0 int, rd io.Reader) (int, error) {
	n := 0
	for k := k0; k < len(a.spans) && a.spans[k].File == file; k++ {
		b := make([]byte, a.spans[k].Len)
		if _, err := io.ReadFull(rd, b); err != nil {
			if errors.Is(err, io.EOF) && n > 0 {
				return n, nil
			}
			return n, fmt.Errorf("read chunk %d: %w", k, err)
		}
		if err := a.Put(k, b); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
