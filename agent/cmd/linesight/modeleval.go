package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/linesight/linesight/agent/config"
	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/inference/eval"
	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/internal/cli"
)

// modelEvalCmd is `linesight model eval --model DIR --data DIR [--policy FILE] [--json]`:
// the Go inference path on a labelled folder, measured as the device would
// decide (see package inference/eval).
func modelEvalCmd(ctx context.Context, stdio Stdio, args []string) error {
	fs := newFlags("model eval", stdio)
	modelDir := fs.String("model", "", "model package directory (manifest.json + model.onnx)")
	data := fs.String("data", "", "labelled folder: DATA/CLASS/NAME.jpg (*_mask.* ignored)")
	policyFile := fs.String("policy", "", "a linesight configuration file whose policy section (pass_threshold, reject_threshold, always_review) overrides the manifest's thresholds")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	run := scoreFlags(fs)
	ev, err := run.parseAndOpen(fs, args, stdio, modelDir, data)
	if err != nil {
		return err
	}
	defer ev.Close()
	m := ev.pkg.Manifest
	pc, th, err := evalPolicy(m, *policyFile)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	rep, err := ev.evaluate(ctx, th, pc)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printEvalReport(stdio.Out, rep)
	return nil
}

// evalPolicy is the policy the device would run this model with: the
// partial level at the manifest's thresholds, or at the configuration's
// (file) where it sets them, with its always_review classes.
func evalPolicy(m *inference.Manifest, file string) (policy.Config, eval.Thresholds, error) {
	th := eval.ManifestThresholds(m)
	pc := policy.Config{Level: policy.Partial, FailSafe: policy.Defer}
	if file != "" {
		cfg, err := config.Load(file)
		if err != nil {
			return pc, th, fmt.Errorf("--policy: %w", err)
		}
		p := cfg.Policy
		th.Source = file
		if p.PassThreshold > 0 {
			th.Pass = p.PassThreshold
		}
		if p.RejectThreshold > 0 {
			th.Reject = p.RejectThreshold
		}
		pc.AlwaysReview = p.AlwaysReview
	}
	pc.PassThreshold, pc.RejectThreshold, pc.ClassReject = th.Pass, th.Reject, th.PerClass
	if err := pc.Validate(); err != nil {
		return pc, th, err
	}
	return pc, th, nil
}

// policyDecider decides each part with agent/policy's Decide, so eval
// measures the rule the line runs (image guardrails aside: eval has no
// monitor bounds).
func policyDecider(m *inference.Manifest, pc policy.Config) eval.Decider {
	probs := make([]float64, len(m.Labels))
	return func(scores []float32) eval.Verdict {
		for i, s := range scores {
			probs[i] = float64(s)
		}
		d := policy.Decide(pc, policy.Input{Labels: m.Labels, Probs: probs, Good: m.GoodLabels})
		switch d.Verdict {
		case policy.Pass:
			return eval.Pass
		case policy.Reject:
			return eval.Reject
		}
		return eval.Defer
	}
}

func printEvalReport(w io.Writer, r *eval.Report) {
	fmt.Fprintf(w, "model %s %s (%s, %s) on %s: %d images\n\n", r.Model, r.Version, r.Precision, r.Provider, r.Data, r.Images)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "true \\ predicted\t")
	for _, l := range r.Labels {
		fmt.Fprintf(tw, "%s\t", l)
	}
	fmt.Fprintln(tw)
	for i, l := range r.Labels {
		fmt.Fprintf(tw, "%s\t", l)
		for _, n := range r.Confusion[i] {
			fmt.Fprintf(tw, "%d\t", n)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "class\tprecision\trecall\tF1\tsupport\t")
	for _, l := range r.Labels {
		c := r.PerClass[l]
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%d\t\n", l, c.Precision, c.Recall, c.F1, c.Support)
	}
	tw.Flush()
	fmt.Fprintf(w, "\naccuracy %.4f   macro F1 %.4f   AUROC (defect vs good) %.4f\n", r.Accuracy, r.MacroF1, r.AUROC)
	t := r.Thresholds
	fmt.Fprintf(w, "\nthresholds (%s): pass P(good) >= %.6f, reject P(defect) >= %.6f", t.Source, t.Pass, t.Reject)
	if len(t.PerClass) > 0 {
		var ks []string
		for k, v := range t.PerClass {
			ks = append(ks, fmt.Sprintf("%s %.4f", k, v))
		}
		sort.Strings(ks)
		fmt.Fprintf(w, ", per class %s", strings.Join(ks, ", "))
	}
	fmt.Fprintln(w)
	a := r.Automation
	fmt.Fprintf(w, "automation %.4f (%d of %d: %d passed, %d rejected)   defer %.4f (%d)\n",
		a.AutomationRate, a.Passed+a.Rejected, a.Parts, a.Passed, a.Rejected, a.DeferRate, a.Deferred)
	fmt.Fprintf(w, "escape %.4f (%d of %d defective passed)   false reject %.4f (%d of %d good rejected)\n",
		a.EscapeRate, a.Escapes, a.Defective, a.FalseRejectRate, a.FalseRejects, a.Good)
	fmt.Fprintf(w, "  at %.0f %% confidence these parts bound the escape rate under %.4f and the false-reject rate under %.4f\n",
		eval.Confidence*100, a.EscapeRateUpper, a.FalseRejectRateUpper)
	for _, e := range r.Escapes {
		fmt.Fprintf(w, "  escape: %s (predicted %s, P(good) %.4f%s)\n", e.File, e.Predicted, e.GoodScore, viewNote(e.View, e.Views))
	}
	for _, e := range r.FalseRejects {
		fmt.Fprintf(w, "  false reject: %s (predicted %s, P(good) %.4f%s)\n", e.File, e.Predicted, e.GoodScore, viewNote(e.View, e.Views))
	}
	if s := windowSummary(r.Parts); s != "" {
		fmt.Fprintln(w, s)
	}
}

// viewNote names the view that decided a part scored in windows.
func viewNote(view, views int) string {
	switch {
	case views <= 1:
		return ""
	case view == 0:
		return fmt.Sprintf(", the whole part decided over its %d windows", views-1)
	default:
		return fmt.Sprintf(", window %d of %d decided", view, views-1)
	}
}

// windowSummary says, for a model with windows, how many parts were scored
// in windows and what the windows decided: where to look when the windows
// defer good parts or catch defects the whole view misses. Empty when no
// part had windows.
func windowSummary(parts []eval.Part) string {
	var n, byWin int
	verdicts := map[string]int{}
	for _, p := range parts {
		if p.Views > 1 {
			n++
			if p.View > 0 {
				byWin++
				verdicts[p.Verdict]++
			}
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("windows: %d of %d parts scored in windows as well; a window decided %d of them (%d passed, %d rejected, %d deferred)",
		n, len(parts), byWin, verdicts[eval.Pass.String()], verdicts[eval.Reject.String()], verdicts[eval.Defer.String()])
}

// scoreRun is how model eval and model calibrate run the Go engine: the
// flags they share, then an opened scorer on a labelled folder.
type scoreRun struct {
	lib, provider *string
	threads       *int
	quiet         *bool
}

func scoreFlags(fs *flag.FlagSet) *scoreRun {
	return &scoreRun{
		lib:      fs.String("onnxruntime-lib", "", "path of "+onnx.LibraryName+" (default: search)"),
		provider: fs.String("provider", onnx.ProviderCPU, "execution provider: "+strings.Join(onnx.Providers, ", ")),
		threads:  fs.Int("threads", 0, "ONNX Runtime intra-op threads (0: its default)"),
		quiet:    fs.Bool("quiet", false, "no progress on stderr"),
	}
}

// evalRun is a model package, a labelled folder of its classes and the
// Go engine's scorer, scores kept per image so that a second evaluation
// at other thresholds runs no inference.
type evalRun struct {
	pkg      *inference.Package
	ds       *eval.Dataset
	rt       *onnx.Runtime
	sc       *eval.EngineScorer
	scores   map[string]eval.Scored
	progress func(done, total int)
}

// parseAndOpen parses args into fs (flags only; --model and --data
// required: modelDir and data point at their values) and opens the run.
func (r *scoreRun) parseAndOpen(fs *flag.FlagSet, args []string, stdio Stdio, modelDir, data *string) (*evalRun, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, cli.Usagef("unexpected argument %q; %s takes only flags (see %s -h)", fs.Arg(0), fs.Name(), fs.Name())
	}
	if *modelDir == "" || *data == "" {
		return nil, cli.Usagef("--model DIR and --data DIR are required")
	}
	return r.open(stdio, *modelDir, *data)
}

func (r *scoreRun) open(stdio Stdio, modelDir, data string) (*evalRun, error) {
	pkg, err := inference.LoadPackage(modelDir)
	if err != nil {
		return nil, err
	}
	ds, err := eval.ScanFolder(data)
	if err != nil {
		return nil, &cli.UsageError{Err: err}
	}
	if err := ds.CheckClasses(pkg.Manifest.Labels); err != nil {
		return nil, &cli.UsageError{Err: err}
	}
	rt, err := onnx.OpenRuntime(onnx.ProcessSearch(*r.lib))
	if err != nil {
		return nil, err
	}
	sc, err := eval.NewEngineScorer(rt, pkg, inference.Config{Options: onnx.Options{Provider: *r.provider, IntraOpThreads: *r.threads, InterOpThreads: 1}})
	if err != nil {
		rt.Close()
		return nil, err
	}
	ev := &evalRun{pkg: pkg, ds: ds, rt: rt, sc: sc, scores: map[string]eval.Scored{}}
	if !*r.quiet {
		tty := cli.IsTerminal(stdio.Err)
		ev.progress = func(done, total int) {
			switch {
			case tty:
				fmt.Fprintf(stdio.Err, "\reval %d/%d", done, total)
				if done == total {
					fmt.Fprintln(stdio.Err)
				}
			case done%100 == 0 || done == total:
				fmt.Fprintf(stdio.Err, "eval %d/%d\n", done, total)
			}
		}
	}
	return ev, nil
}

// Score is eval.Scorer: the engine's scores, computed once per image.
func (ev *evalRun) Score(ctx context.Context, path string) (eval.Scored, error) {
	if s, ok := ev.scores[path]; ok {
		return s, nil
	}
	s, err := ev.sc.Score(ctx, path)
	if err != nil {
		return eval.Scored{}, err
	}
	s.Scores = slices.Clone(s.Scores)
	ev.scores[path] = s
	return s, nil
}

// evaluate decides every image with the policy pc (thresholds th) and
// reports; a bad image or dataset is a usage error.
func (ev *evalRun) evaluate(ctx context.Context, th eval.Thresholds, pc policy.Config) (*eval.Report, error) {
	m := ev.pkg.Manifest
	progress := ev.progress
	if len(ev.scores) == len(ev.ds.Samples) {
		progress = nil // scored already
	}
	rep, err := eval.Evaluate(ctx, ev, m, ev.ds, th, policyDecider(m, pc), progress)
	if err != nil {
		if errors.Is(err, eval.ErrImage) || errors.Is(err, eval.ErrDataset) {
			return nil, &cli.UsageError{Err: err}
		}
		return nil, err
	}
	rep.Provider = ev.sc.Provider()
	return rep, nil
}

func (ev *evalRun) Close() error {
	err := ev.sc.Close()
	if cerr := ev.rt.Close(); err == nil {
		err = cerr
	}
	return err
}
