package fleet_test

import (
	"context"
	"fmt"
	"math/rand"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/sync/broker"
	"github.com/linesight/linesight/sync/fleet"
	"github.com/linesight/linesight/sync/wire"
)

// samples encodes n labelled samples with size-byte pseudo-JPEGs, as a
// device sends them: JSON envelopes, or sample frames.
func samples(b *testing.B, n, size int, frames bool) [][]byte {
	rng := rand.New(rand.NewSource(9))
	// The class folders' names are the run's own: see the uplink's
	// runClasses (a journal-less ext4 would otherwise put them in the block
	// groups the previous run's files were just deleted from).
	run := time.Now().UnixNano()
	out := make([][]byte, n)
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for i := range out {
		img := make([]byte, size)
		rng.Read(img)
		copy(img, "\xff\xd8\xff")
		item := fmt.Sprintf("0000000000000001-bench-%08d", i)
		s := wire.Sample{LabelID: item + "-l1", ItemID: item, Camera: "cam1", Class: fmt.Sprintf("%s-%x", []string{"ok", "scratch", "crack"}[i%3], run),
			By: "ana", At: at, Revision: 1, Suggested: "ok", Model: wire.ModelRef{Name: "tilenet", Version: "1"},
			Inspection: wire.Decision{ID: item, Time: at, Camera: "cam1"}, Image: wire.NewImage(img)}
		env := wire.Envelope{Type: wire.TypeSample, ID: "label-" + item + "-l1", Device: "d1", Time: at, Ack: true}
		var err error
		if frames {
			out[i], err = wire.EncodeSampleFrame(env, &s)
		} else {
			out[i], err = wire.Encode(env, s)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// BenchmarkCollectorIngest measures the collector alone: b.N samples of
// 50 KB, encoded beforehand (as JSON envelopes, and as the sample frames a
// device sends once the collector's acks accept them), published by a
// plain MQTT client (at most 1,024 unacknowledged) through the embedded
// broker, from the first publish until the collector has acknowledged the
// last one (decoded, checked, written and synced into the dataset).
// Reported as samples/s.
func BenchmarkCollectorIngest(b *testing.B) {
	b.Run("json", func(b *testing.B) { benchmarkIngest(b, false) })
	b.Run("frame", func(b *testing.B) { benchmarkIngest(b, true) })
}

func benchmarkIngest(b *testing.B, frames bool) {
	br, err := broker.Open(broker.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	col, err := fleet.OpenCollector(context.Background(), fleet.CollectorOptions{Broker: br.URL(), ClientID: "fleet1", DatasetDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer col.Close()
	msgs := samples(b, b.N, 50<<10, frames)
	dev := paho.NewClient(paho.NewClientOptions().AddBroker(br.URL()).SetClientID("d1"))
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal("connect:", tok.Error())
	}
	defer dev.Disconnect(100)
	var acked atomic.Int64
	done := make(chan struct{}, 1)
	dev.Subscribe(wire.Topic("s1", "d1", wire.KindAck), 1, func(_ paho.Client, m paho.Message) {
		if _, a, err := wire.DecodeAck(m.Payload()); err == nil {
			acked.Add(int64(len(a.IDs)))
		}
		select {
		case done <- struct{}{}:
		default:
		}
	}).Wait()
	topic := wire.Topic("s1", "d1", wire.KindSamples)
	b.SetBytes(50 << 10)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	for i, m := range msgs {
		for int64(i)-acked.Load() >= 1024 {
			<-done
		}
		dev.Publish(topic, 1, false, m)
	}
	for acked.Load() < int64(b.N) {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Fatalf("acked %d of %d", acked.Load(), b.N)
		}
	}
	wall, cpu := time.Since(start), cpuTime(b)-cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/wall.Seconds(), "samples/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/sample")
	b.ReportMetric(cpu.Seconds()/wall.Seconds()/float64(runtime.GOMAXPROCS(0)), "cpu-share")
	if s := col.Stats(); s.Samples != uint64(b.N) {
		b.Fatalf("collector wrote %d of %d: %+v", s.Samples, b.N, s)
	}
}

// BenchmarkDatasetWrite measures the dataset alone: batches of 256 decoded
// 50 KB samples, each batch one syncfs and one manifest fsync.
func BenchmarkDatasetWrite(b *testing.B) {
	ds, err := fleet.OpenDataset(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	msgs := samples(b, b.N, 50<<10, false)
	in := make([]fleet.Incoming, len(msgs))
	for i, m := range msgs {
		e, s, err := wire.DecodeSample(m)
		if err != nil {
			b.Fatal(err)
		}
		in[i] = fleet.Incoming{ID: e.ID, Site: "s1", Device: "d1", Sample: s}
	}
	b.SetBytes(50 << 10)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < len(in); i += 256 {
		if _, err := ds.Write(in[i:min(i+256, len(in))], time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "samples/s")
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
