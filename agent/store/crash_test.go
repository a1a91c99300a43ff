package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const crashEnv = "LINESIGHT_STORE_CRASH_DB"

// TestCrashHelper is the child of TestCrashKeepsAcknowledged: it writes
// inspections (every fourth with an image) and labels from many goroutines
// and prints "P <id>" or "L <id>" only after the call returned nil, i.e.
// after the store acknowledged it. The parent kills it with SIGKILL.
func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("child of TestCrashKeepsAcknowledged")
	}
	s, err := Open(path, Options{RetentionEvery: -1})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	say := func(kind, id string) { os.Stdout.WriteString(kind + " " + id + "\n") } // one write: atomic on a pipe
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)       // in case the parent dies
	defer cancel()
	var n atomic.Int64
	for g := 0; g < 16; g++ {
		go func() {
			for i := 0; ctx.Err() == nil; i++ {
				in := rec(s, time.Now(), fmt.Sprintf("cam%d", g%3), i%2 == 0)
				var img []byte
				if i%4 == 0 {
					img = []byte(strings.Repeat("j", 2000+int(n.Add(1)%500)))
				}
				if err := s.Put(ctx, in, img); err != nil {
					fmt.Println("put:", err)
					os.Exit(2)
				}
				say("P", in.ID)
				if in.Review && i%6 == 0 {
					if _, err := s.Label(ctx, LabelInput{ItemID: in.ID, By: fmt.Sprintf("insp%d", g), Class: "crack"}); err != nil {
						fmt.Println("label:", err)
						os.Exit(2)
					}
					say("L", in.ID)
				}
			}
		}()
	}
	<-ctx.Done()
	os.Exit(3)
}

// TestCrashKeepsAcknowledged kills a writer with SIGKILL in the middle of a
// burst, reopens the file and checks that every acknowledged record and
// label is there, with its image and its outbox entry, and that bbolt's
// consistency check passes.
func TestCrashKeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	for round := 0; round < 2; round++ { // the second round crashes a reopened file
		puts, labels := crashOnce(t, path, 1500)
		s, err := Open(path, Options{RetentionEvery: -1})
		if err != nil {
			t.Fatalf("reopen after crash: %v", err)
		}
		checkDB(t, s.DB())
		for _, id := range puts {
			if _, err := s.Get(id); err != nil {
				t.Fatalf("round %d: acknowledged inspection %s lost: %v", round, id, err)
			}
		}
		for _, id := range labels {
			l, err := s.GetLabel(id)
			if err != nil {
				t.Fatalf("round %d: acknowledged label on %s lost: %v", round, id, err)
			}
			if ok, _ := s.Acked(l.OutboxID()); ok {
				t.Fatalf("round %d: label %s has no outbox entry", round, l.ID)
			}
		}
		assertImagesConsistent(t, s)
		st, _ := s.Stats()
		if st.Labels != st.Outbox[KindLabel] {
			t.Fatalf("labels %d but %d label outbox entries", st.Labels, st.Outbox[KindLabel])
		}
		t.Logf("round %d: %d puts and %d labels acknowledged before SIGKILL; %d records in the file, %d orphan images swept", round, len(puts), len(labels), st.Inspections, st.OrphansSwept)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// crashOnce runs the child until it has acknowledged at least n Puts, kills
// it and returns every ID it acknowledged (complete lines only).
func crashOnce(t *testing.T, path string, n int) (puts, labels []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	killed := false
	for {
		line, err := r.ReadString('\n')
		if errors.Is(err, io.EOF) {
			break // a partial last line was never acknowledged
		}
		if err != nil {
			t.Fatal(err)
		}
		kind, id, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		switch {
		case ok && kind == "P":
			puts = append(puts, id)
		case ok && kind == "L":
			labels = append(labels, id)
		default:
			cmd.Process.Kill()
			t.Fatalf("child: %s", line)
		}
		if !killed && len(puts) >= n {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
	return puts, labels
}
