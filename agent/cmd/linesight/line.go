package main

// Adapters between the pipeline and its consumers: the review UI
// (review.Line, review.Models) and the uplink (Telemetry, Status,
// Commands). Each consumer defines the small interface it needs; these
// types fill them from the running parts.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linesight/linesight/agent/config"
	"github.com/linesight/linesight/agent/lifecycle"
	"github.com/linesight/linesight/agent/pipeline"
	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/agent/review"
	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/camera"
	"github.com/linesight/linesight/sync/wire"
)

// line is the running line as its consumers see it.
type line struct {
	cfg  *config.Config
	pl   *pipeline.Pipeline
	cams map[string]*camera.Camera
	st   *store.Store
	lc   *lifecycle.Lifecycle // nil without model rollouts
}

// Cameras implements review.Line.
func (l *line) Cameras() []review.CameraStatus {
	name, version, _ := l.pl.Model()
	out := make([]review.CameraStatus, 0, len(l.cfg.Cameras))
	var shadow *store.ModelRef
	if l.lc != nil {
		if s := l.lc.State(); s.State == wire.ModelShadow {
			shadow = &store.ModelRef{Name: s.Model.Name, Version: s.Model.Version}
		}
	}
	for i, c := range l.pl.Cameras() {
		cs := review.CameraStatus{
			ID: c.ID, Source: l.cfg.Cameras[i].Source.Kind, Automation: c.Level.String(),
			Running: true, State: "running", Level: c.Effective, SetLevel: c.Level,
			Model: store.ModelRef{Name: name, Version: version}, Shadow: shadow,
			Counts: c.Verdicts, DeferRate: c.DeferRate, DeferAlarm: c.DeferAlrm, Throughput: c.Throughput,
			LatencyP50: c.LatencyP50, LatencyP99: c.LatencyP99,
			Drift: review.Drift{Alarm: c.Drift.Alarm, Score: c.Drift.PSI[c.Drift.Worst], Detail: c.Drift.Reason},
		}
		if cam := l.cams[c.ID]; cam != nil {
			if st := cam.Stats(); !st.Up {
				cs.Running, cs.State = false, fmt.Sprintf("reconnecting (%d outages so far)", st.Outages)
			}
		}
		for _, d := range c.Last {
			cs.Last = append(cs.Last, reviewDecision(c.ID, &d))
		}
		out = append(out, cs)
	}
	return out
}

func reviewDecision(cam string, d *pipeline.DecisionEvent) review.Decision {
	p := d.PGood
	if d.Top != "" && d.Verdict == policy.Reject {
		p = 1 - d.PGood
	}
	return review.Decision{ID: d.ID, Camera: cam, Time: d.Time, Verdict: d.Verdict, Reason: d.Reason, Top: d.Top, P: p,
		Latency: d.Latency, Review: d.Review, Image: d.Image}
}

// SetLevel implements review.Line and uplink.Commands.
func (l *line) SetLevel(ctx context.Context, cam string, level policy.Level, by string) error {
	err := l.pl.SetLevel(ctx, cam, level, by)
	if errors.Is(err, pipeline.ErrUnknownCamera) {
		return fmt.Errorf("%w: %v", review.ErrUnknownCamera, err)
	}
	return err
}

// Trigger implements uplink.Commands: a part trigger from the cloud.
func (l *line) Trigger(_ context.Context, cam, part string) error {
	c := l.cams[cam]
	if c == nil {
		return fmt.Errorf("trigger: %w %q", pipeline.ErrUnknownCamera, cam)
	}
	return c.Trigger(camera.Part{ID: part})
}

// Subscribe implements review.Line.
func (l *line) Subscribe(buffer int) (<-chan review.Event, func()) {
	in, cancel := l.pl.Subscribe(buffer)
	out := make(chan review.Event, buffer)
	go func() {
		defer close(out)
		for e := range in {
			re := review.Event{Time: e.Time, Camera: e.Camera}
			switch e.Kind {
			case pipeline.EventDecision:
				d := reviewDecision(e.Camera, e.Decision)
				re.Kind, re.Decision = review.EventDecision, &d
			case pipeline.EventAlarm:
				re.Kind = review.EventAlarm
				re.Alarm = &review.Alarm{Name: e.Alarm.Kind, Active: e.Alarm.Raised, Detail: e.Alarm.Detail}
				for _, v := range e.Alarm.PSI {
					re.Alarm.Score = max(re.Alarm.Score, v)
				}
			case pipeline.EventLevel:
				re.Kind, re.Level = review.EventLevel, &review.LevelEvent{From: e.From, To: e.Level, By: e.By}
			default:
				continue
			}
			select {
			case out <- re:
			default: // a slow browser loses events, never the line
			}
		}
	}()
	return out, cancel
}

// Telemetry implements uplink.Telemetry.
func (l *line) Telemetry() wire.Telemetry {
	name, version, _ := l.pl.Model()
	t := wire.Telemetry{Model: wire.ModelRef{Name: name, Version: version}, Health: "ok"}
	for _, c := range l.pl.Cameras() {
		cm := wire.CameraMetrics{ID: c.ID, Level: c.Effective.String(), Parts: c.Parts, Throughput: c.Throughput,
			LatencyP50: ms(c.LatencyP50), LatencyP99: ms(c.LatencyP99), DeferRate: c.DeferRate, Drift: c.Drift.PSI[c.Drift.Worst], Health: "ok"}
		if c.Drift.Alarm || c.DeferAlrm {
			cm.Health, t.Health = "degraded", "degraded"
		}
		if cam := l.cams[c.ID]; cam != nil && !cam.Stats().Up {
			cm.Health, t.Health = "down", "degraded"
		}
		t.Cameras = append(t.Cameras, cm)
	}
	if st, err := l.st.Stats(); err == nil {
		t.Outbox = st.OutboxLen()
		t.Disk = wire.Disk{UsedBytes: st.Usage.Total(), BudgetBytes: int64(l.cfg.Store.MaxBytes)}
	}
	return t
}

// Status implements uplink.Status.
func (l *line) Status() wire.Status {
	name, version, _ := l.pl.Model()
	s := wire.Status{Agent: buildVersion(), Model: wire.ModelRef{Name: name, Version: version}, Since: startTime}
	for _, c := range l.pl.Cameras() {
		s.Cameras = append(s.Cameras, wire.CameraSummary{ID: c.ID, Level: c.Effective.String(), Health: "ok"})
	}
	return s
}

var startTime = time.Now()

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// models is the model lifecycle as the supervisor page sees it. The
// lifecycle is device-wide: every camera shares the active model.
type models struct{ lc *lifecycle.Lifecycle }

// Shadow implements review.Models.
func (m models) Shadow(string) (review.ShadowStatus, error) {
	s := m.lc.State()
	out := review.ShadowStatus{Active: store.ModelRef{Name: s.Active.Name, Version: s.Active.Version}}
	if s.Previous.Version != "" {
		out.Previous = &store.ModelRef{Name: s.Previous.Name, Version: s.Previous.Version}
	}
	if s.State != wire.ModelShadow || s.Shadow == nil {
		return out, fmt.Errorf("%w: no model in shadow (state %s)", review.ErrNotAvailable, s.State)
	}
	out.Shadow = store.ModelRef{Name: s.Model.Name, Version: s.Model.Version}
	out.Parts, out.Agreement = uint64(s.Shadow.Frames), s.Shadow.Agreement
	return out, nil
}

// Promote implements review.Models.
func (m models) Promote(ctx context.Context, _, _ string) error { return m.lc.Promote(ctx) }

// Rollback implements review.Models.
func (m models) Rollback(ctx context.Context, _, _ string) error { return m.lc.Rollback(ctx) }
