package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linesight/linesight/internal/affinity"
	"github.com/linesight/linesight/internal/cli"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runMain(ctx context.Context, stdin string, args ...string) (int, string, string) {
	var out, errb syncBuffer
	code := Main(ctx, args, Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	if code, _, _ := runMain(context.Background(), ""); code != cli.ExitUsage {
		t.Errorf("no arguments: exit %d, want 2", code)
	}
	if code, out, _ := runMain(context.Background(), "", "help"); code != 0 || !strings.Contains(out, "demo") {
		t.Errorf("help: exit %d, out %q", code, out)
	}
	if code, _, errs := runMain(context.Background(), "", "frobnicate"); code != cli.ExitUsage || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, err %q", code, errs)
	}
	if code, _, errs := runMain(context.Background(), "", "run", "-bogus"); code != cli.ExitUsage || !strings.Contains(errs, "bogus") {
		t.Errorf("bad flag: exit %d, err %q", code, errs)
	}
	if code, _, errs := runMain(context.Background(), "", "run"); code != cli.ExitUsage || !strings.Contains(errs, "-c FILE") {
		t.Errorf("run without -c: exit %d, err %q", code, errs)
	}
}

func TestVersion(t *testing.T) {
	code, out, errs := runMain(context.Background(), "", "version")
	if code != 0 {
		t.Fatalf("version: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"LineSight", "OpenCV        4.6.0", "ONNX Runtime  1.24.1", "Providers", "cpu"} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}

func TestVersionLibraryMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	code, _, errs := runMain(context.Background(), "", "version", "-onnxruntime-lib", missing)
	if code != cli.ExitUsage {
		t.Errorf("exit %d, want 2", code)
	}
	for _, want := range []string{missing, "scripts/setup.sh", "LINESIGHT_ONNXRUNTIME_LIB"} {
		if !strings.Contains(errs, want) {
			t.Errorf("error should mention %q:\n%s", want, errs)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	files, _ := filepath.Glob("../../../configs/*.yaml")
	for _, f := range files {
		if filepath.Base(f) == "fleet.yaml" {
			continue
		}
		if code, out, errs := runMain(context.Background(), "", "config", "check", f); code != 0 || !strings.Contains(out, ": ok") {
			t.Errorf("config check %s: exit %d\n%s%s", f, code, out, errs)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("cameras:\n  - id: a\n    source: {kind: usb}\n"), 0o644)
	code, _, errs := runMain(context.Background(), "", "config", "check", bad)
	if code != cli.ExitUsage || !strings.Contains(errs, bad) || !strings.Contains(errs, `cameras[0].source.kind: "usb" is not allowed; use one of: device, url, file, folder, synthetic`) {
		t.Errorf("invalid config: exit %d\n%s", code, errs)
	}
	unreadable := filepath.Join(t.TempDir(), "nope.yaml")
	if code, _, errs := runMain(context.Background(), "", "config", "check", unreadable); code != cli.ExitUsage || !strings.Contains(errs, unreadable) {
		t.Errorf("missing config: exit %d\n%s", code, errs)
	}
}

func TestUserHash(t *testing.T) {
	code, out, errs := runMain(context.Background(), "correct horse\n", "user", "hash", "-cost", "4")
	if code != 0 || !strings.HasPrefix(out, "$2a$04$") {
		t.Fatalf("user hash: exit %d %q %q", code, out, errs)
	}
	if code, _, _ := runMain(context.Background(), "", "user", "hash"); code != cli.ExitUsage {
		t.Errorf("empty password: exit %d, want 2", code)
	}
	if code, _, _ := runMain(context.Background(), "short\n", "user", "hash"); code != cli.ExitUsage {
		t.Errorf("short password: exit %d, want 2", code)
	}
}

var uiLine = regexp.MustCompile(`operator UI: (http://\S+)`)

// TestDemoStartsAndStops boots the demo in-process on free ports, fetches
// the operator UI it prints, and stops it the way Ctrl-C does.
func TestDemoStartsAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	// model.cpus auto in-process: the agent gives the CPUs back when it stops.
	cfg := filepath.Join(t.TempDir(), "demo.yaml")
	os.WriteFile(cfg, []byte("model:\n  cpus: auto\n"), 0o644)
	allowed, _ := affinity.Allowed()
	go func() {
		done <- Main(ctx, []string{"demo", "-c", cfg, "-listen", "127.0.0.1:0", "-broker-listen", "127.0.0.1:0", "-data", t.TempDir()},
			Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	}()
	var url string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && url == ""; time.Sleep(20 * time.Millisecond) {
		if m := uiLine.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		cancel()
		t.Fatalf("demo printed no UI address:\n%s\n%s", out.String(), errb.String())
	}
	resp, err := http.Get(url + "status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "demo-01") || !strings.Contains(string(body), "(built-in)") || !strings.Contains(string(body), "<b>cpu</b>") ||
		(len(allowed) >= 2 && !strings.Contains(string(body), "reserved for it")) {
		t.Errorf("status page %sstatus = %d:\n%s", url, resp.StatusCode, body)
	}
	// The synthetic line is inspected: parts show up in the metrics.
	decided := regexp.MustCompile(`linesight_verdicts_total\{camera="cam1",reason="[a-z-]+",verdict="(pass|reject|defer)"\} [1-9]`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(url + "metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if decided.Match(body) && strings.Contains(string(body), `linesight_model_info{name="builtin-synthetic-tiles"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no decisions in /metrics after 30 s:\n%s", body)
		}
	}
	// The review API serves the running line (open access in the demo).
	resp, err = http.Get(url + "api/v1/live")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"running":true`) || !strings.Contains(string(body), `"id":"cam1"`) || !strings.Contains(string(body), `"last":[`) {
		t.Errorf("live view from the pipeline: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(out.String(), "stopped cleanly") || !regexp.MustCompile(`cam1: [1-9][0-9]* parts: `).MatchString(out.String()) {
			t.Errorf("demo exit %d\n%s\n%s", code, out.String(), errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not stop")
	}
	if after, _ := affinity.Allowed(); !slices.Equal(after, allowed) {
		t.Errorf("after the demo this thread may run on CPUs %v, before on %v", after, allowed)
	}
}

func TestDemoLibraryMissing(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "demo.yaml")
	os.WriteFile(cfg, []byte("model:\n  onnxruntime_library: /nonexistent/libonnxruntime.so.1\n"), 0o644)
	code, _, errs := runMain(context.Background(), "", "demo", "-c", cfg)
	if code != cli.ExitUsage || !strings.Contains(errs, "/nonexistent/libonnxruntime.so.1") {
		t.Errorf("exit %d, want 2 naming the path:\n%s", code, errs)
	}
}

// TestBinarySIGINT builds the real binary and stops the demo with SIGINT, as
// Ctrl-C in a terminal does.
func TestBinarySIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "linesight")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The demo runs with model.cpus: auto, as a device would: the model's
	// CPU holds the session's thread and nothing else of the agent's.
	cfg := filepath.Join(t.TempDir(), "demo.yaml")
	os.WriteFile(cfg, []byte("model:\n  cpus: auto\n"), 0o644)
	allowed, _ := affinity.Allowed()
	cmd := exec.Command(bin, "demo", "-c", cfg, "-listen", "127.0.0.1:0", "-broker-listen", "127.0.0.1:0", "-data", t.TempDir())
	stdout, _ := cmd.StdoutPipe()
	var errb syncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var all []string
	wait := time.After(30 * time.Second)
	for started := false; !started; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo exited early:\n%s\n%s", strings.Join(all, "\n"), errb.String())
			}
			all = append(all, l)
			started = strings.Contains(l, "Press Ctrl-C")
		case <-wait:
			cmd.Process.Kill()
			t.Fatalf("demo did not start:\n%s", strings.Join(all, "\n"))
		}
	}
	if len(allowed) >= 2 {
		checkModelCPUs(t, cmd.Process.Pid, errb.String())
	}
	cmd.Process.Signal(syscall.SIGINT)
	for l := range lines {
		all = append(all, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo after SIGINT: %v\n%s\n%s", err, strings.Join(all, "\n"), errb.String())
	}
	if !strings.Contains(strings.Join(all, "\n"), "stopped cleanly") {
		t.Errorf("no clean stop:\n%s", strings.Join(all, "\n"))
	}
}

func TestRunBadModelPath(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "line.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+dir+"\nmodel:\n  path: "+filepath.Join(dir, "no-such-model")+"\nreview:\n  listen: 127.0.0.1:0\nmqtt:\n  broker: \"\"\n"), 0o644)
	code, _, errs := runMain(context.Background(), "", "run", "-c", cfg)
	if code != cli.ExitUsage || !strings.Contains(errs, "no-such-model") {
		t.Errorf("run with a missing model: exit %d, want 2 naming it:\n%s", code, errs)
	}
}

// checkModelCPUs reads the agent's threads' CPU masks from /proc: with
// model.cpus auto, at least one thread (the session's) runs on the model's
// CPUs alone, and no other thread may run there.
func checkModelCPUs(t *testing.T, pid int, logs string) {
	t.Helper()
	m := regexp.MustCompile(`cpus reserved for the model.*"model_cpus":"([0-9,-]+)"`).FindStringSubmatch(logs)
	if m == nil {
		t.Errorf("no reservation logged:\n%s", logs)
		return
	}
	model, err := affinity.Parse(m[1])
	if err != nil {
		t.Fatal(err)
	}
	threads, err := affinity.Threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	onModel := 0
	for tid, cpus := range threads {
		switch {
		case slices.Equal(cpus, model):
			onModel++
		case len(affinity.Without(cpus, model)) != len(cpus):
			t.Errorf("thread %d may run on the model's CPUs %s: %s", tid, m[1], affinity.Format(cpus))
		}
	}
	t.Logf("threads on the model CPUs %s: %d of %d", m[1], onModel, len(threads))
	if onModel == 0 {
		t.Errorf("no thread runs on the model's CPUs %s alone (%d threads)", m[1], len(threads))
	}
}
