package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/linesight/linesight/agent/builtin"
	"github.com/linesight/linesight/agent/config"
	"github.com/linesight/linesight/agent/lifecycle"
	"github.com/linesight/linesight/agent/monitor"
	"github.com/linesight/linesight/agent/output"
	"github.com/linesight/linesight/agent/pipeline"
	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/agent/review"
	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/camera"
	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/internal/cli"
	"github.com/linesight/linesight/sync/broker"
	"github.com/linesight/linesight/sync/rollout"
	"github.com/linesight/linesight/sync/uplink"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// loadAgentModel loads the configured model package, or the built-in model
// embedded in the binary when path is empty. Errors are usage errors.
func loadAgentModel(rt *onnx.Runtime, path string) (*inference.Package, error) {
	if path == "" {
		pkg, err := builtin.Package(builtin.FP32)
		if err != nil {
			return nil, fmt.Errorf("built-in model: %w", err)
		}
		return pkg, nil
	}
	pkg, err := inference.Load(rt, path, inference.BareOptions{})
	if err != nil {
		return nil, modelInputError(err)
	}
	return pkg, nil
}

// shutdownGrace bounds how long stopping may take: requests in flight,
// frames still queued, verdicts not yet delivered.
const shutdownGrace = 10 * time.Second

// closer is one opened part, closed in reverse order of opening.
type closer struct {
	name  string
	close func(ctx context.Context) error
}

// runAgent opens the agent's parts downstream first (runtime and model,
// store, broker, outputs, cameras, pipeline, HTTP server), serves until ctx
// is cancelled (SIGINT or SIGTERM), then closes them upstream first, so
// every part already captured is decided, committed and sent on.
func runAgent(ctx context.Context, stdio Stdio, cfg *config.Config, demo bool) error {
	return runAgentWith(ctx, stdio, cfg, demo, agentHooks{})
}

// agentHooks let a caller in this process (the closed loop, loop.go) wrap
// the cameras as the pipeline sees them and learn where the agent listens
// once it is up. The zero value changes nothing.
type agentHooks struct {
	// source, when set, wraps each camera before the pipeline opens.
	source func(s pipeline.Source) pipeline.Source
	// ready, when set, is called once every part is open and serving.
	ready func(agentInfo)
}

// agentInfo is where a running agent can be reached.
type agentInfo struct {
	UI     string // the review server's base URL, ending in "/"
	Broker string // the MQTT broker's URL ("" without one)
}

// runAgentWith is runAgent with hooks.
func runAgentWith(ctx context.Context, stdio Stdio, cfg *config.Config, demo bool, hooks agentHooks) (err error) {
	log, err := cli.NewLogger(stdio.Err, cfg.Log)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	log = log.With("device", cfg.Device.ID)

	var closers []closer
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			if cerr := closers[i].close(sctx); cerr != nil {
				log.Error("stop "+closers[i].name, "err", cerr)
				errs = append(errs, fmt.Errorf("stop %s: %w", closers[i].name, cerr))
			}
		}
		closers = nil
		return errors.Join(errs...)
	}
	defer func() {
		if cerr := shutdown(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	add := func(name string, f func(ctx context.Context) error) { closers = append(closers, closer{name, f}) }

	// The model cannot run without ONNX Runtime: fail before anything listens.
	rt, err := onnx.OpenRuntime(onnx.ProcessSearch(cfg.Model.Library))
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	add("onnx runtime", func(context.Context) error { return rt.Close() })
	log.Info("onnx runtime loaded", "version", rt.Version(), "path", rt.Path())

	// Load the model before anything listens: a bad model is a config error.
	pkg, err := loadAgentModel(rt, cfg.Model.Path)
	if err != nil {
		return err
	}
	basePolicy, err := policyFromConfig(cfg.Policy)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	levels, err := cameraLevels(cfg)
	if err != nil {
		return &cli.UsageError{Err: err}
	}

	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return &cli.UsageError{Err: fmt.Errorf("data_dir %s: %w (it must be a writable directory)", cfg.DataDir, err)}
	}
	dbPath := cfg.Store.Path
	if dbPath == "" {
		dbPath = filepath.Join(cfg.DataDir, "linesight.db")
	}
	st, err := store.Open(dbPath, store.Options{MaxAge: cfg.Store.MaxAge, MaxBytes: int64(cfg.Store.MaxBytes),
		DecisionsToOutbox: cfg.Sync.Uplink && cfg.Sync.Decisions, Logger: log})
	if err != nil {
		return &cli.UsageError{Err: fmt.Errorf("open store: %w", err)}
	}
	add("store", func(context.Context) error { return st.Close() })
	log.Info("store open", "path", dbPath)

	// With trusted fleet keys, the model lifecycle picks the verified
	// version to serve (the configured model is its fallback) and takes
	// signed rollouts; the pipeline is bound to it once open.
	modelOpts, release, err := reserveModelCPUs(cfg.Model.Options, log)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	add("cpu reservation", func(context.Context) error { return release() })
	var (
		lc       *lifecycle.Lifecycle
		plRef    atomic.Pointer[pipeline.Pipeline]
		linkRef  = &modelLink{}
		engOpts  = inference.Config{Options: modelOpts, Logger: log}
		openEng  = func(p *inference.Package) (*inference.Engine, error) { return inference.Open(rt, p, engOpts) }
		servePkg = pkg
	)
	// A candidate in shadow runs on the line's CPUs, never on the model's.
	shadowOpts := engOpts
	shadowOpts.CPUs = ""
	openShadow := func(p *inference.Package) (*inference.Engine, error) { return inference.Open(rt, p, shadowOpts) }
	if len(cfg.Model.TrustedKeys) > 0 {
		keys, err := rollout.LoadKeyring(cfg.Model.TrustedKeys...)
		if err != nil {
			return &cli.UsageError{Err: fmt.Errorf("model.trusted_keys: %w", err)}
		}
		lc, err = lifecycle.Open(lifecycle.Options{
			Dir: filepath.Join(cfg.DataDir, "models"), TrustedKeys: keys, Builtin: pkg,
			Engines: lifecycle.EnginesFunc(openShadow),
			Activator: lifecycle.ActivatorFunc(func(p *inference.Package) error {
				pl := plRef.Load()
				if pl == nil {
					return errors.New("the line is not running yet")
				}
				return pl.Swap(p)
			}),
			Frames: storeFrames{st}, Requester: linkRef, Reporter: linkRef,
			Cameras: cameraInputs(cfg), Device: cfg.Device.ID, Logger: log,
		})
		if err != nil {
			return fmt.Errorf("model lifecycle: %w", err)
		}
		add("model lifecycle", func(context.Context) error { return lc.Close() })
		servePkg = lc.Active()
	}
	eng, err := openEng(servePkg)
	if err != nil {
		return &cli.UsageError{Err: fmt.Errorf("open model %s: %w", servePkg.ModelPath, err)}
	}
	add("model", func(context.Context) error { return eng.Close() })
	man := eng.Manifest()

	var brokerAddr string
	if cfg.MQTT.Broker == "embedded" {
		b, err := broker.Open(broker.Options{Listen: cfg.MQTT.Embedded.Listen, Logger: log})
		if err != nil {
			return &cli.UsageError{Err: fmt.Errorf("%w (set mqtt.embedded.listen to a free host:port)", err)}
		}
		add("broker", func(context.Context) error { return b.Close() })
		brokerAddr = b.URL()
		log.Info("embedded mqtt broker", "addr", brokerAddr)
	} else {
		brokerAddr = cfg.MQTT.Broker
	}
	tlsConf, err := mqttTLS(cfg.MQTT.TLS)
	if err != nil {
		return &cli.UsageError{Err: err}
	}

	// Outputs: the dispatcher never blocks the line.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var outs []output.Output
	if cfg.Outputs.JSONL != "" {
		j, err := output.OpenJSONL(cfg.Outputs.JSONL, 0)
		if err != nil {
			return &cli.UsageError{Err: err}
		}
		outs = append(outs, j)
	}
	if cfg.Outputs.Webhook.URL != "" {
		outs = append(outs, output.NewWebhook(cfg.Outputs.Webhook.URL, cfg.Outputs.Webhook.Token, cfg.Outputs.Webhook.Timeout))
	}
	if cfg.Outputs.MQTT && brokerAddr != "" {
		conn, err := output.Dial(output.ConnOptions{Broker: brokerAddr, ClientID: clientID(cfg) + "-verdicts",
			Username: cfg.MQTT.Username, Password: cfg.MQTT.Password, TLS: tlsConf, Logger: log})
		if err != nil {
			return err
		}
		add("mqtt verdict connection", func(context.Context) error { return conn.Close() })
		outs = append(outs, output.NewMQTT(conn, cfg.Device.Site, cfg.Device.ID))
	}
	outCount := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linesight_output_messages_total",
		Help: "Verdict messages by output and result (sent, failed, dropped)."}, []string{"output", "result"})
	reg.MustRegister(outCount)
	disp := output.NewDispatcher(outs, 0, log, output.Hooks{
		Sent:    func(o string) { outCount.WithLabelValues(o, "sent").Inc() },
		Failed:  func(o string, _ error) { outCount.WithLabelValues(o, "failed").Inc() },
		Dropped: func(o string) { outCount.WithLabelValues(o, "dropped").Inc() },
	})
	add("outputs", disp.Close)

	// Cameras; the pipeline owns them once it is open.
	camEvents := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linesight_camera_events_total",
		Help: "Camera events (down, retry, up, stalled, decode, dropped, late, end, triggered)."}, []string{"camera", "kind"})
	reg.MustRegister(camEvents)
	cams := make([]pipeline.CameraOptions, 0, len(cfg.Cameras))
	byID := map[string]*camera.Camera{}
	for i, cc := range cfg.Cameras {
		c, err := camera.Open(cc.Spec, camera.Options{Logger: log, OnEvent: func(e camera.Event) {
			camEvents.WithLabelValues(e.CameraID, string(e.Kind)).Inc()
		}})
		if err != nil {
			for _, o := range cams {
				o.Source.Close()
			}
			return &cli.UsageError{Err: fmt.Errorf("camera %s: %w", cc.ID, err)}
		}
		byID[cc.ID] = c
		var src pipeline.Source = c
		if hooks.source != nil {
			src = hooks.source(c)
		}
		cams = append(cams, pipeline.CameraOptions{Source: src, Level: levels[i], Workers: cc.Workers})
	}
	lookup := func(id string) (camera.Triggerer, bool) { c, ok := byID[id]; return c, ok }

	pl, err := pipeline.Open(pipeline.Options{
		Device: cfg.Device.ID, Site: cfg.Device.Site, Cameras: cams, Engine: eng, Store: st, Outputs: disp,
		Policy: basePolicy, MaxDeferRate: cfg.Policy.MaxDeferRate, KeepImages: cfg.Store.KeepImage, JPEGQuality: cfg.Store.JPEGQual,
		Timeout: cfg.Model.Timeout, DriftWindow: cfg.Monitor.Window,
		Drift:    monitor.Thresholds{Raise: cfg.Monitor.PSIRaise, Clear: cfg.Monitor.PSIClear, MinSamples: cfg.Monitor.MinSamples},
		Registry: reg, Logger: log, Models: lifecycleModels(lc),
	})
	if err != nil {
		for _, o := range cams {
			o.Source.Close()
		}
		return &cli.UsageError{Err: err}
	}
	plRef.Store(pl)
	add("pipeline", pl.Close)
	ln := &line{cfg: cfg, pl: pl, cams: byID, st: st, lc: lc}

	// The fleet link: the outbox drains to the collector; commands come back.
	if cfg.Sync.Uplink && brokerAddr != "" {
		up, err := uplink.New(uplink.Options{Broker: brokerAddr, ClientID: clientID(cfg), Username: cfg.MQTT.Username, Password: cfg.MQTT.Password,
			TLS: uplink.TLSFiles{CA: cfg.MQTT.TLS.CA, Cert: cfg.MQTT.TLS.Cert, Key: cfg.MQTT.TLS.Key}, Site: cfg.Device.Site, Device: cfg.Device.ID,
			Outbox: st, Telemetry: ln, TelemetryEvery: cfg.Sync.TelemetryEvery, Status: ln, Commands: ln, Rollback: rollbacker(lc), Promote: promoter(lc),
			DrainRate: cfg.Sync.DrainRate, Logger: log})
		if err != nil {
			return &cli.UsageError{Err: fmt.Errorf("uplink: %w", err)}
		}
		if err := up.Open(ctx); err != nil {
			return fmt.Errorf("uplink: %w", err)
		}
		add("uplink", func(context.Context) error { return up.Close() })
	}
	if lc != nil && brokerAddr != "" {
		link, closeLink, err := attachModelLink(cfg, brokerAddr, tlsConf, lc, log)
		if err != nil {
			return err
		}
		linkRef.set(link)
		add("model link", func(context.Context) error { return closeLink() })
	}

	if hasExternalTrigger(cfg) && brokerAddr != "" {
		trg, err := camera.OpenMQTTTrigger(camera.MQTTTriggerOptions{Broker: brokerAddr, ClientID: clientID(cfg) + "-trigger",
			Username: cfg.MQTT.Username, Password: cfg.MQTT.Password, Site: cfg.Device.Site, Device: cfg.Device.ID,
			Lookup: lookup, Logger: log})
		if err != nil {
			return fmt.Errorf("mqtt trigger: %w", err)
		}
		add("mqtt trigger", func(context.Context) error { return trg.Close() })
	}

	status := func() review.Status {
		s := review.Status{
			Device: cfg.Device.ID, Site: cfg.Device.Site, Version: buildVersion(),
			Model: man.Name + " " + man.Version + " (" + modelName(cfg.Model.Path) + ")", Provider: eng.Provider(), ModelCPUs: modelOpts.CPUs,
			OpenAccess: cfg.Review.Auth == "open", Broker: brokerAddr,
		}
		for i, c := range pl.Cameras() {
			s.Cameras = append(s.Cameras, review.CameraStatus{ID: c.ID, Source: cfg.Cameras[i].Source.Kind, Automation: c.Level.String()})
		}
		return s
	}
	users := make([]review.User, len(cfg.Review.Users))
	for i, u := range cfg.Review.Users {
		users[i] = review.User{Name: u.Name, Role: u.Role, PasswordHash: u.PasswordHash}
	}
	ropts := review.Options{Listen: cfg.Review.Listen, Logger: log, Registry: reg, Status: status, Store: st, Line: ln,
		Classes: man.Labels, Auth: review.Auth{Mode: cfg.Review.Auth, Header: cfg.Review.UserHeader, Users: users, SessionKey: cfg.Review.SessionKey}}
	if lc != nil {
		ropts.Models = models{lc}
	}
	srv, err := review.Open(ropts)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	add("http server", srv.Close)
	srv.SetReady(true)

	what := "LineSight"
	if demo {
		what = "LineSight demo"
	}
	where := eng.Provider()
	if modelOpts.CPUs != "" {
		where += " (CPU " + modelOpts.CPUs + " reserved for the model)"
	}
	fmt.Fprintf(stdio.Out, "%s %s is running: %d camera(s), model %s %s on %s.\n  operator UI: %s\n  metrics:     %smetrics\n",
		what, buildVersion(), len(cams), man.Name, man.Version, where, srv.URL(), srv.URL())
	if brokerAddr != "" {
		fmt.Fprintf(stdio.Out, "  MQTT broker: %s (verdicts on %s)\n", brokerAddr, output.DecisionTopic(cfg.Device.Site, cfg.Device.ID, "<camera>"))
	}
	if cfg.Outputs.JSONL != "" {
		fmt.Fprintf(stdio.Out, "  decisions:   %s\n", cfg.Outputs.JSONL)
	}
	fmt.Fprintf(stdio.Out, "  store:       %s\n", dbPath)
	fmt.Fprintln(stdio.Out, "Press Ctrl-C to stop.")
	if hooks.ready != nil {
		hooks.ready(agentInfo{UI: srv.URL(), Broker: brokerAddr})
	}

	select {
	case <-ctx.Done():
	case <-pl.Done():
		log.Info("every camera has ended (finite sources)")
		fmt.Fprintln(stdio.Out, "every camera has ended; press Ctrl-C to stop the UI")
		<-ctx.Done()
	}
	log.Info("stopping")
	srv.SetReady(false)
	if err := shutdown(); err != nil {
		return err
	}
	summary(stdio, pl)
	fmt.Fprintln(stdio.Out, "stopped cleanly")
	return nil
}

// summary prints what the run decided.
func summary(stdio Stdio, pl *pipeline.Pipeline) {
	for _, c := range pl.Cameras() {
		fmt.Fprintf(stdio.Out, "%s: %d parts: %d pass, %d reject, %d deferred\n", c.ID, c.Parts,
			c.Verdicts[policy.Pass], c.Verdicts[policy.Reject], c.Verdicts[policy.Defer])
	}
}

// policyFromConfig is the base policy every camera shares.
func policyFromConfig(p config.Policy) (policy.Config, error) {
	c := policy.Config{FailSafe: policy.Verdict(p.FailSafe), PassThreshold: p.PassThreshold, RejectThreshold: p.RejectThreshold,
		AlwaysReview: p.AlwaysReview, AuditSample: p.AuditSample, DriftDowngrade: p.DriftDowngrade}
	if c.FailSafe != policy.Reject && c.FailSafe != policy.Defer {
		return c, fmt.Errorf("policy.fail_safe %q: use reject or defer", p.FailSafe)
	}
	return c, nil
}

func cameraLevels(cfg *config.Config) ([]policy.Level, error) {
	out := make([]policy.Level, len(cfg.Cameras))
	for i, c := range cfg.Cameras {
		l, err := policy.ParseLevel(c.Automation)
		if err != nil {
			return nil, fmt.Errorf("cameras[%d].automation: %w", i, err)
		}
		out[i] = l
	}
	return out, nil
}

func hasExternalTrigger(cfg *config.Config) bool {
	for _, c := range cfg.Cameras {
		if c.Trigger.Mode == camera.TriggerExternal {
			return true
		}
	}
	return false
}

func clientID(cfg *config.Config) string {
	if cfg.MQTT.ClientID != "" {
		return cfg.MQTT.ClientID
	}
	return "linesight-" + cfg.Device.ID
}

// mqttTLS builds the client TLS configuration from mqtt.tls (nil when unset).
func mqttTLS(t config.TLS) (*tls.Config, error) {
	if t.CA == "" && t.Cert == "" && t.Key == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt.tls.ca %s: no PEM certificate in it", t.CA)
		}
		c.RootCAs = pool
	}
	if t.Cert != "" || t.Key != "" {
		if t.Cert == "" || t.Key == "" {
			return nil, errors.New("mqtt.tls: cert and key go together (client certificate and its private key)")
		}
		kp, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls cert/key: %w", err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}
