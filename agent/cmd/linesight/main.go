// Command linesight is the LineSight edge agent: it captures parts on a
// line, runs the model, decides pass, reject or defer, and keeps every
// record until the cloud has it. See the README for the subcommands.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/linesight/linesight/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}

// Stdio and command are the shared CLI types (internal/cli).
type (
	Stdio   = cli.Stdio
	command = cli.Command
)

func commands() []command {
	return []command{
		{Name: "run", Summary: "run a line device: linesight run -c FILE", Run: runCmd},
		{Name: "demo", Summary: "run the synthetic demo line with the built-in model and an embedded broker", Run: demoCmd},
		{Name: "config", Summary: "check a configuration file: linesight config check FILE", Run: configCmd},
		{Name: "user", Summary: "make a password hash for the review UI: linesight user hash < password", Run: userCmd},
		{Name: "synth", Summary: "write a labelled synthetic magnetic-tile dataset: linesight synth --out DIR --n N --seed S", Run: synthCmd},
		{Name: "model", Summary: "inspect and benchmark models: linesight model inspect|bench DIR", Run: modelCmd},
		{Name: "version", Summary: "print the LineSight, OpenCV and ONNX Runtime versions and usable execution providers", Run: versionCmd},
	}
}

// Main runs the linesight command line and returns the process exit code.
// It is main without the process: tests call it directly.
func Main(ctx context.Context, args []string, stdio Stdio) int {
	return cli.Dispatch(ctx, "linesight", "LineSight: an edge inference agent for factory visual inspection.", commands(), args, stdio)
}

// newFlags returns a flag set for "linesight NAME".
func newFlags(name string, stdio Stdio) *flag.FlagSet { return cli.NewFlags("linesight "+name, stdio) }

// parseFlags parses args; a flag error is a usage error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) error { return cli.ParseFlags(fs, args) }
