package monitor

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/linesight/linesight/inference"
)

func TestPSI(t *testing.T) {
	tests := []struct {
		name     string
		exp, act []float64
		want     float64
	}{
		{"identical", []float64{0.25, 0.25, 0.5}, []float64{0.25, 0.25, 0.5}, 0},
		// (0.4-0.5)ln(0.4/0.5) + (0.6-0.5)ln(0.6/0.5) = 0.0405
		{"small shift", []float64{0.5, 0.5}, []float64{0.4, 0.6}, 0.0405},
		// an empty bin is floored at 1e-4, not infinite
		{"emptied bin", []float64{0.5, 0.5}, []float64{0, 1}, (1e-4-0.5)*math.Log(1e-4/0.5) + 0.5*math.Log(2)},
	}
	for _, tt := range tests {
		if got := PSI(tt.exp, tt.act); math.Abs(got-tt.want) > 1e-3 {
			t.Errorf("%s: PSI = %.4f, want %.4f", tt.name, got, tt.want)
		}
	}
}

func TestShares(t *testing.T) {
	edges := []float64{0, 0.25, 0.5, 1}
	got := Shares(edges, []float64{-1, 0, 0.1, 0.25, 0.6, 1, 2, 0.49})
	want := []float64{3.0 / 8, 2.0 / 8, 3.0 / 8} // below range and 0 and 0.1 | 0.25, 0.49 | 0.6, 1, 2 (above range)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("Shares = %v, want %v", got, want)
		}
	}
	if s := Shares(edges, nil); len(s) != 3 || s[0] != 0 {
		t.Errorf("no values: %v", s)
	}
}

// reference builds a manifest-style reference from samples, as training does.
func reference(rng *rand.Rand, n int) inference.Reference {
	dist := func(gen func() float64, lo, hi float64) inference.Distribution {
		edges := make([]float64, 11)
		for i := range edges {
			edges[i] = lo + (hi-lo)*float64(i)/10
		}
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = gen()
		}
		return inference.Distribution{Edges: edges, Hist: Shares(edges, vals)}
	}
	conf := dist(func() float64 { return 0.9 + 0.1*rng.Float64() }, 0.5, 1)
	return inference.Reference{
		Images:     n,
		Brightness: dist(func() float64 { return 0.35 + 0.05*rng.NormFloat64() }, 0.15, 0.55),
		Contrast:   dist(func() float64 { return 0.10 + 0.02*rng.NormFloat64() }, 0.02, 0.2),
		Sharpness:  dist(func() float64 { return 0.010 + 0.002*rng.NormFloat64() }, 0.002, 0.02),
		Confidence: &conf,
		ClassMix:   map[string]float64{"free": 0.8, "crack": 0.2},
	}
}

func stream(t *testing.T, d *Drift, rng *rand.Rand, n int, brightShift float64, crackShare float64) Report {
	var r Report
	for i := 0; i < n; i++ {
		top := "free"
		if rng.Float64() < crackShare {
			top = "crack"
		}
		d.Observe(Observation{
			Brightness: 0.35 + brightShift + 0.05*rng.NormFloat64(),
			Contrast:   0.10 + 0.02*rng.NormFloat64(),
			Sharpness:  0.010 + 0.002*rng.NormFloat64(),
			Top:        top, Confidence: 0.9 + 0.1*rng.Float64(),
		})
		if (i+1)%50 == 0 {
			r = d.Evaluate()
			if r.Changed && r.Alarm && brightShift == 0 && crackShare == 0.2 {
				t.Errorf("alarm on a stable stream: %s", r.Reason)
			}
		}
	}
	return r
}

func TestDriftAlarmOnExposureShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ref := reference(rng, 5000)
	d := NewDrift(ref, []string{"free", "crack"}, 500, Thresholds{})

	r := stream(t, d, rng, 1000, 0, 0.2)
	if r.Alarm {
		t.Fatalf("stable stream alarmed: %+v", r)
	}
	for name, psi := range r.PSI {
		if psi > 0.1 {
			t.Errorf("stable stream: %s PSI %.3f should be < 0.1", name, psi)
		}
	}

	// The lighting changes: exposure pushed up (as the real dataset's exp5 is).
	r = stream(t, d, rng, 500, 0.12, 0.2)
	if !r.Alarm || r.Worst != "brightness" || !strings.HasPrefix(r.Reason, "brightness PSI ") {
		t.Fatalf("exposure shift should raise a brightness alarm: %+v", r)
	}
	if !d.Alarm() {
		t.Error("Alarm() should report the raised alarm")
	}

	// Lighting restored: the window refills and the alarm clears.
	r = stream(t, d, rng, 1000, 0, 0.2)
	if r.Alarm {
		t.Fatalf("alarm should clear once the stream is back: %+v", r)
	}
}

func TestDriftClassMixShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	d := NewDrift(reference(rng, 5000), []string{"free", "crack"}, 400, Thresholds{})
	r := stream(t, d, rng, 800, 0, 0.7) // a bad batch: cracks everywhere
	if !r.Alarm || r.Worst != "class_mix" {
		t.Fatalf("class mix shift should alarm on class_mix: %+v", r)
	}
}

func TestDriftNeedsSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	d := NewDrift(reference(rng, 1000), []string{"free", "crack"}, 200, Thresholds{MinSamples: 200})
	stream(t, d, rng, 100, 0.3, 0.2)
	if r := d.Evaluate(); r.Alarm || len(r.PSI) != 0 {
		t.Errorf("no judgement before MinSamples: %+v", r)
	}
}
