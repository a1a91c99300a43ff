package policy

// DeferWindow tracks the share of deferred parts over the last N decisions
// and says when it exceeds a ceiling: too many deferrals swamp the
// inspectors and usually mean the line or the model has changed.
// It is not safe for concurrent use; the pipeline keeps one per camera.
type DeferWindow struct {
	ring     []bool
	next     int
	filled   int
	deferred int
	ceiling  float64
	minParts int
}

// NewDeferWindow keeps the last size decisions; the alarm needs at least
// minParts of them and a rate above ceiling.
func NewDeferWindow(size, minParts int, ceiling float64) *DeferWindow {
	if size < 1 {
		size = 1
	}
	return &DeferWindow{ring: make([]bool, size), ceiling: ceiling, minParts: minParts}
}

// Add records one decision and reports whether the alarm is now raised.
func (w *DeferWindow) Add(v Verdict) bool {
	if w.filled == len(w.ring) && w.ring[w.next] {
		w.deferred--
	}
	d := v == Defer
	w.ring[w.next] = d
	if d {
		w.deferred++
	}
	w.next = (w.next + 1) % len(w.ring)
	if w.filled < len(w.ring) {
		w.filled++
	}
	return w.Alarm()
}

// Rate is the deferred share of the decisions in the window.
func (w *DeferWindow) Rate() float64 {
	if w.filled == 0 {
		return 0
	}
	return float64(w.deferred) / float64(w.filled)
}

// Alarm is true when enough parts were seen and the rate is above the ceiling.
func (w *DeferWindow) Alarm() bool {
	return w.ceiling > 0 && w.filled >= w.minParts && w.Rate() > w.ceiling
}
