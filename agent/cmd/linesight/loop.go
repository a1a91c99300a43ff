package main

// The closed loop (linesight demo --loop): a synthetic line with a
// deliberately weak first model, a simulated inspector labelling its
// deferred parts through the review API, the labels collected over MQTT,
// retraining with scripts/train, a signed rollout in shadow, promotion,
// and the automation rate at the same escape target before and after.
// The parts that are not the agent live in agent/loop; this file wires
// them around the real agent (runAgentWith).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/linesight/linesight/agent/config"
	"github.com/linesight/linesight/agent/loop"
	"github.com/linesight/linesight/agent/pipeline"
	"github.com/linesight/linesight/camera"
	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/internal/affinity"
	"github.com/linesight/linesight/internal/cli"
	"github.com/linesight/linesight/sync/fleet"
	"github.com/linesight/linesight/sync/rollout"
	"github.com/linesight/linesight/sync/wire"
)

// loopOptions configure the closed loop.
type loopOptions struct {
	// Dir is the work folder (created): keys, datasets, models, the
	// device's data and the fleet's dataset.
	Dir string
	// Listen and BrokerListen are the review server's and the embedded
	// broker's addresses (port 0 picks a free one).
	Listen, BrokerListen string
	// Python and Script run the training ("" Script: scripts/train/train.py
	// found from the working directory).
	Python, Script string

	// Base synthetic images (seed BaseSeed, half of them defective) train
	// the first model, with Recipe; the retrained model has the same recipe.
	Base     int
	BaseSeed int64
	Recipe   loop.Recipe

	// The line: synthetic parts of seed LineSeed at FPS parts per second,
	// a fifth of them defective, at the partial level.
	LineSeed int64
	FPS      float64
	// Labels: retrain once the collector holds this many labels.
	Labels int
	// ShadowFrames: live frames the candidate runs in shadow before the
	// fleet decides on its promotion.
	ShadowFrames int

	// Val and Test fresh synthetic parts (seeds ValSeed, TestSeed) measure
	// both models: thresholds calibrated on Val at TargetEscape (and a 2 %
	// false-reject rate), figures on Test.
	Val, Test         int
	ValSeed, TestSeed int64
	TargetEscape      float64

	// LogLevel of the agent's log (default error: the loop prints its
	// progress, and the first model's drift and defer alarms are expected).
	LogLevel string
	// Progress every this often while the inspector labels (default 2s).
	Every time.Duration
}

// defaultLoopOptions are the figures the README reports.
func defaultLoopOptions() loopOptions {
	return loopOptions{
		Listen: "127.0.0.1:8080", BrokerListen: "127.0.0.1:0", Python: "/usr/bin/python3",
		Base: 300, BaseSeed: 101, Recipe: loop.Recipe{Size: 96, Width: 8, Epochs: 10, Seed: 1},
		LineSeed: 7, FPS: 20, Labels: 600, ShadowFrames: 200,
		Val: 1500, Test: 2000, ValSeed: 303, TestSeed: 404, TargetEscape: 0.01,
		LogLevel: "error", Every: 2 * time.Second,
	}
}

const (
	loopModelName   = "loop-tiles"
	loopSite        = "loop"
	loopDevice      = "loop-01"
	loopInspector   = "ines"
	firstVersion    = "1.0.0"
	retrainVersion  = "1.1.0"
	baseDefectRate  = 0.5
	lineDefectRate  = 0.2
	valDefectRate   = 0.5 // more defects: a finer escape calibration
	targetFalseRej  = 0.02
	loopWaitDataset = 2 * time.Minute
	// loopStall: how long a step may make no progress before the loop
	// gives up (no new label, no model state change).
	loopStall = 2 * time.Minute
)

// loopResult is what the loop measured and did.
type loopResult struct {
	Before, After *loop.Measurement
	// Trained is what the retrained model learned from.
	Trained loop.TrainingSet
	// Labels are every label the inspector committed; Dataset the
	// collector's manifest once they all arrived.
	Labels  []loop.Labelled
	Dataset []fleet.Record
	// Shadow is the candidate's record on the line when the fleet decided.
	Shadow   wire.ShadowStats
	Promoted bool
	// Final is the device's last model state; Serving the version the
	// line's live view showed at the end.
	Final   wire.ModelState
	Serving string
	Steps   []loopStep
}

// loopStep is one timed step.
type loopStep struct {
	Name string
	Took time.Duration
}

// loopRun holds one run's running parts.
type loopRun struct {
	o     loopOptions
	out   io.Writer
	res   *loopResult
	start time.Time
	mark  time.Time
}

func (r *loopRun) say(format string, args ...any) {
	fmt.Fprintf(r.out, "[loop %5.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// step records the time since the previous step under name.
func (r *loopRun) step(name string) {
	now := time.Now()
	r.res.Steps = append(r.res.Steps, loopStep{name, now.Sub(r.mark)})
	r.mark = now
}

// runLoop runs the closed loop once and prints its progress and the
// before/after table on stdio.Out. When ctx ends (Ctrl-C) it stops every
// part cleanly and returns ctx's error with what it had so far.
func runLoop(ctx context.Context, stdio Stdio, o loopOptions) (res *loopResult, err error) {
	res = &loopResult{}
	if o.Every <= 0 {
		o.Every = 2 * time.Second
	}
	if o.Script == "" {
		if o.Script, err = loop.FindScript("."); err != nil {
			return res, err
		}
	}
	r := &loopRun{o: o, out: stdio.Out, res: res, start: time.Now()}
	r.mark = r.start
	dirs := struct{ keys, base, models, device, dataset, retrain string }{
		filepath.Join(o.Dir, "keys"), filepath.Join(o.Dir, "base"), filepath.Join(o.Dir, "models"),
		filepath.Join(o.Dir, "device"), filepath.Join(o.Dir, "fleet", "dataset"), filepath.Join(o.Dir, "retrain"),
	}
	firstDir := filepath.Join(dirs.models, loopModelName+"-"+firstVersion)
	nextDir := filepath.Join(dirs.models, loopModelName+"-"+retrainVersion)
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return res, fmt.Errorf("loop: work folder: %w", err)
	}
	r.say("LineSight closed loop in %s", o.Dir)

	// The fleet's signing key; the device trusts its public half.
	_, pub, keyID, err := rollout.GenerateKey(dirs.keys)
	if err != nil {
		return res, fmt.Errorf("loop: %w", err)
	}

	// 1. A deliberately weak first model: few images, a small network.
	r.say("1/7 first model: %d synthetic images (seed %d, half defective), %d px, width %d, %d epochs",
		o.Base, o.BaseSeed, o.Recipe.Size, o.Recipe.Width, o.Recipe.Epochs)
	if err := synthCmd(ctx, Stdio{Out: io.Discard, Err: io.Discard}, []string{"--out", dirs.base, "--n", strconv.Itoa(o.Base),
		"--seed", strconv.FormatInt(o.BaseSeed, 10), "--defect-rate", strconv.FormatFloat(baseDefectRate, 'f', -1, 64)}); err != nil {
		return res, fmt.Errorf("loop: first training set: %w", err)
	}
	if err := r.train(ctx, dirs.base, firstDir, firstVersion); err != nil {
		return res, err
	}
	r.step("train first model")

	rt, err := onnx.OpenRuntime(onnx.ProcessSearch(""))
	if err != nil {
		return res, err
	}
	defer rt.Close()
	mo := loop.MeasureOptions{
		Val:          loop.SyntheticSet{Spec: loopSpec(o.ValSeed, valDefectRate), N: o.Val},
		Test:         loop.SyntheticSet{Spec: loopSpec(o.TestSeed, lineDefectRate), N: o.Test},
		TargetEscape: o.TargetEscape, TargetFalseReject: targetFalseRej,
	}
	if res.Before, err = r.calibrate(ctx, rt, firstDir, mo); err != nil {
		return res, r.stopped(ctx, err)
	}
	r.step("calibrate first model")

	// 2. The line, with the first model, taking signed rollouts.
	pass := make([]byte, 12)
	_, _ = rand.Read(pass)
	password := hex.EncodeToString(pass)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return res, fmt.Errorf("loop: inspector password: %w", err)
	}
	cfg, err := loopConfig(o, dirs.device, firstDir, pub, string(hash))
	if err != nil {
		return res, err
	}
	log, err := cli.NewLogger(stdio.Err, cfg.Log)
	if err != nil {
		return res, &cli.UsageError{Err: err}
	}
	log = log.With("device", loopDevice)
	r.say("2/7 the line: device %s, synthetic camera (seed %d, %g parts/s, %s defective) at partial automation, model %s %s",
		loopDevice, o.LineSeed, o.FPS, pct(lineDefectRate), loopModelName, firstVersion)
	actx, stopAgent := context.WithCancel(context.WithoutCancel(ctx))
	lctx, cancel := context.WithCancel(ctx) // ends when ctx does or the agent stops
	defer cancel()
	ready := make(chan agentInfo, 1)
	agentDone := make(chan struct{})
	var agentErr error
	go func() {
		defer close(agentDone)
		defer cancel()
		agentOut := &prefixWriter{w: stdio.Out, prefix: "  [device] "}
		agentErr = runAgentWith(actx, Stdio{In: stdio.In, Out: agentOut, Err: stdio.Err}, cfg, true, agentHooks{
			source: func(s pipeline.Source) pipeline.Source { return loop.Tag(s) },
			ready:  func(i agentInfo) { ready <- i },
		})
	}()
	agentChecked := false
	defer func() {
		stopAgent()
		<-agentDone
		if agentErr != nil && !agentChecked {
			err = errors.Join(err, fmt.Errorf("loop: agent: %w", agentErr))
		}
	}()
	var info agentInfo
	select {
	case info = <-ready:
	case <-agentDone:
		agentChecked = true
		return res, fmt.Errorf("loop: the agent did not start: %w", agentErr)
	case <-ctx.Done():
		return res, ctx.Err()
	}

	// The fleet: the collector and the manager's connection.
	fl, err := loop.OpenFleet(lctx, loop.FleetOptions{Broker: info.Broker, Site: loopSite, Device: loopDevice,
		DatasetDir: dirs.dataset, Key: filepath.Join(dirs.keys, rollout.PrivateKeyFile), Logger: log})
	if err != nil {
		return res, fmt.Errorf("loop: %w", err)
	}
	defer fl.Close()

	// 3. The inspector, who knows each part's true class.
	truth, err := loop.NewTruth(cfg.Cameras[0].Source.Synthetic)
	if err != nil {
		return res, fmt.Errorf("loop: %w", err)
	}
	insp, err := loop.OpenInspector(lctx, loop.InspectorOptions{URL: info.UI, User: loopInspector, Password: password,
		Camera: cfg.Cameras[0].ID, Truth: truth.Class, Logger: log})
	if err != nil {
		return res, fmt.Errorf("loop: %w", err)
	}
	closeInspector := sync.OnceFunc(func() { insp.Close() })
	defer closeInspector()
	r.say("3/7 inspector %q logged in to %s and labels the deferred parts with their true class", loopInspector, info.UI)
	r.step("start the line")

	// 4. The labels reach the collector.
	if err := r.waitLabels(lctx, insp, dirs.dataset); err != nil {
		return res, r.stopped(ctx, err)
	}
	snapshot, err := loop.ReadRecords(dirs.dataset)
	if err != nil {
		return res, fmt.Errorf("loop: %w", err)
	}
	// Exactly the first Labels labels (the manifest is in arrival order,
	// which is the inspector's order): the same line, model and inspector
	// give the same training set, whatever the timing of this poll.
	snapshot = snapshot[:min(len(snapshot), o.Labels)]
	r.step("label and collect")

	// 5. Retrain on the first model's data plus the collected labels.
	if res.Trained, err = loop.MergeTrainingSet(dirs.retrain, dirs.base, dirs.dataset, snapshot); err != nil {
		return res, fmt.Errorf("loop: %w", err)
	}
	r.say("5/7 retraining on %d images: the first model's %d and %d labelled on the line (%s)", res.Trained.Total(),
		sum(res.Trained.Base), sum(res.Trained.Collected), classCounts(res.Trained.Collected))
	if err := r.train(lctx, dirs.retrain, nextDir, retrainVersion); err != nil {
		return res, r.stopped(ctx, err)
	}
	if res.After, err = r.calibrate(lctx, rt, nextDir, mo); err != nil {
		return res, r.stopped(ctx, err)
	}
	r.step("retrain and calibrate")

	// 6. Signed rollout in shadow; the fleet promotes on the shadow record.
	crit := rollout.Criteria{MinFrames: o.ShadowFrames, MinAgreement: 0.95, MaxLatencyRatio: 3, MaxErrorRate: 0.01, Auto: false}
	rel, err := fl.Push(nextDir, rollout.StageShadow, crit)
	if err != nil {
		return res, fmt.Errorf("loop: %w", err)
	}
	r.say("6/7 pushed %s %s to %s in shadow: offer %s signed with %s, %d chunks", rel.Name, rel.Version, loopDevice, rel.Offer, keyID, len(rel.Chunks))
	if err := r.shadowAndPromote(lctx, fl, insp, rel); err != nil {
		return res, r.stopped(ctx, err)
	}
	r.step("shadow and promote")

	// 7. Every label sent reaches the dataset, once.
	r.say("7/7 the inspector stops; waiting for every label at the collector")
	closeInspector()
	res.Labels = insp.Labels()
	if res.Dataset, err = r.waitDataset(lctx, res.Labels, dirs.dataset); err != nil {
		return res, r.stopped(ctx, err)
	}
	stopAgent()
	<-agentDone
	if agentChecked = true; agentErr != nil {
		return res, fmt.Errorf("loop: agent: %w", agentErr)
	}
	r.step("drain labels, stop the line")
	r.report()
	return res, nil
}

// calibrate measures the package in dir on the fresh validation and test
// parts and writes the thresholds calibrated on the validation parts into
// its manifest (before it is deployed or signed), so that every model runs
// at the same escape target.
func (r *loopRun) calibrate(ctx context.Context, rt *onnx.Runtime, dir string, mo loop.MeasureOptions) (*loop.Measurement, error) {
	me, err := loop.Measure(ctx, rt, dir, mo)
	if err != nil {
		return nil, fmt.Errorf("loop: measure %s: %w", dir, err)
	}
	split := fmt.Sprintf("fleet validation set: %d synthetic parts, seed %d", mo.Val.N, mo.Val.Spec.Seed)
	if err := loop.SetThresholds(dir, me, mo, split); err != nil {
		return nil, fmt.Errorf("loop: %w", err)
	}
	r.say("    %s %s calibrated on %d fresh validation parts: pass >= %.4f, reject >= %.4f (escape %s there); on %d fresh test parts: automation %s, escape %s",
		me.Model, me.Version, mo.Val.N, me.Val.Pass, me.Val.Reject, pct(me.Val.EscapeRate), mo.Test.N, pct(me.Test.AutomationRate), pct(me.Test.EscapeRate))
	return me, nil
}

// stopped says why the loop ends early: Ctrl-C, or err.
func (r *loopRun) stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		r.say("stopped (%v); the work folder %s keeps what was done", ctx.Err(), r.o.Dir)
		return ctx.Err()
	}
	return err
}

// train runs scripts/train on data into out, printing its time.
func (r *loopRun) train(ctx context.Context, data, out, version string) error {
	t0 := time.Now()
	err := loop.Train(ctx, loop.TrainOptions{Python: r.o.Python, Script: r.o.Script, Data: data, Out: out,
		Name: loopModelName, Version: version, Recipe: r.o.Recipe, Threads: 1, Nice: true,
		Progress: func(line string) {
			for _, p := range []string{"training ", "val ", "thresholds"} {
				if strings.HasPrefix(line, p) {
					r.say("    train.py: %s", line)
				}
			}
		}})
	if err != nil {
		return fmt.Errorf("loop: %w", err)
	}
	r.say("    %s %s trained in %.0f s (%s)", loopModelName, version, time.Since(t0).Seconds(), out)
	return nil
}

// waitLabels prints progress until the collector holds o.Labels labels.
func (r *loopRun) waitLabels(ctx context.Context, insp *loop.Inspector, dataset string) error {
	r.say("4/7 waiting for %d labels at the collector (%s)", r.o.Labels, dataset)
	tick := time.NewTicker(r.o.Every)
	defer tick.Stop()
	have, moved := 0, time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		recs, err := loop.ReadRecords(dataset)
		if err != nil {
			return fmt.Errorf("loop: %w", err)
		}
		st := insp.Stats()
		if len(recs) > have {
			have, moved = len(recs), time.Now()
		} else if time.Since(moved) > loopStall {
			return fmt.Errorf("loop: no new label at the collector for %s (%d labelled, %d inspector errors; see the log)", loopStall, st.Labels, st.Errors)
		}
		line := ""
		if l, err := insp.Live(ctx); err == nil && len(l.Cameras) > 0 {
			c := l.Cameras[0]
			line = fmt.Sprintf("; line: %d pass, %d reject, %d deferred, defer rate %s, queue %d",
				c.Counts["pass"], c.Counts["reject"], c.Counts["defer"], pct(c.DeferRate), l.Queue)
		}
		if st.Errors > 0 {
			line += fmt.Sprintf("; %d inspector errors", st.Errors)
		}
		r.say("    labelled %d (%d differ from the model's suggestion), collected %d%s", st.Labels, st.Corrected, len(recs), line)
		if len(recs) >= r.o.Labels {
			return nil
		}
	}
}

// shadowAndPromote follows the candidate until it has run ShadowFrames
// live frames in shadow, promotes it when it would automate more than the
// active model without errors, and waits until it is active (after its
// probation) and serving.
func (r *loopRun) shadowAndPromote(ctx context.Context, fl *loop.Fleet, insp *loop.Inspector, rel *rollout.Release) error {
	// Shadow and probation take ShadowFrames frames each at the line's pace.
	wait := loopStall + 2*time.Duration(float64(r.o.ShadowFrames)/r.o.FPS*float64(time.Second))
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	last := ""
	s, err := fl.WaitState(ctx, func(s wire.ModelState) bool {
		if s.Offer != rel.Offer && s.Model.Version != rel.Version {
			return false
		}
		if s.State != last && s.State != wire.ModelDownloading {
			r.say("    device: %s %s", s.State, s.Model.Version)
			last = s.State
		}
		return s.State == wire.ModelRejected || (s.State == wire.ModelShadow && s.Shadow != nil && s.Shadow.Frames >= r.o.ShadowFrames)
	})
	if err != nil {
		return waitErr(err, "shadow", s)
	}
	if s.State == wire.ModelRejected {
		return fmt.Errorf("loop: the device refused %s: %s (%s)", rel.Version, s.Error, s.Code)
	}
	r.res.Shadow = *s.Shadow
	sh := s.Shadow
	r.say("    shadow on %d live frames: automation %s (active %s) vs %s (candidate), label agreement %s, latency %.2f vs %.2f ms, %d errors",
		sh.Frames, firstVersion, pct(sh.ActiveAutomation), pct(sh.ShadowAutomation), pct(sh.Agreement), sh.ActiveLatencyMS, sh.ShadowLatencyMS, sh.Errors)
	if sh.ShadowAutomation <= sh.ActiveAutomation || sh.Errors > 0 {
		r.say("    not promoted: the candidate would not automate more of the line, or failed on it")
		return nil
	}
	if err := fl.Promote("fleet:loop", fmt.Sprintf("shadow automation %.3f > %.3f over %d frames", sh.ShadowAutomation, sh.ActiveAutomation, sh.Frames)); err != nil {
		return fmt.Errorf("loop: %w", err)
	}
	r.say("    promote command sent (the candidate automates more of the same live parts, without errors)")
	last = ""
	s, err = fl.WaitState(ctx, func(s wire.ModelState) bool {
		if s.Model.Version != rel.Version {
			return false
		}
		if s.State != last {
			r.say("    device: %s %s", s.State, s.Model.Version)
			last = s.State
		}
		return s.State == wire.ModelActive || s.State == wire.ModelRolledBack || s.State == wire.ModelRejected
	})
	r.res.Final = s
	if err != nil {
		return waitErr(err, "active", s)
	}
	if s.State != wire.ModelActive {
		return fmt.Errorf("loop: %s after promotion: %s (%s)", s.State, s.Error, s.Code)
	}
	r.res.Promoted = true
	if l, err := insp.Live(ctx); err == nil && len(l.Cameras) > 0 {
		r.res.Serving = l.Cameras[0].Model.Version
		r.say("    the line serves %s %s", l.Cameras[0].Model.Name, r.res.Serving)
	}
	return nil
}

// waitErr names the state waited for when the wait timed out.
func waitErr(err error, want string, last wire.ModelState) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("loop: the device did not reach %s in time (last state %q %s)", want, last.State, last.Model.Version)
	}
	return err
}

// waitDataset waits until every label is in the collector's dataset and
// returns its manifest.
func (r *loopRun) waitDataset(ctx context.Context, labels []loop.Labelled, dataset string) ([]fleet.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, loopWaitDataset)
	defer cancel()
	for {
		recs, err := loop.ReadRecords(dataset)
		if err != nil {
			return nil, fmt.Errorf("loop: %w", err)
		}
		have := map[string]bool{}
		for _, rec := range recs {
			have[rec.LabelID] = true
		}
		missing := 0
		for _, l := range labels {
			if !have[l.LabelID] {
				missing++
			}
		}
		if missing == 0 {
			r.say("    all %d labels are in the dataset (%d records)", len(labels), len(recs))
			return recs, nil
		}
		select {
		case <-ctx.Done():
			return recs, fmt.Errorf("loop: %d of %d labels not in the dataset: %w", missing, len(labels), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// report prints the before/after table.
func (r *loopRun) report() {
	res, o := r.res, r.o
	b, a := res.Before, res.After
	w := r.out
	fmt.Fprintf(w, "\nThe closed loop: %s before and after. Each runs at thresholds calibrated on the same %d fresh parts\n"+
		"(seed %d, %s defective) for escape <= %s and false reject <= %s, written into its manifest before deployment;\n"+
		"figures on %d other fresh parts no model saw (seed %d, %s defective, the line's mix), decided by the partial-level policy:\n\n",
		loopModelName, o.Val, o.ValSeed, pct(valDefectRate), pct(o.TargetEscape), pct(targetFalseRej), o.Test, o.TestSeed, pct(lineDefectRate))
	row := func(name, before, after string) { fmt.Fprintf(w, "  %-38s %-30s %s\n", name, before, after) }
	row("", "before", "after")
	row("model", b.Model+" "+b.Version, a.Model+" "+a.Version)
	row("trained on", fmt.Sprintf("%d synthetic images", sum(res.Trained.Base)),
		fmt.Sprintf("the same + %d labelled", sum(res.Trained.Collected)))
	row("automation", pct(b.Test.AutomationRate), pct(a.Test.AutomationRate))
	row("escape (defects passed)", frac(b.Test.Escapes, b.Test.Defective), frac(a.Test.Escapes, a.Test.Defective))
	row("false reject (good rejected)", frac(b.Test.FalseRejects, b.Test.Good), frac(a.Test.FalseRejects, a.Test.Good))
	row("deferred to a person", frac(b.Test.Deferred, b.Test.Parts), frac(a.Test.Deferred, a.Test.Parts))
	row("pass / reject thresholds", fmt.Sprintf("%.4f / %.4f", b.Test.Pass, b.Test.Reject), fmt.Sprintf("%.4f / %.4f", a.Test.Pass, a.Test.Reject))
	row("validation: automation, escape", pct(b.Val.AutomationRate)+", "+pct(b.Val.EscapeRate), pct(a.Val.AutomationRate)+", "+pct(a.Val.EscapeRate))
	row("accuracy (top class)", fmt.Sprintf("%.3f", b.Test.Accuracy), fmt.Sprintf("%.3f", a.Test.Accuracy))
	row("AUROC (defect vs good)", fmt.Sprintf("%.3f", b.Test.AUROC), fmt.Sprintf("%.3f", a.Test.AUROC))
	row("at train.py's thresholds", scriptFigures(b), scriptFigures(a))
	if res.Shadow.Frames > 0 {
		row(fmt.Sprintf("live line, same frames (shadow, %d)", res.Shadow.Frames), pct(res.Shadow.ActiveAutomation)+" automated", pct(res.Shadow.ShadowAutomation)+" automated")
	}
	promoted := "no"
	if res.Promoted {
		promoted = "yes: " + res.Final.Model.Version + " active, the line serves " + res.Serving
	}
	fmt.Fprintf(w, "\n  labels: %d by the inspector, %d records in the dataset; promoted: %s\n", len(res.Labels), len(res.Dataset), promoted)
	fmt.Fprintf(w, "  time:")
	var total time.Duration
	for _, s := range res.Steps {
		fmt.Fprintf(w, " %s %.0fs;", s.Name, s.Took.Seconds())
		total += s.Took
	}
	fmt.Fprintf(w, " total %.0fs\n  work folder: %s\n", total.Seconds(), o.Dir)
}

// loopConfig is the device's configuration: the demo's, with the loop's
// line, the first model, the fleet's key, the uplink and an inspector.
func loopConfig(o loopOptions, dataDir, model, trustedKey, hash string) (*config.Config, error) {
	cfg := config.Default()
	cfg.Device.ID, cfg.Device.Site = loopDevice, loopSite
	cfg.DataDir = dataDir
	cfg.Log.Level = o.LogLevel
	cam := &cfg.Cameras[0]
	cam.Source.Synthetic = loopSpec(o.LineSeed, lineDefectRate)
	cam.Trigger.FPS = o.FPS
	cam.Automation = "partial"
	cfg.Model.Path = model
	cfg.Model.TrustedKeys = []string{trustedKey}
	// The loop retrains beside the line in the same process tree: a child
	// inherits the line's CPUs, so with the model on CPUs of its own the
	// training would have only what the line leaves. No split here.
	cfg.Model.CPUs = affinity.None
	// The loop is about deferred parts: no audit sample of automatic ones,
	// and no alarm for the first model's high defer rate.
	cfg.Policy.AuditSample = 0
	cfg.Policy.MaxDeferRate = 0
	cfg.Sync.Uplink = true
	cfg.Sync.TelemetryEvery = 5 * time.Second
	cfg.Review.Listen = o.Listen
	cfg.Review.Auth = "users"
	cfg.Review.Users = []config.User{{Name: loopInspector, Role: "inspector", PasswordHash: hash}}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cfg.Review.SessionKey = hex.EncodeToString(key)
	cfg.MQTT.Embedded.Listen = o.BrokerListen
	cfg.Outputs.MQTT = false
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loop: device configuration: %w", err)
	}
	return cfg, nil
}

// loopSpec is a synthetic line like the demo's with its own seed.
func loopSpec(seed int64, defectRate float64) camera.SyntheticSpec {
	s := camera.DefaultSpec("loop").Source.Synthetic
	s.Seed, s.DefectRate = seed, defectRate
	return s
}

// scriptFigures: automation and escape at the thresholds train.py chose
// on its own validation split.
func scriptFigures(m *loop.Measurement) string {
	return fmt.Sprintf("%s auto, %s esc (val %d)", pct(m.Script.AutomationRate), pct(m.Script.EscapeRate), m.ScriptSplit)
}

func pct(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + "%" }

func frac(n, d int) string {
	if d == 0 {
		return "0 of 0"
	}
	return fmt.Sprintf("%s (%d of %d)", pct(float64(n)/float64(d)), n, d)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func classCounts(m map[string]int) string {
	s := ""
	for _, c := range camera.Classes {
		if m[c] > 0 {
			if s != "" {
				s += ", "
			}
			s += c + " " + strconv.Itoa(m[c])
		}
	}
	return s
}

// demoLoop is `linesight demo -loop`: the loop in a new work folder under
// data (default: the configuration's data_dir); Ctrl-C stops it cleanly.
func demoLoop(ctx context.Context, stdio Stdio, data string, o loopOptions) error {
	if o.Labels < 1 || o.Base < 100 || o.FPS <= 0 || o.ShadowFrames < 1 || o.Test < 1 {
		return cli.Usagef("-loop needs -labels >= 1, -base >= 100 (every class needs images), -fps > 0, -shadow-frames >= 1 and -test >= 1")
	}
	if data == "" {
		data = config.Default().DataDir
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return &cli.UsageError{Err: fmt.Errorf("data folder %s: %w", data, err)}
	}
	dir, err := os.MkdirTemp(data, "loop-")
	if err != nil {
		return &cli.UsageError{Err: fmt.Errorf("data folder %s: %w", data, err)}
	}
	o.Dir = dir
	if _, err := runLoop(ctx, stdio, o); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stdio.Out, "stopped cleanly")
			return nil
		}
		return err
	}
	return nil
}

// prefixWriter writes each line with a prefix (the agent's own output
// among the loop's).
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	mid    bool // inside a line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
		}
		out = append(out, c)
		p.mid = c != '\n'
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
