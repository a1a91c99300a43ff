package onnx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCandidatesOrder(t *testing.T) {
	s := LibrarySearch{Env: "/env/lib.so", ExeDir: "/opt/ls/bin", WorkDir: "/src/ls/agent"}
	got := s.Candidates()
	wantPrefix := []string{
		"/env/lib.so",
		"/opt/ls/bin/libonnxruntime.so.1",
		"/opt/ls/lib/libonnxruntime.so.1",
		"/opt/ls/.cache/onnxruntime/1.24.1/linux-x64/libonnxruntime.so.1",
		"/src/ls/agent/.cache/onnxruntime/1.24.1/linux-x64/libonnxruntime.so.1",
		"/src/ls/.cache/onnxruntime/1.24.1/linux-x64/libonnxruntime.so.1",
	}
	for i, w := range wantPrefix {
		if got[i] != w {
			t.Errorf("candidate %d = %s, want %s", i, got[i], w)
		}
	}
	if got[len(got)-1] != "/opt/onnxruntime/lib/libonnxruntime.so.1" {
		t.Errorf("system paths should come last, got %v", got)
	}
}

func TestConfiguredIsOnlyCandidate(t *testing.T) {
	s := LibrarySearch{Configured: "/x/libonnxruntime.so.1", Env: "/env/lib.so", WorkDir: "/w"}
	if got := s.Candidates(); len(got) != 1 || got[0] != "/x/libonnxruntime.so.1" {
		t.Errorf("a configured path must be the only candidate, got %v", got)
	}
}

func TestFindLibraryMissingNamesPaths(t *testing.T) {
	dir := t.TempDir()
	s := LibrarySearch{Configured: filepath.Join(dir, "nope.so")}
	_, err := s.FindLibrary()
	var nf *LibraryNotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, ErrLibraryNotFound) {
		t.Fatalf("want LibraryNotFoundError, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{filepath.Join(dir, "nope.so"), "scripts/setup.sh", EnvLibrary} {
		if !strings.Contains(msg, want) {
			t.Errorf("message should mention %q:\n%s", want, msg)
		}
	}
}

func TestFindLibraryInParentCache(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, cacheDir, LibraryName)
	if err := os.MkdirAll(filepath.Dir(lib), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lib, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(root, "agent", "cmd")
	got, err := LibrarySearch{WorkDir: sub}.FindLibrary()
	if err != nil || got != lib {
		t.Fatalf("FindLibrary = %q, %v; want %q", got, err, lib)
	}
}

// TestOpenRuntime loads the real library installed by scripts/setup.sh.
func TestOpenRuntime(t *testing.T) {
	rt, err := OpenRuntime(ProcessSearch(""))
	if err != nil {
		t.Fatalf("open runtime (run scripts/setup.sh first): %v", err)
	}
	if v := rt.Version(); v != RuntimeVersion {
		t.Errorf("loaded ONNX Runtime %s, want the pinned %s", v, RuntimeVersion)
	}
	rt2, err := OpenRuntime(ProcessSearch(""))
	if err != nil {
		t.Fatalf("a second handle should join the environment: %v", err)
	}
	if err := rt2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(); err != nil {
		t.Fatalf("Close twice must be harmless: %v", err)
	}
}

func TestAvailableProvidersIncludesCPU(t *testing.T) {
	rt, err := OpenRuntime(ProcessSearch(""))
	if err != nil {
		t.Fatalf("open runtime (run scripts/setup.sh first): %v", err)
	}
	defer rt.Close()
	ps, err := rt.AvailableProviders()
	if err != nil {
		t.Fatal(err)
	}
	if ps[len(ps)-1] != ProviderCPU {
		t.Errorf("cpu should be the last resort in %v", ps)
	}
}
