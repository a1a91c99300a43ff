package lifecycle

import (
	"time"

	"github.com/linesight/linesight/sync/rollout"
	"github.com/linesight/linesight/sync/wire"
)

// Outcome is what one model made of one frame, as the pipeline saw it.
type Outcome struct {
	// Label is the top class (for anomaly models: the verdict's class).
	Label string
	// Automated: the policy would decide this part without a person
	// (pass or reject at the camera's level), for this model's result.
	Automated bool
	// Latency is the model's time for the frame (engine Run).
	Latency time.Duration
	// Err is the model's failure on this frame, if any.
	Err error
}

// tally accumulates outcomes.
type tally struct {
	frames, agree, errs int
	actLat, shLat       time.Duration
	actN, shN           int
	actAuto, shAuto     int
}

func (t *tally) stats() *wire.ShadowStats {
	s := &wire.ShadowStats{Frames: t.frames, Errors: t.errs}
	if t.frames > 0 {
		s.Agreement = float64(t.agree) / float64(t.frames)
		s.ActiveAutomation = float64(t.actAuto) / float64(t.frames)
		s.ShadowAutomation = float64(t.shAuto) / float64(t.frames)
	}
	if t.actN > 0 {
		s.ActiveLatencyMS = ms(t.actLat) / float64(t.actN)
	}
	if t.shN > 0 {
		s.ShadowLatencyMS = ms(t.shLat) / float64(t.shN)
	}
	if s.ActiveLatencyMS > 0 {
		s.LatencyRatio = s.ShadowLatencyMS / s.ActiveLatencyMS
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// verdict of criteria over a tally.
type verdict int

const (
	undecided verdict = iota
	pass
	fail
)

// judgeShadow: after MinFrames, too many errors or a latency ratio above
// MaxLatencyRatio fail; agreement at MinAgreement passes; otherwise the
// candidate stays in shadow (the fleet decides).
func judgeShadow(t *tally, c rollout.Criteria) (verdict, string) {
	if t.frames < max(c.MinFrames, 1) {
		return undecided, ""
	}
	s := t.stats()
	if float64(t.errs)/float64(t.frames) > c.MaxErrorRate {
		return fail, "error rate above the offer's max_error_rate"
	}
	if c.MaxLatencyRatio > 0 && s.LatencyRatio > c.MaxLatencyRatio {
		return fail, "latency ratio above the offer's max_latency_ratio"
	}
	if s.Agreement >= c.MinAgreement {
		return pass, ""
	}
	return undecided, ""
}

// judgeProbation compares a promoted version's frames with the latency the
// previous version had before the switch.
func judgeProbation(t *tally, baseline time.Duration, c rollout.Criteria) (verdict, string) {
	if t.frames < max(c.MinFrames, 1) {
		return undecided, ""
	}
	if float64(t.errs)/float64(t.frames) > c.MaxErrorRate {
		return fail, "error rate above the offer's max_error_rate"
	}
	if c.MaxLatencyRatio > 0 && baseline > 0 && t.actN > 0 {
		mean := t.actLat / time.Duration(t.actN)
		if float64(mean) > float64(baseline)*c.MaxLatencyRatio {
			return fail, "latency above the previous version's times max_latency_ratio"
		}
	}
	return pass, ""
}
