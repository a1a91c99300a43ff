package policy

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

var labels = []string{"free", "blowhole", "break", "crack", "fray", "uneven"}

func probs(free, blowhole, brk, crack, fray, uneven float64) []float64 {
	return []float64{free, blowhole, brk, crack, fray, uneven}
}

func base(level Level) Config {
	return Config{
		Level: level, PassThreshold: 0.97, RejectThreshold: 0.9, FailSafe: Reject,
		OOD: OOD{
			Brightness: Bounds{Min: 0.15, Max: 0.6}, Contrast: Bounds{Min: 0.03, Max: 0.3},
			Sharpness: Bounds{Min: 0.0005, Max: 0.05}, BlankContrast: 0.01,
		},
		AuditSample: 0.05,
	}
}

func in(p []float64) Input {
	return Input{Labels: labels, Probs: p, Good: []string{"free"}, Brightness: 0.35, Contrast: 0.1, Sharpness: 0.01, AuditDraw: 0.5}
}

type goldenCase struct {
	Name     string   `json:"name"`
	Decision Decision `json:"decision"`
}

// TestDecideGolden covers every level and every guardrail; the decisions
// are pinned in testdata/decisions.golden.json (go test -update rewrites it,
// and the diff is then reviewed like code).
func TestDecideGolden(t *testing.T) {
	confidentGood := probs(0.99, 0.002, 0.002, 0.002, 0.002, 0.002)
	confidentBad := probs(0.02, 0.9, 0.02, 0.02, 0.02, 0.02)
	unsure := probs(0.6, 0.3, 0.025, 0.025, 0.025, 0.025)
	crackish := probs(0.5, 0.0, 0.0, 0.45, 0.05, 0.0)

	inWith := func(i Input, f func(*Input)) Input { f(&i); return i }

	cases := []struct {
		name string
		c    Config
		in   Input
	}{
		{"human/confident-good", base(Human), in(confidentGood)},
		{"shadow/confident-bad", base(Shadow), in(confidentBad)},
		{"shadow/unsure", base(Shadow), in(unsure)},
		{"assist/confident-good", base(Assist), in(confidentGood)},
		{"partial/confident-good", base(Partial), in(confidentGood)},
		{"partial/confident-bad", base(Partial), in(confidentBad)},
		{"partial/unsure", base(Partial), in(unsure)},
		{"partial/class-threshold", with(base(Partial), func(c *Config) { c.ClassReject = map[string]float64{"crack": 0.4} }), in(crackish)},
		{"partial/audit-sampled", base(Partial), inWith(in(confidentGood), func(i *Input) { i.AuditDraw = 0.01 })},
		{"full/confident-good", base(Full), in(confidentGood)},
		{"full/unsure-rejected", base(Full), in(unsure)},
		{"partial/inference-error-reject", base(Partial), inWith(in(nil), func(i *Input) { i.Failure = InferenceError })},
		{"partial/timeout-defer", with(base(Partial), func(c *Config) { c.FailSafe = Defer }), inWith(in(confidentGood), func(i *Input) { i.Failure = Timeout })},
		{"full/deadline-missed", base(Full), inWith(in(confidentGood), func(i *Input) { i.Failure = DeadlineMissed })},
		{"partial/nan-output", base(Partial), in(probs(math.NaN(), 0, 0, 0, 0, 0))},
		{"partial/failsafe-pass-is-never-pass", with(base(Partial), func(c *Config) { c.FailSafe = Pass }), inWith(in(confidentGood), func(i *Input) { i.Failure = Timeout })},
		{"partial/blank-frame", base(Partial), inWith(in(confidentGood), func(i *Input) { i.Contrast = 0.002 })},
		{"full/too-bright", base(Full), inWith(in(confidentGood), func(i *Input) { i.Brightness = 0.8 })},
		{"partial/low-contrast", base(Partial), inWith(in(confidentGood), func(i *Input) { i.Contrast = 0.02 })},
		{"partial/blurred", base(Partial), inWith(in(confidentGood), func(i *Input) { i.Sharpness = 0.0001 })},
		{"partial/always-review", with(base(Partial), func(c *Config) { c.AlwaysReview = []string{"blowhole"} }), in(confidentBad)},
		{"partial/drift-downgrade", with(base(Partial), func(c *Config) { c.DriftDowngrade = true }), inWith(in(confidentGood), func(i *Input) { i.DriftAlarm = true })},
		{"partial/drift-alarm-no-downgrade", base(Partial), inWith(in(confidentGood), func(i *Input) { i.DriftAlarm = true })},
	}
	var got []goldenCase
	for _, tc := range cases {
		got = append(got, goldenCase{tc.name, Decide(tc.c, tc.in)})
	}
	data, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "decisions.golden.json")
	if *update {
		os.WriteFile(golden, append(data, '\n'), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if string(want) != string(data)+"\n" {
		t.Errorf("decisions differ from %s; run go test -update and review the diff:\n%s", golden, data)
	}
}

// TestNeverPassUnsafe is the property behind the golden file: whatever the
// level and input, a part is never passed when inference failed, the frame
// is out of distribution, or P(good) is below the pass threshold.
func TestNeverPassUnsafe(t *testing.T) {
	failures := []Failure{NoFailure, InferenceError, Timeout, DeadlineMissed}
	for lvl := Human; lvl <= Full; lvl++ {
		for _, f := range failures {
			for _, pg := range []float64{0, 0.3, 0.5, 0.9, 0.969, 0.97, 0.999} {
				for _, bright := range []float64{0.05, 0.35, 0.9} {
					for _, fs := range []Verdict{Reject, Defer, Pass} {
						c := base(lvl)
						c.FailSafe = fs
						i := in(probs(pg, 1-pg, 0, 0, 0, 0))
						i.Failure, i.Brightness = f, bright
						d := Decide(c, i)
						if d.Verdict != Pass {
							continue
						}
						if f != NoFailure || bright != 0.35 || pg < c.PassThreshold || lvl < Partial {
							t.Errorf("passed an unsafe part: level %s failure %q P(good) %v brightness %v fail-safe %s: %+v", lvl, f, pg, bright, fs, d)
						}
					}
				}
			}
		}
	}
}

func TestEveryDecisionHasAReason(t *testing.T) {
	for lvl := Human; lvl <= Full; lvl++ {
		for _, p := range [][]float64{probs(1, 0, 0, 0, 0, 0), probs(0.5, 0.5, 0, 0, 0, 0), probs(0, 1, 0, 0, 0, 0), nil} {
			d := Decide(base(lvl), in(p))
			if d.Reason == "" || d.Detail == "" || d.Verdict == "" {
				t.Errorf("level %s probs %v: decision without verdict, reason or detail: %+v", lvl, p, d)
			}
		}
	}
}

func TestParseLevel(t *testing.T) {
	for i, n := range LevelNames() {
		l, err := ParseLevel(strings.ToUpper(n))
		if err != nil || int(l) != i || l.String() != n {
			t.Errorf("ParseLevel(%q) = %v, %v", n, l, err)
		}
	}
	if _, err := ParseLevel("autopilot"); err == nil || !strings.Contains(err.Error(), "human, shadow, assist, partial, full") {
		t.Errorf("bad level error should list the levels: %v", err)
	}
	var l Level
	if err := json.Unmarshal([]byte(`"shadow"`), &l); err != nil || l != Shadow {
		t.Errorf("unmarshal level: %v %v", l, err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		c    Config
		want string
	}{
		{base(Partial), ""},
		{with(base(Partial), func(c *Config) { c.FailSafe = Pass }), "never pass"},
		{with(base(Full), func(c *Config) { c.PassThreshold = 0.4 }), "thresholds above 0.5"},
		{with(base(Human), func(c *Config) { c.PassThreshold, c.RejectThreshold = 0, 0 }), ""},
		{with(base(Partial), func(c *Config) { c.AuditSample = 2 }), "audit_sample 2 is out of range"},
	}
	for i, tt := range tests {
		err := tt.c.Validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("case %d: got %v, want %q", i, err, tt.want)
		}
	}
}

func with(c Config, f func(*Config)) Config { f(&c); return c }

func TestDeferWindow(t *testing.T) {
	w := NewDeferWindow(10, 5, 0.3)
	for i := 0; i < 4; i++ {
		if w.Add(Defer) {
			t.Fatal("alarm before minParts decisions")
		}
	}
	if !w.Add(Pass) { // 4 of 5 deferred
		t.Fatalf("rate %.2f over 0.3 with 5 parts should alarm", w.Rate())
	}
	for i := 0; i < 10; i++ {
		w.Add(Pass)
	}
	if w.Alarm() || w.Rate() != 0 {
		t.Errorf("old deferrals must leave the window: rate %v", w.Rate())
	}
	w.Add(Defer)
	w.Add(Defer)
	if got := w.Rate(); got != 0.2 {
		t.Errorf("rate = %v, want 0.2", got)
	}
}
