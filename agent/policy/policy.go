package policy

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Level is a degree of automation.
type Level int

// The degrees of automation, left to right.
const (
	Human Level = iota
	Shadow
	Assist
	Partial
	Full
)

var levelNames = []string{"human", "shadow", "assist", "partial", "full"}

// LevelNames lists the levels as configured, left to right.
func LevelNames() []string { return slices.Clone(levelNames) }

func (l Level) String() string {
	if l < Human || l > Full {
		return fmt.Sprintf("level(%d)", int(l))
	}
	return levelNames[l]
}

// ParseLevel reads a configured level name.
func ParseLevel(s string) (Level, error) {
	i := slices.Index(levelNames, strings.ToLower(strings.TrimSpace(s)))
	if i < 0 {
		return 0, fmt.Errorf("automation level %q is not allowed; use one of: %s", s, strings.Join(levelNames, ", "))
	}
	return Level(i), nil
}

// MarshalText and UnmarshalText let a Level travel as its name.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Verdict is what happens to the part.
type Verdict string

const (
	Pass   Verdict = "pass"
	Reject Verdict = "reject"
	Defer  Verdict = "defer" // to a human
)

// Reason says why a decision was made. Every Decision has one.
type Reason string

const (
	ReasonConfidentPass   Reason = "confident-pass"
	ReasonConfidentReject Reason = "confident-reject"
	ReasonClassReject     Reason = "class-threshold-reject" // a defect class over its own threshold
	ReasonUncertain       Reason = "uncertain"              // partial: between the thresholds
	ReasonFullNotGood     Reason = "full-not-confidently-good"
	ReasonLevelHuman      Reason = "level-human"
	ReasonLevelShadow     Reason = "level-shadow"
	ReasonLevelAssist     Reason = "level-assist"
	ReasonInferenceError  Reason = "inference-error"
	ReasonTimeout         Reason = "inference-timeout"
	ReasonDeadlineMissed  Reason = "deadline-missed"
	ReasonBlank           Reason = "ood-blank-frame"
	ReasonBrightness      Reason = "ood-brightness"
	ReasonContrast        Reason = "ood-contrast"
	ReasonSharpness       Reason = "ood-sharpness"
	ReasonAlwaysReview    Reason = "always-review-class"
	ReasonDriftDowngrade  Reason = "drift-downgrade"
	ReasonNoModelOutput   Reason = "no-model-output"
)

// Failure is what went wrong before the policy saw the part.
type Failure string

const (
	NoFailure      Failure = ""
	InferenceError Failure = "inference-error"
	Timeout        Failure = "timeout"
	DeadlineMissed Failure = "deadline-missed" // the part reached inference after its deadline
)

// Bounds is an allowed range for an image statistic; zero Max means unbounded.
type Bounds struct {
	Min, Max float64
}

func (b Bounds) contains(v float64) bool {
	if b.Min == 0 && b.Max == 0 {
		return true
	}
	return v >= b.Min && (b.Max == 0 || v <= b.Max)
}

// OOD are the out-of-distribution guardrails, usually derived from the
// model manifest's reference statistics (see BoundsFromReference).
type OOD struct {
	Brightness Bounds // mean gray level, 0..1
	Contrast   Bounds // standard deviation of gray, 0..1
	Sharpness  Bounds // variance of the Laplacian of gray/255
	// BlankContrast: a frame with contrast below this is blank or covered.
	BlankContrast float64
}

// Config is one camera's policy.
type Config struct {
	Level Level
	// PassThreshold: auto-pass when P(good) >= it. RejectThreshold: auto-reject
	// when P(defect) >= it. Both from the manifest's calibration unless overridden.
	PassThreshold   float64
	RejectThreshold float64
	// ClassReject: per defect class, auto-reject when P(class) >= the value.
	ClassReject map[string]float64
	// AlwaysReview: parts whose top class is listed always go to a human.
	AlwaysReview []string
	// FailSafe is Reject or Defer; never Pass.
	FailSafe Verdict
	OOD      OOD
	// AuditSample is the share (0..1) of automatic decisions also sent to review.
	AuditSample float64
	// DriftDowngrade lowers partial and full to assist while drift is alarmed.
	DriftDowngrade bool
}

// Validate checks a Config for values that would make the policy unsafe.
func (c Config) Validate() error {
	var errs []string
	if c.Level < Human || c.Level > Full {
		errs = append(errs, fmt.Sprintf("level %d is not a degree of automation", int(c.Level)))
	}
	if c.FailSafe != Reject && c.FailSafe != Defer {
		errs = append(errs, fmt.Sprintf("fail_safe %q is not allowed; use reject or defer (never pass)", c.FailSafe))
	}
	for name, v := range map[string]float64{"pass_threshold": c.PassThreshold, "reject_threshold": c.RejectThreshold, "audit_sample": c.AuditSample} {
		if v < 0 || v > 1 || math.IsNaN(v) {
			errs = append(errs, fmt.Sprintf("%s %v is out of range 0..1", name, v))
		}
	}
	if c.Level >= Partial && (c.PassThreshold <= 0.5 || c.RejectThreshold <= 0.5) {
		errs = append(errs, fmt.Sprintf("partial and full automation need pass and reject thresholds above 0.5 (have %v and %v); calibrate the model or set policy thresholds", c.PassThreshold, c.RejectThreshold))
	}
	if len(errs) > 0 {
		return fmt.Errorf("policy: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Input is what the policy knows about one part.
type Input struct {
	// Labels and Probs are the model's classes and probabilities (summing to ~1).
	Labels []string
	Probs  []float64
	// Good are the labels that are good parts (e.g. "free").
	Good []string
	// Failure is set when inference failed or the deadline was missed.
	Failure Failure
	// Image statistics of the frame as the model saw it.
	Brightness, Contrast, Sharpness float64
	// DriftAlarm is true while the camera's drift monitor is alarmed.
	DriftAlarm bool
	// AuditDraw is a uniform random number in [0,1) drawn by the caller
	// (injected so decisions are reproducible).
	AuditDraw float64
}

// Decision is the policy's answer for one part.
type Decision struct {
	Verdict Verdict `json:"verdict"`         // what the line does with the part
	Reason  Reason  `json:"reason"`          // why
	Detail  string  `json:"detail"`          // the numbers behind the reason, for people
	Level   Level   `json:"level"`           // effective level (after a drift downgrade)
	Actuate bool    `json:"actuate"`         // the verdict drives the reject gate / PLC
	Review  bool    `json:"review"`          // the part goes to the review queue
	Audit   bool    `json:"audit,omitempty"` // an automatic decision sampled for review
	// Model is the model's own would-be verdict at the thresholds (pass,
	// reject or defer), recorded at every level for shadow agreement; empty
	// when the model produced no usable output.
	Model     Verdict `json:"model,omitempty"`
	ShowModel bool    `json:"show_model"` // the UI may show the model's hint
	Top       string  `json:"top,omitempty"`
	PGood     float64 `json:"p_good"`
}

// Decide applies the policy to one part. It is pure: the same Config and
// Input always give the same Decision.
func Decide(c Config, in Input) Decision {
	d := Decision{Level: c.Level, ShowModel: c.Level >= Assist}
	usable := in.Failure == NoFailure && len(in.Labels) > 0 && len(in.Labels) == len(in.Probs) && finite(in.Probs)
	var model Decision
	if usable {
		model = thresholds(c, in)
		d.Model, d.Top, d.PGood = model.Verdict, model.Top, model.PGood
	}

	// Below partial a human decides every part; the model only advises.
	switch c.Level {
	case Human:
		return review(d, ReasonLevelHuman, "human level: every part is reviewed")
	case Shadow:
		return review(d, ReasonLevelShadow, "shadow level: the model's verdict is recorded, not acted on")
	case Assist:
		return review(d, ReasonLevelAssist, "assist level: reviewed with the model's hint")
	}

	// 1. Failures: the fail-safe verdict, never a pass.
	if in.Failure != NoFailure || !usable {
		reason, detail := failureReason(in)
		d.Verdict, d.Reason, d.Detail = c.FailSafe, reason, detail
		if d.Verdict != Reject {
			d.Verdict = Defer
		}
		d.Actuate = true
		d.Review = d.Verdict == Defer
		return d
	}
	// 2. Out-of-distribution input.
	if r, detail, ok := outOfDistribution(c.OOD, in); ok {
		return review(d, r, detail)
	}
	// 3. Classes that always go to a human.
	if slices.Contains(c.AlwaysReview, model.Top) {
		return review(d, ReasonAlwaysReview, fmt.Sprintf("top class %s is always reviewed", model.Top))
	}
	// 4. Drift lowers the level to assist.
	if in.DriftAlarm && c.DriftDowngrade {
		// The line still expects the gate: every part is diverted to review.
		d = review(d, ReasonDriftDowngrade, "drift alarm: automation lowered to assist until it clears")
		d.Level, d.ShowModel = Assist, true
		return d
	}

	d.Verdict, d.Reason, d.Detail = model.Verdict, model.Reason, model.Detail
	if c.Level == Full && d.Verdict == Defer {
		d.Verdict, d.Reason = Reject, ReasonFullNotGood
	}
	d.Actuate = true
	if d.Verdict == Defer {
		d.Review = true
		return d
	}
	if in.AuditDraw < c.AuditSample {
		d.Review, d.Audit = true, true
	}
	return d
}

// thresholds is the model's own verdict at the configured thresholds.
func thresholds(c Config, in Input) Decision {
	var pGood float64
	top, topP := "", -1.0
	for i, l := range in.Labels {
		p := in.Probs[i]
		if slices.Contains(in.Good, l) {
			pGood += p
		}
		if p > topP {
			top, topP = l, p
		}
	}
	pGood = math.Min(math.Max(pGood, 0), 1)
	d := Decision{Top: top, PGood: round(pGood)}
	switch {
	case c.PassThreshold > 0 && pGood >= c.PassThreshold:
		d.Verdict, d.Reason = Pass, ReasonConfidentPass
		d.Detail = fmt.Sprintf("P(good)=%.4f >= pass threshold %.4f", pGood, c.PassThreshold)
		return d
	case c.RejectThreshold > 0 && 1-pGood >= c.RejectThreshold:
		d.Verdict, d.Reason = Reject, ReasonConfidentReject
		d.Detail = fmt.Sprintf("P(defect)=%.4f >= reject threshold %.4f (top %s)", 1-pGood, c.RejectThreshold, top)
		return d
	}
	for i, l := range in.Labels {
		if t, ok := c.ClassReject[l]; ok && t > 0 && in.Probs[i] >= t && !slices.Contains(in.Good, l) {
			d.Verdict, d.Reason = Reject, ReasonClassReject
			d.Detail = fmt.Sprintf("P(%s)=%.4f >= its threshold %.4f", l, in.Probs[i], t)
			return d
		}
	}
	d.Verdict, d.Reason = Defer, ReasonUncertain
	d.Detail = fmt.Sprintf("P(good)=%.4f below pass %.4f and P(defect)=%.4f below reject %.4f", pGood, c.PassThreshold, 1-pGood, c.RejectThreshold)
	return d
}

func review(d Decision, r Reason, detail string) Decision {
	d.Verdict, d.Reason, d.Detail, d.Review = Defer, r, detail, true
	// A deferral below partial is the normal path; at partial and above it
	// diverts the part to the review station.
	d.Actuate = d.Level >= Partial
	return d
}

func failureReason(in Input) (Reason, string) {
	switch in.Failure {
	case Timeout:
		return ReasonTimeout, "inference did not finish in time"
	case DeadlineMissed:
		return ReasonDeadlineMissed, "the part could not be inspected before its deadline"
	case InferenceError:
		return ReasonInferenceError, "inference failed"
	}
	return ReasonNoModelOutput, "the model gave no usable output (missing, mismatched or not finite)"
}

func outOfDistribution(o OOD, in Input) (Reason, string, bool) {
	if o.BlankContrast > 0 && in.Contrast < o.BlankContrast {
		return ReasonBlank, fmt.Sprintf("contrast %.4f below %.4f: blank or covered frame", in.Contrast, o.BlankContrast), true
	}
	checks := []struct {
		r Reason
		n string
		v float64
		b Bounds
	}{
		{ReasonBrightness, "brightness", in.Brightness, o.Brightness},
		{ReasonContrast, "contrast", in.Contrast, o.Contrast},
		{ReasonSharpness, "sharpness", in.Sharpness, o.Sharpness},
	}
	for _, ch := range checks {
		if !ch.b.contains(ch.v) {
			return ch.r, fmt.Sprintf("%s %.4f outside the training range %.4f..%.4f", ch.n, ch.v, ch.b.Min, ch.b.Max), true
		}
	}
	return "", "", false
}

func finite(ps []float64) bool {
	for _, p := range ps {
		if math.IsNaN(p) || math.IsInf(p, 0) || p < 0 {
			return false
		}
	}
	return true
}

func round(v float64) float64 { return math.Round(v*1e6) / 1e6 }
