package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the pipeline's Prometheus series, registered on the agent's
// registry (one per Pipeline, so tests can run several).
type metrics struct {
	frames        *prometheus.CounterVec   // camera
	verdicts      *prometheus.CounterVec   // camera, verdict, reason
	stage         *prometheus.HistogramVec // camera, stage
	latency       *prometheus.HistogramVec // camera: capture to decision
	queue         *prometheus.GaugeVec     // camera, queue (capture, record)
	deferRate     *prometheus.GaugeVec     // camera
	deferAlrm     *prometheus.GaugeVec     // camera
	drift         *prometheus.GaugeVec     // camera, statistic
	driftAlrm     *prometheus.GaugeVec     // camera
	level         *prometheus.GaugeVec     // camera, level (1 for the current one)
	model         *prometheus.GaugeVec     // name, version, provider
	failures      *prometheus.CounterVec   // camera, kind
	storeErrs     *prometheus.CounterVec   // camera
	shadowSkipped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	stageBuckets := []float64{.0001, .00025, .0005, .001, .002, .004, .008, .016, .032, .064, .128, .256, .512, 1}
	m := &metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linesight_frames_total",
			Help: "Frames taken from each camera into the pipeline."}, []string{"camera"}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linesight_verdicts_total",
			Help: "Decisions by verdict and reason."}, []string{"camera", "verdict", "reason"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "linesight_stage_seconds",
			Help: "Time spent in each pipeline stage (queue, measure, preprocess, inference, decode, policy, record).", Buckets: stageBuckets},
			[]string{"camera", "stage"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "linesight_decision_latency_seconds",
			Help: "Capture to decision.", Buckets: stageBuckets}, []string{"camera"}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linesight_queue_depth",
			Help: "Items waiting in each queue (capture: frames before inference; record: decisions before the store)."}, []string{"camera", "queue"}),
		deferRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linesight_defer_rate",
			Help: "Share of deferred parts over the recent window."}, []string{"camera"}),
		deferAlrm: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linesight_defer_alarm",
			Help: "1 while the defer rate is over policy.max_defer_rate."}, []string{"camera"}),
		drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linesight_drift_psi",
			Help: "Population stability index of each statistic against the model's training reference."}, []string{"camera", "statistic"}),
		driftAlrm: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linesight_drift_alarm",
			Help: "1 while the camera's drift alarm is raised."}, []string{"camera"}),
		level: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linesight_automation_level",
			Help: "1 for the camera's current automation level."}, []string{"camera", "level"}),
		model: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linesight_model_info",
			Help: "1 for the model serving, with its execution provider."}, []string{"name", "version", "provider"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linesight_failures_total",
			Help: "Parts given the fail-safe verdict, by kind (inference-error, timeout, deadline-missed)."}, []string{"camera", "kind"}),
		storeErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linesight_store_errors_total",
			Help: "Inspections the store could not commit."}, []string{"camera"}),
		shadowSkipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "linesight_shadow_skipped_total",
			Help: "Frames the shadow model skipped because it was still busy (the line never waits for it)."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.frames, m.verdicts, m.stage, m.latency, m.queue, m.deferRate, m.deferAlrm,
		m.drift, m.driftAlrm, m.level, m.model, m.failures, m.storeErrs, m.shadowSkipped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
