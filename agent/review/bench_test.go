package review

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/camera"
)

// BenchmarkLabelAndNext is the inspector's round trip as the page does it,
// under 100 concurrent inspectors on loopback: POST a label (committed with
// fsync, label + outbox entry in one transaction), then POST next to
// preload the following item (excluding the one now on screen). Each
// inspector labels about one item a second (think time uniform 0.5 to 1.5 s,
// the pace the issue names), so the run takes b.N/100 seconds: use
// -benchtime 3000x. It reports the p50 and p99 of the round trip; the target
// is p99 < 50 ms.
func BenchmarkLabelAndNext(b *testing.B) { benchLabelAndNext(b, 100, true) }

// BenchmarkLabelAndNextSaturated is the same with no think time: 100
// inspectors label as fast as the agent answers. It measures capacity
// (round trips/s); its latency is 100 / throughput by Little's law.
func BenchmarkLabelAndNextSaturated(b *testing.B) { benchLabelAndNext(b, 100, false) }

func benchLabelAndNext(b *testing.B, inspectors int, think bool) {
	st, err := store.Open(b.TempDir()+"/ls.db", store.Options{RetentionEvery: -1, NoSync: os.Getenv("LINESIGHT_BENCH_NOSYNC") != ""})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	fill(b, st, b.N+3*inspectors)
	s := openServer(b, Options{Store: st, Auth: testAuth(b)})

	tr := &http.Transport{MaxIdleConnsPerHost: inspectors * 2, MaxConnsPerHost: inspectors * 2}
	defer tr.CloseIdleConnections()
	clients := make([]*client, inspectors)
	for i := range clients {
		jar, _ := cookiejar.New(nil)
		c := &client{tb: b, base: "http://" + s.Addr(), hc: &http.Client{Jar: jar, Transport: tr, Timeout: time.Minute}}
		var sess sessionView
		c.do("GET", "/api/v1/session", nil, &sess)
		c.csrf = sess.CSRF
		// Every inspector is a separate account, as on a real floor.
		a := s.auth
		a.users[fmt.Sprintf("insp%03d", i)] = User{Name: fmt.Sprintf("insp%03d", i), Role: RoleInspector, PasswordHash: a.users["alice"].PasswordHash}
		c.login(fmt.Sprintf("insp%03d", i), "ecila-pw")
		clients[i] = c
	}

	var left atomic.Int64
	left.Store(int64(b.N))
	lat := make([][]time.Duration, inspectors)
	labLat := make([][]time.Duration, inspectors) // the label alone: what the inspector waits for, the next item being preloaded
	var wg sync.WaitGroup
	b.ResetTimer()
	for i, c := range clients {
		wg.Go(func() {
			var cur, pre itemView
			if code := c.do("POST", "/api/v1/next", map[string]any{}, &cur); code != 200 {
				b.Errorf("first next: %d", code)
				return
			}
			if code := c.do("POST", "/api/v1/next", map[string]any{"exclude": []string{cur.ID}}, &pre); code != 200 {
				b.Errorf("preload: %d", code)
				return
			}
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			if think { // spread the inspectors' phases
				time.Sleep(time.Duration(rng.Int64N(int64(time.Second))))
			}
			for left.Add(-1) >= 0 {
				if think {
					time.Sleep(500*time.Millisecond + time.Duration(rng.Int64N(int64(time.Second))))
				}
				t0 := time.Now()
				var lv labelView
				if code := c.do("POST", "/api/v1/items/"+cur.ID+"/label", map[string]string{"class": "crack"}, &lv); code != 200 || !lv.Saved {
					b.Errorf("label: %d", code)
					return
				}
				labLat[i] = append(labLat[i], time.Since(t0))
				cur = pre
				pre = itemView{}
				if code := c.do("POST", "/api/v1/next", map[string]any{"exclude": []string{cur.ID}}, &pre); code != 200 {
					b.Errorf("next: %d", code)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "trips/s")
	q := func(l [][]time.Duration, p float64) float64 {
		all := slices.Concat(l...)
		if len(all) == 0 {
			return 0
		}
		slices.Sort(all)
		return float64(all[int(p*float64(len(all)-1))]) / 1e6
	}
	b.ReportMetric(q(lat, 0.50), "p50-ms")
	b.ReportMetric(q(lat, 0.99), "p99-ms")
	b.ReportMetric(q(labLat, 0.99), "label-p99-ms")
	b.ReportMetric(0, "ns/op")
}

// fill puts n deferred parts, in parallel so group commit batches them.
func fill(b *testing.B, st *store.Store, n int) {
	b.Helper()
	g, err := camera.NewGenerator(camera.SyntheticSpec{Seed: 3, Size: 256, DefectRate: 0.8, ExposureMin: 1, ExposureMax: 1})
	if err != nil {
		b.Fatal(err)
	}
	tile := g.NewTile()
	var jpegs [][]byte
	for i := range 8 {
		g.Generate(uint64(i), tile)
		var buf bytes.Buffer
		_ = jpeg.Encode(&buf, &image.Gray{Pix: tile.Pix, Stride: tile.W, Rect: image.Rect(0, 0, tile.W, tile.H)}, nil)
		jpegs = append(jpegs, buf.Bytes())
	}
	hm := heatFromMask(tile.Mask, tile.W, tile.H, 12)
	var wg sync.WaitGroup
	var next atomic.Int64
	base := time.Now().Add(-time.Hour)
	for range 32 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				at := base.Add(time.Duration(i) * time.Millisecond)
				in := &store.Inspection{ID: st.NewID(at), Time: at, Camera: "cam1", Scores: scoresFor("crack"), Top: "crack",
					Verdict: policy.Defer, Reason: policy.ReasonUncertain, Level: policy.Partial, Review: true, Heatmap: hm, Width: 256, Height: 256}
				if err := st.Put(context.Background(), in, jpegs[i%8]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
