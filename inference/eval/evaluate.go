package eval

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/linesight/linesight/inference"
)

// Report is the outcome of one evaluation.
type Report struct {
	Model     string   `json:"model"`
	Version   string   `json:"version"`
	Precision string   `json:"precision,omitempty"`
	Provider  string   `json:"provider,omitempty"`
	Data      string   `json:"data"`
	Labels    []string `json:"labels"`
	Good      []string `json:"good_labels"`
	Images    int      `json:"images"`
	// Confusion rows are true labels, columns predictions, in Labels order.
	Confusion  [][]int                 `json:"confusion"`
	PerClass   map[string]ClassMetrics `json:"per_class"`
	Accuracy   float64                 `json:"accuracy"`
	MacroF1    float64                 `json:"macro_f1"`
	AUROC      float64                 `json:"auroc"`
	Thresholds Thresholds              `json:"thresholds"`
	Automation Automation              `json:"automation"`
	// Escapes and FalseRejects name the parts behind those rates.
	Escapes      []Miss `json:"escapes"`
	FalseRejects []Miss `json:"false_rejects"`
	// Parts is every part in dataset order: its score and the verdict, to
	// read the score distribution and the deferred parts from (JSON only).
	Parts []Part `json:"parts"`
}

// Part is one scored part of the evaluation.
type Part struct {
	File      string  `json:"file"` // CLASS/NAME
	Label     string  `json:"label"`
	Predicted string  `json:"predicted"`
	GoodScore float64 `json:"good_score"`
	Verdict   string  `json:"verdict"`
	// View decided of the Views scored (Scored's fields).
	View  int `json:"view"`
	Views int `json:"views"`
}

// Miss is one wrongly automated part.
type Miss struct {
	File      string  `json:"file"` // CLASS/NAME
	Predicted string  `json:"predicted"`
	GoodScore float64 `json:"good_score"`
	View      int     `json:"view"`
	Views     int     `json:"views"`
}

// Prediction is one scored part.
type Prediction struct {
	Truth     int // label index
	Scores    []float32
	GoodScore float64
	Verdict   Verdict
	// View decided of the Views scored (Scored's fields).
	View, Views int
}

// Decider turns one part's class probabilities (in label order) into the
// policy's verdict. The caller supplies it (the CLI wraps agent/policy's
// Decide), so eval measures the very rule the line runs; inference may not
// import agent, so the rule is injected rather than written here twice.
type Decider func(scores []float32) Verdict

func goodMask(m *inference.Manifest) []bool {
	good := make([]bool, len(m.Labels))
	for k, l := range m.Labels {
		good[k] = m.IsGood(l)
	}
	return good
}

// Evaluate scores every sample of ds with s, decides each part with decide
// (required) and builds the report for the model m at
// thresholds th. progress, when set, is called after each image. The
// dataset's classes must all be labels of m (ErrDataset otherwise).
func Evaluate(ctx context.Context, s Scorer, m *inference.Manifest, ds *Dataset, th Thresholds, decide Decider, progress func(done, total int)) (*Report, error) {
	if decide == nil {
		return nil, errors.New("evaluate: no decider: pass the policy's decision rule")
	}
	if err := ds.CheckClasses(m.Labels); err != nil {
		return nil, err
	}
	good := goodMask(m)
	preds := make([]Prediction, 0, len(ds.Samples))
	for i, smp := range ds.Samples {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("eval stopped after %d of %d images: %w", i, len(ds.Samples), err)
		}
		out, err := s.Score(ctx, smp.Path)
		if err != nil {
			return nil, fmt.Errorf("eval %s: %w", smp.Rel, err)
		}
		if len(out.Scores) != len(m.Labels) {
			return nil, fmt.Errorf("eval %s: %w: %d scores for %d labels", smp.Rel, inference.ErrShape, len(out.Scores), len(m.Labels))
		}
		sc := slices.Clone(out.Scores)
		preds = append(preds, Prediction{Truth: slices.Index(m.Labels, smp.Label), Scores: sc,
			GoodScore: GoodScore(sc, good), Verdict: decide(sc), View: out.View, Views: max(out.Views, 1)})
		if progress != nil {
			progress(i+1, len(ds.Samples))
		}
	}
	r := Summarise(m, preds, th)
	r.Data = ds.Root
	r.Parts = make([]Part, len(preds))
	for i, p := range preds {
		r.Parts[i] = Part{File: ds.Samples[i].Rel, Label: m.Labels[p.Truth], Predicted: m.Labels[Argmax(p.Scores)],
			GoodScore: p.GoodScore, Verdict: p.Verdict.String(), View: p.View, Views: p.Views}
		miss := Miss{File: ds.Samples[i].Rel, Predicted: m.Labels[Argmax(p.Scores)], GoodScore: p.GoodScore, View: p.View, Views: p.Views}
		if p.Verdict == Pass && !good[p.Truth] {
			r.Escapes = append(r.Escapes, miss)
		}
		if p.Verdict == Reject && good[p.Truth] {
			r.FalseRejects = append(r.FalseRejects, miss)
		}
	}
	return r, nil
}

// Summarise computes the report's figures from predictions (pure).
func Summarise(m *inference.Manifest, preds []Prediction, th Thresholds) *Report {
	r := &Report{Model: m.Name, Version: m.Version, Precision: m.Model.Precision, Labels: m.Labels, Good: m.GoodLabels,
		Images: len(preds), Thresholds: th, PerClass: map[string]ClassMetrics{}, Escapes: []Miss{}, FalseRejects: []Miss{}}
	truth := make([]int, len(preds))
	pred := make([]int, len(preds))
	verdicts := make([]Verdict, len(preds))
	isGood := make([]bool, len(preds))
	defect := make([]float64, len(preds))
	for i, p := range preds {
		truth[i], pred[i], verdicts[i] = p.Truth, Argmax(p.Scores), p.Verdict
		isGood[i] = m.IsGood(m.Labels[p.Truth])
		defect[i] = 1 - p.GoodScore
	}
	r.Confusion = Confusion(len(m.Labels), truth, pred)
	per, acc, f1 := Classification(r.Confusion)
	for k, l := range m.Labels {
		r.PerClass[l] = per[k]
	}
	r.Accuracy, r.MacroF1 = acc, f1
	notGood := make([]bool, len(isGood))
	for i, g := range isGood {
		notGood[i] = !g
	}
	r.AUROC = AUROC(defect, notGood)
	r.Automation = Rates(verdicts, isGood)
	return r
}

// ManifestThresholds are the thresholds a manifest carries.
func ManifestThresholds(m *inference.Manifest) Thresholds {
	return Thresholds{Pass: m.Thresholds.Pass, Reject: m.Thresholds.Reject, PerClass: m.Thresholds.PerClass, Source: "manifest"}
}
