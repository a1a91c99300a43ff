package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Stdio is where a command reads and writes; tests pass buffers.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// Command is one subcommand of a binary. Run returns a *UsageError for bad
// input (exit 2) and any other error for a failure at run time (exit 1).
type Command struct {
	Name    string
	Summary string
	Run     func(ctx context.Context, stdio Stdio, args []string) error
}

// Dispatch runs the subcommand named by args[0] and returns the exit code.
// prog is the binary's name, about its one-line description.
func Dispatch(ctx context.Context, prog, about string, cmds []Command, args []string, stdio Stdio) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdio.Out, prog, about, cmds)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range cmds {
		if c.Name != args[0] {
			continue
		}
		err := c.Run(ctx, stdio, args[1:])
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		if err != nil {
			fmt.Fprintf(stdio.Err, "%s %s: %v\n", prog, c.Name, err)
		}
		return ExitCode(err)
	}
	fmt.Fprintf(stdio.Err, "%s: unknown command %q\n\n", prog, args[0])
	usage(stdio.Err, prog, about, cmds)
	return ExitUsage
}

func usage(w io.Writer, prog, about string, cmds []Command) {
	fmt.Fprintln(w, about)
	fmt.Fprintf(w, "\nUsage: %s COMMAND [flags]\n\nCommands:\n", prog)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-8s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(w, "\nRun '%s COMMAND -h' for a command's flags.\n", prog)
}

// NewFlags returns a flag set that writes its messages to stdio.Err.
func NewFlags(name string, stdio Stdio) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	return fs
}

// ParseFlags parses args; a flag error becomes a *UsageError, -h stays flag.ErrHelp.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &UsageError{Err: err}
	}
	return nil
}
