package eval

import (
	"math"
)

// Verdict is the policy's decision for one part.
type Verdict int

// Verdicts.
const (
	Pass Verdict = iota
	Reject
	Defer
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Reject:
		return "reject"
	}
	return "defer"
}

// Thresholds are the policy's automation thresholds.
type Thresholds struct {
	// Pass: auto-pass when the good labels' summed probability >= Pass.
	Pass float64 `json:"pass"`
	// Reject: auto-reject when the defect labels' summed probability >= Reject.
	Reject float64 `json:"reject"`
	// PerClass: also auto-reject when one defect label's probability >= its value.
	PerClass map[string]float64 `json:"per_class,omitempty"`
	// Source says where they came from: "manifest" or a policy file.
	Source string `json:"source,omitempty"`
}

// GoodScore is the summed probability of the good labels, summed in
// float64 and clamped to [0, 1] as the policy does.
func GoodScore(scores []float32, good []bool) float64 {
	var g float64
	for k, s := range scores {
		if good[k] {
			g += float64(s)
		}
	}
	return math.Min(math.Max(g, 0), 1)
}

// Argmax is the index of the highest score (the first on a tie).
func Argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// Confusion counts (true, predicted) pairs over k labels: rows are true
// labels, columns predictions. Indexes outside [0, k) are an error of the
// caller and panic.
func Confusion(k int, truth, pred []int) [][]int {
	c := make([][]int, k)
	for i := range c {
		c[i] = make([]int, k)
	}
	for i := range truth {
		c[truth[i]][pred[i]]++
	}
	return c
}

// ClassMetrics are one label's figures.
type ClassMetrics struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// Classification derives per-class precision, recall and F1, accuracy and
// macro F1 (over the labels with support) from a confusion matrix. A label
// never predicted has precision 0; one with no support recall 0.
func Classification(conf [][]int) (per []ClassMetrics, accuracy, macroF1 float64) {
	k := len(conf)
	per = make([]ClassMetrics, k)
	total, diag := 0, 0
	var f1s []float64
	for i := range k {
		row, col := 0, 0
		for j := range k {
			row += conf[i][j]
			col += conf[j][i]
			total += conf[i][j]
		}
		tp := conf[i][i]
		diag += tp
		m := ClassMetrics{Support: row}
		if col > 0 {
			m.Precision = float64(tp) / float64(col)
		}
		if row > 0 {
			m.Recall = float64(tp) / float64(row)
		}
		if m.Precision+m.Recall > 0 {
			m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
		}
		per[i] = m
		if row > 0 {
			f1s = append(f1s, m.F1)
		}
	}
	if total > 0 {
		accuracy = float64(diag) / float64(total)
	}
	for _, f := range f1s {
		macroF1 += f
	}
	if len(f1s) > 0 {
		macroF1 /= float64(len(f1s))
	}
	return per, accuracy, macroF1
}

// Automation summarises the verdicts on a labelled set.
type Automation struct {
	Parts     int `json:"parts"`
	Good      int `json:"good"`
	Defective int `json:"defective"`
	Passed    int `json:"passed"`
	Rejected  int `json:"rejected"`
	Deferred  int `json:"deferred"`
	// Escapes are defective parts passed; FalseRejects good parts rejected.
	Escapes         int     `json:"escapes"`
	FalseRejects    int     `json:"false_rejects"`
	AutomationRate  float64 `json:"automation_rate"`
	EscapeRate      float64 `json:"escape_rate"`
	FalseRejectRate float64 `json:"false_reject_rate"`
	DeferRate       float64 `json:"defer_rate"`
	// EscapeRateUpper and FalseRejectRateUpper bound the rates from above
	// at 95 % confidence (UpperBound): what this many parts can vouch for.
	EscapeRateUpper      float64 `json:"escape_rate_upper95"`
	FalseRejectRateUpper float64 `json:"false_reject_rate_upper95"`
}

// Rates counts verdicts against the truth (isGood per part) and derives the
// rates (see the package doc); an empty population gives a rate of 0.
func Rates(verdicts []Verdict, isGood []bool) Automation {
	var a Automation
	for i, v := range verdicts {
		a.Parts++
		if isGood[i] {
			a.Good++
		} else {
			a.Defective++
		}
		switch v {
		case Pass:
			a.Passed++
			if !isGood[i] {
				a.Escapes++
			}
		case Reject:
			a.Rejected++
			if isGood[i] {
				a.FalseRejects++
			}
		default:
			a.Deferred++
		}
	}
	a.AutomationRate = ratio(a.Passed+a.Rejected, a.Parts)
	a.DeferRate = ratio(a.Deferred, a.Parts)
	a.EscapeRate = ratio(a.Escapes, a.Defective)
	a.FalseRejectRate = ratio(a.FalseRejects, a.Good)
	a.EscapeRateUpper = UpperBound(a.Escapes, a.Defective, Confidence)
	a.FalseRejectRateUpper = UpperBound(a.FalseRejects, a.Good, Confidence)
	return a
}

func ratio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// AUROC is the area under the ROC curve of score for telling positives
// (defective parts) from negatives; ties count half. It is 0 when either
// population is empty.
func AUROC(score []float64, positive []bool) float64 {
	var np, nn int
	for _, p := range positive {
		if p {
			np++
		} else {
			nn++
		}
	}
	if np == 0 || nn == 0 {
		return 0
	}
	// O(n^2) is fine for evaluation sets of thousands.
	var sum float64
	for i, p := range positive {
		if !p {
			continue
		}
		for j, q := range positive {
			if q {
				continue
			}
			switch {
			case score[i] > score[j]:
				sum++
			case score[i] == score[j]:
				sum += 0.5
			}
		}
	}
	r := sum / (float64(np) * float64(nn))
	if math.IsNaN(r) {
		return 0
	}
	return r
}
