package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"gocv.io/x/gocv"

	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/internal/cli"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// buildVersion returns the version and, when built from git, the commit.
func buildVersion() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			v += " (" + rev + dirty + ")"
		}
	}
	return v
}

func versionCmd(ctx context.Context, stdio Stdio, args []string) error {
	fs := newFlags("version", stdio)
	lib := fs.String("onnxruntime-lib", "", "path of "+onnx.LibraryName+" (default: search, see README)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	out := stdio.Out
	fmt.Fprintf(out, "LineSight     %s\n", buildVersion())
	fmt.Fprintf(out, "Go            %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(out, "OpenCV        %s (gocv %s)\n", gocv.OpenCVVersion(), gocv.Version())
	rt, err := onnx.OpenRuntime(onnx.ProcessSearch(*lib))
	if err != nil {
		fmt.Fprintf(out, "ONNX Runtime  not loaded\n")
		return &cli.UsageError{Err: err}
	}
	defer rt.Close()
	fmt.Fprintf(out, "ONNX Runtime  %s (%s)\n", rt.Version(), rt.Path())
	ps, err := rt.AvailableProviders()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Providers     %s (compiled into this ONNX Runtime; cpu is always the fallback)\n", strings.Join(ps, ", "))
	return nil
}
