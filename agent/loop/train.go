package loop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Recipe is how a model is trained: the same for the first model and the
// retrained one, so that only the data differs.
type Recipe struct {
	Size   int // input side in pixels (multiple of 16)
	Width  int // channels of the first convolution
	Epochs int
	// SamplesPerEpoch: images drawn per epoch (0: the training split's size,
	// so more data means more steps, as a plant's retraining would).
	SamplesPerEpoch int
	Seed            int
}

// TrainOptions say what Train runs.
type TrainOptions struct {
	// Python is the interpreter (default /usr/bin/python3, which has torch).
	Python string
	// Script is scripts/train/train.py.
	Script string
	// Data is the folder dataset (CLASS/NAME.jpg); Out the package to write.
	Data, Out string
	// Name and Version go into the manifest.
	Name, Version string
	Recipe        Recipe
	// Threads for torch (default 1: the machine is shared with the line).
	Threads int
	// Nice runs the script at the lowest CPU priority (nice -n 19) so the
	// line it shares the machine with keeps its pace.
	Nice bool
	// Progress, when set, gets the script's output line by line.
	Progress func(line string)
}

// Args are the script's arguments for o.
func (o TrainOptions) Args() []string {
	r := o.Recipe
	return []string{o.Script, "--data", o.Data, "--out", o.Out, "--name", o.Name, "--version", o.Version,
		"--size", strconv.Itoa(r.Size), "--width", strconv.Itoa(r.Width), "--epochs", strconv.Itoa(r.Epochs),
		"--samples-per-epoch", strconv.Itoa(r.SamplesPerEpoch), "--seed", strconv.Itoa(r.Seed),
		"--threads", strconv.Itoa(max(o.Threads, 1)), "--no-int8", "--no-links", "--quiet"}
}

// FindScript looks for scripts/train/train.py in dir and its parents.
func FindScript(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find scripts/train/train.py: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "scripts", "train", "train.py")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("scripts/train/train.py not found in %s or its parents (run from the repository, or pass the script)", dir)
		}
	}
}

// Train runs the training script and waits for it. When ctx ends the
// script gets SIGTERM, then SIGKILL five seconds later. The error carries
// the end of the script's output.
func Train(ctx context.Context, o TrainOptions) error {
	if o.Python == "" {
		o.Python = "/usr/bin/python3"
	}
	name, args := o.Python, o.Args()
	if o.Nice {
		name, args = "nice", append([]string{"-n", "19", o.Python}, args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	threads := strconv.Itoa(max(o.Threads, 1))
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS="+threads, "MKL_NUM_THREADS="+threads, "PYTHONUNBUFFERED=1")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var tail []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if tail = append(tail, line); len(tail) > 15 {
				tail = tail[1:]
			}
			if o.Progress != nil {
				o.Progress(line)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	pw.Close()
	<-done
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("train %s: %w", o.Out, ctx.Err())
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("train %s: %w:\n%s", o.Out, err, strings.Join(tail, "\n"))
		}
		return fmt.Errorf("train %s: %w (is %s installed? see scripts/setup.sh)", o.Out, err, o.Python)
	}
	return nil
}
