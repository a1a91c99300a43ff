package uplink_test

import (
	"bufio"
	"context"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/sync/uplink"
)

// The agent side of TestAgentKilled runs in a child process: the test
// binary started again with these set.
const (
	killChildStore  = "LINESIGHT_TEST_KILL_STORE"
	killChildBroker = "LINESIGHT_TEST_KILL_BROKER"
)

// stallingOutbox is the store, except that after 20 acknowledged entries
// its Ack says so on stdout and never commits: the child is then frozen
// between publishing entries (which the collector has written and acked)
// and removing them from its outbox, where the parent kills it.
type stallingOutbox struct {
	*store.Store
	acks atomic.Int64
}

func (s *stallingOutbox) Ack(ctx context.Context, ids ...string) (int, error) {
	if s.acks.Load() >= 20 {
		os.Stdout.WriteString("stalled in ack\n")
		select {}
	}
	n, err := s.Store.Ack(ctx, ids...)
	s.acks.Add(int64(n))
	return n, err
}

// runKillChild is the child: the real store (fsync on) and uplink, paced so
// that the burst is still in progress when the parent kills it.
func runKillChild(t *testing.T) {
	st, err := store.Open(os.Getenv(killChildStore), store.Options{RetentionEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	u, err := uplink.New(uplink.Options{Broker: os.Getenv(killChildBroker), Site: "s1", Device: "d1",
		Outbox: &stallingOutbox{Store: st}, DrainRate: 200, Window: 64, AckTimeout: time.Minute, PollEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {} // until SIGKILL
}

// TestAgentKilled kills the agent side with SIGKILL between publishing
// samples and acknowledging them in its store, then starts it again on the
// same bbolt file: every labelled sample reaches the dataset exactly once,
// byte-identical.
func TestAgentKilled(t *testing.T) {
	if os.Getenv(killChildStore) != "" {
		runKillChild(t)
		return
	}
	b := openBroker(t)
	path := filepath.Join(t.TempDir(), "agent.db")
	st := openStore(t, path)
	imgs, cls := seed(t, st, 200, 5000, rand.New(rand.NewSource(6)))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	col := openCollector(t, b.URL(), dir, "fleet1", "")
	defer col.Close()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^TestAgentKilled$")
	cmd.Env = append(os.Environ(), killChildStore+"="+path, killChildBroker+"="+b.URL())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stalled := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "stalled in ack") {
				close(stalled)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-stalled:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the child never reached its stalled ack")
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()

	// Some entries are in the dataset and still in the outbox: published and
	// written, their ack not committed.
	st = openStore(t, path)
	defer st.Close()
	pending, err := st.Pending(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	written := col.Dataset().Len()
	if len(pending) == len(imgs) || written == 0 || written+len(pending) <= len(imgs) {
		t.Fatalf("not killed between publish and ack: %d pending, %d in the dataset, %d labelled", len(pending), written, len(imgs))
	}
	t.Logf("killed with %d entries pending, %d samples in the dataset (%d both)", len(pending), written, written+len(pending)-len(imgs))

	u := openUplink(t, b.URL(), st, nil)
	defer u.Close()
	waitFor(t, "outbox drained after the restart", func() bool { return outboxLen(t, st) == 0 })
	checkDataset(t, dir, imgs, cls, len(imgs))
	if s := col.Stats(); s.Samples != uint64(len(imgs)) || s.Duplicates == 0 {
		t.Errorf("collector: %+v (want every sample once, and the redelivered ones seen as duplicates)", s)
	}
}
