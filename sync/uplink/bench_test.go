package uplink_test

import (
	"math/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/linesight/linesight/sync/broker"
	"github.com/linesight/linesight/sync/uplink"
)

// BenchmarkDrain measures the outbox drain to a local (embedded) broker and
// a collector writing the dataset (fsync on): b.N labelled samples of 50 KB
// each, from the first publish until the last collector ack has been
// committed to the store. Reported as samples/s.
func BenchmarkDrain(b *testing.B) {
	br, err := broker.Open(broker.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	st := openStore(b, filepath.Join(b.TempDir(), "agent.db"))
	defer st.Close()
	seed(b, st, b.N, 50<<10, rand.New(rand.NewSource(5)))
	col := openCollector(b, br.URL(), b.TempDir(), "fleet1", "")
	defer col.Close()
	b.SetBytes(50 << 10)
	b.ResetTimer()
	start := time.Now()
	u := openUplink(b, br.URL(), st, func(o *uplink.Options) { o.DrainRate = 1e6; o.Window = 512; o.PollEvery = 5 * time.Millisecond })
	defer u.Close()
	for outboxLen(b, st) > 0 {
		time.Sleep(2 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "samples/s")
	b.Logf("uplink %+v collector %+v", u.Stats(), col.Stats())
	b.StopTimer()
}
