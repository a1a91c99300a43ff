// Command linesight is the LineSight edge agent: it captures parts on a
// line, runs the model, decides pass, reject or defer, and keeps every
// record until the cloud has it. See the README for the subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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

// Stdio is where a command reads and writes; tests pass buffers.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// command is one subcommand. run returns a *cli.UsageError for bad input
// (exit 2) and any other error for a failure at run time (exit 1).
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, io Stdio, args []string) error
}

func commands() []command {
	return []command{
		{"run", "run a line device: linesight run -c FILE", runCmd},
		{"demo", "run the synthetic demo line with the built-in model and an embedded broker", demoCmd},
		{"config", "check a configuration file: linesight config check FILE", configCmd},
		{"version", "print the LineSight, OpenCV and ONNX Runtime versions and usable execution providers", versionCmd},
	}
}

// Main runs the linesight command line and returns the process exit code.
// It is main without the process: tests call it directly.
func Main(ctx context.Context, args []string, stdio Stdio) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdio.Out)
		if len(args) == 0 {
			return cli.ExitUsage
		}
		return cli.ExitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, stdio, args[1:])
		if errors.Is(err, flag.ErrHelp) {
			return cli.ExitOK
		}
		if err != nil {
			fmt.Fprintf(stdio.Err, "linesight %s: %v\n", c.name, err)
		}
		return cli.ExitCode(err)
	}
	fmt.Fprintf(stdio.Err, "linesight: unknown command %q\n\n", args[0])
	usage(stdio.Err)
	return cli.ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "LineSight: an edge inference agent for factory visual inspection.")
	fmt.Fprintln(w, "\nUsage: linesight COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'linesight COMMAND -h' for a command's flags.")
}

// newFlags returns a flag set that reports errors as usage errors.
func newFlags(name string, stdio Stdio) *flag.FlagSet {
	fs := flag.NewFlagSet("linesight "+name, flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	return fs
}

// parseFlags parses args and wraps a flag error as a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &cli.UsageError{Err: err}
	}
	return nil
}
