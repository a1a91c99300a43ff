package store

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPutInspection measures inspection records committed per second
// with fsync, from many concurrent callers (cameras and workers), with
// group commit ("batched") and with one transaction and fsync per Put
// ("unbatched", MaxBatch 1). The records/s metric is the figure to read.
// On the 2-core development VM: about 21,500 records/s batched (~65
// records per commit) against about 970 unbatched.
func BenchmarkPutInspection(b *testing.B) {
	for _, bc := range []struct {
		name     string
		maxBatch int
	}{{"batched", 0}, {"unbatched", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{MaxBatch: bc.maxBatch, RetentionEvery: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			t0 := time.Now()
			var n atomic.Int64
			b.SetParallelism(64) // 64×GOMAXPROCS concurrent callers
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					in := rec(s, t0.Add(time.Duration(i)), fmt.Sprintf("cam%d", i%4), i%10 == 0)
					if err := s.Put(ctx, in, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			st, _ := s.Stats()
			if st.Commits > 0 {
				b.ReportMetric(float64(st.Requests)/float64(st.Commits), "records/commit")
			}
		})
	}
}

// BenchmarkLabel measures label commits (label + queue + outbox in one
// transaction) from 100 concurrent inspectors.
func BenchmarkLabel(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{RetentionEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now()
	ids := make([]string, b.N)
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ { // fill the queue with group commits
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ids); i += 64 {
				in := rec(s, t0.Add(time.Duration(i)), "cam1", true)
				if err := s.Put(ctx, in, nil); err != nil {
					b.Error(err)
					return
				}
				ids[i] = in.ID
			}
		}()
	}
	wg.Wait()
	var n atomic.Int64
	b.SetParallelism(50)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[n.Add(1)-1]
			if _, err := s.Label(ctx, LabelInput{ItemID: id, By: "insp", Class: "crack"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "labels/s")
}
