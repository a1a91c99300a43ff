package monitor

import (
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/linesight/linesight/inference"
)

// psiFloor keeps empty bins from making PSI infinite (the common 1e-4 smoothing).
const psiFloor = 1e-4

// PSI is the population stability index of actual against expected, both
// shares over the same bins: sum (a-e)*ln(a/e).
func PSI(expected, actual []float64) float64 {
	var psi float64
	for i := range expected {
		e := math.Max(expected[i], psiFloor)
		a := psiFloor
		if i < len(actual) {
			a = math.Max(actual[i], psiFloor)
		}
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}

// Shares bins values by edges (len(edges)-1 bins) and returns each bin's
// share. Values below the first edge count in the first bin and values
// above the last in the last, so a shifted stream shows up at the ends.
func Shares(edges, values []float64) []float64 {
	n := len(edges) - 1
	if n < 1 {
		return nil
	}
	out := make([]float64, n)
	if len(values) == 0 {
		return out
	}
	for _, v := range values {
		i := sort.SearchFloat64s(edges, v) - 1   // edges[i] <= v < edges[i+1]
		if i+1 < len(edges) && edges[i+1] == v { // v on an edge belongs to the bin it opens
			i++
		}
		out[min(max(i, 0), n-1)]++
	}
	for i := range out {
		out[i] /= float64(len(values))
	}
	return out
}

// ring is a fixed-size window of the last values.
type ring struct {
	v    []float64
	next int
	full bool
}

func newRing(n int) *ring { return &ring{v: make([]float64, 0, n)} }

func (r *ring) add(x float64) {
	if len(r.v) < cap(r.v) {
		r.v = append(r.v, x)
		return
	}
	r.v[r.next] = x
	r.next = (r.next + 1) % len(r.v)
	r.full = true
}

func (r *ring) values() []float64 { return r.v }

// Observation is one part as the monitor sees it.
type Observation struct {
	Brightness, Contrast, Sharpness float64
	// Top is the predicted class and Confidence its probability; empty Top
	// when the model gave no output.
	Top        string
	Confidence float64
}

// Thresholds set when the alarm is raised and cleared.
type Thresholds struct {
	Raise      float64 // PSI above which a statistic is drifting (default 0.25)
	Clear      float64 // every PSI below this clears the alarm (default 0.1)
	MinSamples int     // observations needed before judging (default 200)
}

// Report is the state of one camera's drift monitor.
type Report struct {
	Samples int                `json:"samples"`
	PSI     map[string]float64 `json:"psi"`              // by statistic: brightness, contrast, sharpness, confidence, class_mix
	Alarm   bool               `json:"alarm"`            // drift is alarmed
	Worst   string             `json:"worst,omitempty"`  // the statistic with the highest PSI
	Changed bool               `json:"changed"`          // the alarm was raised or cleared by this evaluation
	Reason  string             `json:"reason,omitempty"` // e.g. "brightness PSI 0.41 > 0.25"
}

// Drift compares one camera's recent inputs and outputs with a model's
// reference statistics.
type Drift struct {
	ref        inference.Reference
	th         Thresholds
	labels     []string
	stats      map[string]*ring
	classes    []string // recent predicted classes, a ring like the others
	classNext  int
	windowSize int
	alarm      bool
	seen       int
}

// NewDrift builds a monitor over the last window observations against ref.
// labels is the model's label list (for the class mix).
func NewDrift(ref inference.Reference, labels []string, window int, th Thresholds) *Drift {
	if th.Raise <= 0 {
		th.Raise = 0.25
	}
	if th.Clear <= 0 || th.Clear > th.Raise {
		th.Clear = math.Min(0.1, th.Raise)
	}
	if th.MinSamples <= 0 {
		th.MinSamples = 200
	}
	if window < th.MinSamples {
		window = th.MinSamples
	}
	d := &Drift{ref: ref, th: th, labels: slices.Clone(labels), windowSize: window, stats: map[string]*ring{}}
	for _, s := range []string{"brightness", "contrast", "sharpness", "confidence"} {
		d.stats[s] = newRing(window)
	}
	return d
}

// Observe adds one part.
func (d *Drift) Observe(o Observation) {
	d.seen++
	d.stats["brightness"].add(o.Brightness)
	d.stats["contrast"].add(o.Contrast)
	d.stats["sharpness"].add(o.Sharpness)
	if o.Top == "" {
		return
	}
	d.stats["confidence"].add(o.Confidence)
	if len(d.classes) < d.windowSize {
		d.classes = append(d.classes, o.Top)
	} else {
		d.classes[d.classNext] = o.Top
		d.classNext = (d.classNext + 1) % d.windowSize
	}
}

// Evaluate computes the PSI of every statistic the reference has a
// histogram for and updates the alarm.
func (d *Drift) Evaluate() Report {
	r := Report{Samples: len(d.stats["brightness"].values()), PSI: map[string]float64{}}
	dists := map[string]*inference.Distribution{
		"brightness": &d.ref.Brightness, "contrast": &d.ref.Contrast, "sharpness": &d.ref.Sharpness, "confidence": d.ref.Confidence,
	}
	for name, dist := range dists {
		vals := d.stats[name].values()
		if dist == nil || len(dist.Hist) == 0 || len(vals) < d.th.MinSamples {
			continue
		}
		r.PSI[name] = round4(PSI(dist.Hist, Shares(dist.Edges, vals)))
	}
	if len(d.ref.ClassMix) > 0 && len(d.classes) >= d.th.MinSamples {
		exp := make([]float64, len(d.labels))
		act := make([]float64, len(d.labels))
		for i, l := range d.labels {
			exp[i] = d.ref.ClassMix[l]
		}
		for _, c := range d.classes {
			if i := slices.Index(d.labels, c); i >= 0 {
				act[i] += 1 / float64(len(d.classes))
			}
		}
		r.PSI["class_mix"] = round4(PSI(exp, act))
	}
	worst, worstPSI := "", -1.0
	names := make([]string, 0, len(r.PSI))
	for n := range r.PSI {
		names = append(names, n)
	}
	sort.Strings(names) // deterministic ties
	for _, n := range names {
		if r.PSI[n] > worstPSI {
			worst, worstPSI = n, r.PSI[n]
		}
	}
	r.Worst = worst
	was := d.alarm
	switch {
	case !d.alarm && worstPSI > d.th.Raise:
		d.alarm = true
	case d.alarm && worstPSI >= 0 && worstPSI < d.th.Clear:
		d.alarm = false
	}
	r.Alarm, r.Changed = d.alarm, d.alarm != was
	if worst != "" {
		op := " > "
		if worstPSI <= d.th.Raise {
			op = " <= "
		}
		r.Reason = worst + " PSI " + ftoa(worstPSI) + op + ftoa(d.th.Raise)
	}
	return r
}

// Alarm reports whether drift is currently alarmed.
func (d *Drift) Alarm() bool { return d.alarm }

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

func ftoa(x float64) string { return strconv.FormatFloat(math.Round(x*100)/100, 'f', -1, 64) }
