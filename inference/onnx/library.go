package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Pinned ONNX Runtime release; scripts/setup.sh installs exactly this build.
const (
	RuntimeVersion = "1.24.1"
	LibraryName    = "libonnxruntime.so.1"
	// EnvLibrary names the environment variable that points at the library.
	EnvLibrary = "LINESIGHT_ONNXRUNTIME_LIB"
	// cacheDir is where scripts/setup.sh puts the library, relative to the repository root.
	cacheDir = ".cache/onnxruntime/" + RuntimeVersion + "/linux-x64"
)

// InstallHint is the command that installs the pinned library.
const InstallHint = "run scripts/setup.sh (or make setup) in the LineSight checkout, or set " + EnvLibrary + " to the path of " + LibraryName + " " + RuntimeVersion

// ErrLibraryNotFound is returned (wrapped in *LibraryNotFoundError) when no
// ONNX Runtime library can be found.
var ErrLibraryNotFound = errors.New("onnx runtime library not found")

// LibraryNotFoundError lists every place that was searched.
type LibraryNotFoundError struct {
	Searched []string
}

func (e *LibraryNotFoundError) Error() string {
	return fmt.Sprintf("ONNX Runtime library %s not found; searched:\n  %s\nto install it: %s",
		LibraryName, strings.Join(e.Searched, "\n  "), InstallHint)
}

func (e *LibraryNotFoundError) Unwrap() error { return ErrLibraryNotFound }

// LibrarySearch says where FindLibrary looks. Zero fields are filled from the
// process (environment, executable path, working directory).
type LibrarySearch struct {
	Configured string // from config; when set, it is the only candidate
	Env        string // value of LINESIGHT_ONNXRUNTIME_LIB
	ExeDir     string // directory of the running binary
	WorkDir    string // working directory; it and its parents are searched for the setup cache
}

// Candidates returns the paths FindLibrary tries, in order.
func (s LibrarySearch) Candidates() []string {
	if s.Configured != "" {
		return []string{s.Configured}
	}
	var c []string
	if s.Env != "" {
		c = append(c, s.Env)
	}
	if s.ExeDir != "" {
		c = append(c,
			filepath.Join(s.ExeDir, LibraryName),
			filepath.Join(s.ExeDir, "..", "lib", LibraryName),
			filepath.Join(s.ExeDir, "..", cacheDir, LibraryName))
	}
	if s.WorkDir != "" {
		for dir := s.WorkDir; ; dir = filepath.Dir(dir) {
			c = append(c, filepath.Join(dir, cacheDir, LibraryName))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	c = append(c,
		"/usr/local/lib/"+LibraryName,
		"/usr/lib/x86_64-linux-gnu/"+LibraryName,
		"/usr/lib/"+LibraryName,
		"/opt/onnxruntime/lib/"+LibraryName)
	// Clean and de-duplicate, keeping the order.
	seen := map[string]bool{}
	out := c[:0]
	for _, p := range c {
		p = filepath.Clean(p)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// FindLibrary returns the first candidate that is a regular file.
func (s LibrarySearch) FindLibrary() (string, error) {
	cands := s.Candidates()
	for _, p := range cands {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", &LibraryNotFoundError{Searched: cands}
}

// ProcessSearch fills a LibrarySearch from the running process.
func ProcessSearch(configured string) LibrarySearch {
	s := LibrarySearch{Configured: configured, Env: os.Getenv(EnvLibrary)}
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		s.ExeDir = filepath.Dir(exe)
	}
	if wd, err := os.Getwd(); err == nil {
		s.WorkDir = wd
	}
	return s
}
