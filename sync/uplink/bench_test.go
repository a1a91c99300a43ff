package uplink_test

import (
	"fmt"
	"io"
	"math/rand"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/sync/uplink"
	"github.com/linesight/linesight/sync/wire"
)

// BenchmarkDrain measures the outbox drain to a local (embedded) broker:
// b.N labelled samples of 50 KB each, from the first publish until the
// last acknowledgement has been committed (with fsync) to the device's
// store. Reported as samples/s. Two receivers on the other side:
//
//   - collector: the fleet collector, in this process, writing every
//     sample to its dataset (durable before it acks): the whole path on
//     the same 2 cores;
//   - receipt: a bare subscriber that decodes every sample and acks its ID
//     at once. It stands in for a collector on its own machine, as in a
//     deployment, so the figure is the device's drain (and the local
//     broker's) without the cloud side's work on the same cores.
func BenchmarkDrain(b *testing.B) {
	for _, rc := range []struct {
		name string
		open func(b *testing.B, url string) (io.Closer, func() any)
	}{
		{"collector", func(b *testing.B, url string) (io.Closer, func() any) {
			c := openCollector(b, url, b.TempDir(), "fleet1", "")
			return c, func() any { return c.Stats() }
		}},
		{"receipt", func(b *testing.B, url string) (io.Closer, func() any) {
			a := openReceiptAcker(b, url)
			return a, func() any { return a.String() }
		}},
	} {
		b.Run(rc.name, func(b *testing.B) {
			br := openBroker(b)
			// Seeded without fsync (not measured), drained with it, as on a device.
			path := filepath.Join(b.TempDir(), "agent.db")
			st := openStore(b, path)
			seedClasses(b, st, b.N, 50<<10, rand.New(rand.NewSource(5)), runClasses())
			if err := st.Close(); err != nil {
				b.Fatal(err)
			}
			st, err := store.Open(path, store.Options{RetentionEvery: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			rcv, stats := rc.open(b, br.URL())
			defer rcv.Close()
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
			// CPU of this process (uplink, broker and receiver) per
			// sample, and the share of the available CPUs it used: near 1
			// means CPU-bound, well under 1 means something waits.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/sample")
			b.ReportMetric(cpu.Seconds()/wall.Seconds()/float64(runtime.GOMAXPROCS(0)), "cpu-share")
			b.Logf("uplink %+v receiver %+v", u.Stats(), stats())
			b.StopTimer()
		})
	}
}

// receiptAcker acknowledges every sample it can decode, on receipt,
// batching the IDs of what arrived together (as the collector does).
type receiptAcker struct {
	cli    paho.Client
	mu     sync.Mutex
	ids    map[wire.Address][]string
	kick   chan struct{}
	done   chan struct{}
	stop   sync.Once
	acked  atomic.Uint64
	failed atomic.Uint64
}

func openReceiptAcker(b *testing.B, url string) *receiptAcker {
	a := &receiptAcker{ids: map[wire.Address][]string{}, kick: make(chan struct{}, 1), done: make(chan struct{})}
	shared, _ := wire.UpFilters("")
	o := paho.NewClientOptions().AddBroker(url).SetClientID("receipt").SetCleanSession(true).SetOrderMatters(false)
	a.cli = paho.NewClient(o)
	if tok := a.cli.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("receipt acker: connect: %v", tok.Error())
	}
	if tok := a.cli.Subscribe(shared[0], 1, a.receive); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("receipt acker: subscribe: %v", tok.Error())
	}
	go a.loop()
	return a
}

// receive is paho's callback: decode, queue the ID, never block.
func (a *receiptAcker) receive(_ paho.Client, m paho.Message) {
	addr, err := wire.ParseTopic(m.Topic())
	if err != nil {
		a.failed.Add(1)
		return
	}
	e, _, err := wire.DecodeSample(m.Payload())
	if err != nil {
		a.failed.Add(1)
		return
	}
	a.mu.Lock()
	a.ids[addr] = append(a.ids[addr], e.ID)
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *receiptAcker) loop() {
	for {
		select {
		case <-a.done:
			return
		case <-a.kick:
		}
		a.mu.Lock()
		batch := a.ids
		a.ids = map[wire.Address][]string{}
		a.mu.Unlock()
		for addr, ids := range batch {
			msg, err := wire.Encode(wire.Envelope{Type: wire.TypeAck, Time: time.Now().UTC()},
				wire.Ack{IDs: ids, Accept: []string{wire.AcceptSampleFrame}})
			if err != nil {
				a.failed.Add(1)
				continue
			}
			a.cli.Publish(wire.Topic(addr.Site, addr.Device, wire.KindAck), 1, false, msg)
			a.acked.Add(uint64(len(ids)))
		}
	}
}

func (a *receiptAcker) String() string {
	return fmt.Sprintf("{acked:%d failed:%d}", a.acked.Load(), a.failed.Load())
}

func (a *receiptAcker) Close() error {
	a.stop.Do(func() { close(a.done) })
	a.cli.Disconnect(250)
	return nil
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
