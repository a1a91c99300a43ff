package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/linesight/linesight/internal/cli"
)

func run(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(ctx, args, cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestConfigCheck(t *testing.T) {
	if code, out, errs := run(t, context.Background(), "config", "check", "../../../configs/fleet.yaml"); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("config check fleet.yaml = %d %q %q", code, out, errs)
	}
	if code, _, errs := run(t, context.Background(), "config", "check", "nope.yaml"); code != cli.ExitUsage || !strings.Contains(errs, "nope.yaml") {
		t.Errorf("missing file = %d %q", code, errs)
	}
}

func TestServeStartsAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	type res struct {
		code     int
		out, err string
	}
	done := make(chan res, 1)
	go func() {
		c, o, e := run(t, ctx, "serve", "-listen", "127.0.0.1:0", "-broker-listen", "127.0.0.1:0", "-dataset", t.TempDir())
		done <- res{c, o, e}
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case r := <-done:
		if r.code != 0 || !strings.Contains(r.out, "stopped cleanly") || !strings.Contains(r.out, "MQTT broker: tcp://127.0.0.1:") {
			t.Fatalf("serve = %d\nstdout %s\nstderr %s", r.code, r.out, r.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
}

// TestPureGo checks the fleet binary's import graph: no cgo anywhere, and
// nothing from the edge agent, camera or inference.
func TestPureGo(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{len .CgoFiles}}", ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := f[0]
		for _, banned := range []string{
			"github.com/linesight/linesight/agent",
			"github.com/linesight/linesight/camera",
			"github.com/linesight/linesight/inference",
			"gocv.io/",
			"github.com/yalue/onnxruntime_go",
		} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("linesight-fleet must not depend on %s", pkg)
			}
		}
		if f[1] != "0" {
			t.Errorf("%s has cgo files; linesight-fleet must build with CGO_ENABLED=0", pkg)
		}
	}
}
