package uplink_test

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/sync/broker"
	"github.com/linesight/linesight/sync/uplink"
)

// BenchmarkDrain measures the outbox drain to a local (embedded) broker and
// a collector writing the dataset (durable before it acks): b.N labelled
// samples of 50 KB each, from the first publish until the last collector
// ack has been committed (with fsync) to the store. Reported as samples/s.
func BenchmarkDrain(b *testing.B) {
	br, err := broker.Open(broker.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	// Seeded without fsync (not measured), drained with it, as on a device.
	path := filepath.Join(b.TempDir(), "agent.db")
	st := openStore(b, path)
	seedClasses(b, st, b.N, 50<<10, rand.New(rand.NewSource(5)), runClasses())
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	st, err = store.Open(path, store.Options{RetentionEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	col := openCollector(b, br.URL(), b.TempDir(), "fleet1", "")
	defer col.Close()
	b.SetBytes(50 << 10)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	u := openUplink(b, br.URL(), st, func(o *uplink.Options) { o.DrainRate = 1e6; o.Window = 512; o.PollEvery = 5 * time.Millisecond })
	defer u.Close()
	for outboxLen(b, st) > 0 {
		time.Sleep(2 * time.Millisecond)
	}
	wall, cpu := time.Since(start), cpuTime(b)-cpu0
	b.ReportMetric(float64(b.N)/wall.Seconds(), "samples/s")
	// CPU of this process (uplink, broker and collector) per sample, and
	// the share of the available CPUs it used: near 1 means CPU-bound,
	// well under 1 means something waits.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/sample")
	b.ReportMetric(cpu.Seconds()/wall.Seconds()/float64(runtime.GOMAXPROCS(0)), "cpu-share")
	b.Logf("uplink %+v collector %+v", u.Stats(), col.Stats())
	b.StopTimer()
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runClasses are the class names of one benchmark run: the usual ones with
// a suffix of the run's own. On an ext4 without a journal (this project's
// VM) a new class folder of a name used before lands in the same block
// group (the dataset directory is chattr +T: ext4 picks the group from the
// name's hash), where the previous run's files were just deleted, and each
// create would pay for them (see fleet's spreadClasses); a collector, which
// never deletes, does not see that. Elsewhere the names change nothing.
func runClasses() []string {
	out := make([]string, len(classes))
	for i, c := range classes {
		out[i] = fmt.Sprintf("%s-%x", c, time.Now().UnixNano())
	}
	return out
}
