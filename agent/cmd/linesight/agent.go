package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/linesight/linesight/agent/builtin"
	"github.com/linesight/linesight/agent/config"
	"github.com/linesight/linesight/agent/review"
	"github.com/linesight/linesight/inference"
	"github.com/linesight/linesight/inference/onnx"
	"github.com/linesight/linesight/internal/cli"
	"github.com/linesight/linesight/sync/broker"
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

// shutdownGrace bounds how long requests in flight get when stopping.
const shutdownGrace = 10 * time.Second

// runAgent opens the agent's parts downstream first, serves until ctx is
// cancelled (SIGINT or SIGTERM), then closes them upstream first.
//
// What runs today: ONNX Runtime and the model (loaded into an Engine), the
// embedded broker, and the HTTP server (status page, /healthz, /readyz,
// /metrics). The inspection pipeline that feeds the engine from the cameras
// through the policy into the store is issue 6.
func runAgent(ctx context.Context, stdio Stdio, cfg *config.Config, demo bool) error {
	log, err := cli.NewLogger(stdio.Err, cfg.Log)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	log = log.With("device", cfg.Device.ID)

	// The model cannot run without ONNX Runtime: fail before anything listens.
	rt, err := onnx.OpenRuntime(onnx.ProcessSearch(cfg.Model.Library))
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	defer rt.Close()
	log.Info("onnx runtime loaded", "version", rt.Version(), "path", rt.Path())

	// Load the model before anything listens: a bad model is a config error.
	pkg, err := loadAgentModel(rt, cfg.Model.Path)
	if err != nil {
		return err
	}
	eng, err := inference.Open(rt, pkg, inference.Config{Options: cfg.Model.Options, Logger: log})
	if err != nil {
		return &cli.UsageError{Err: fmt.Errorf("open model %s: %w", pkg.ModelPath, err)}
	}
	defer eng.Close()
	man := eng.Manifest()

	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data_dir: %w", err)
	}

	var brokerAddr string
	if cfg.MQTT.Broker == "embedded" {
		b, err := broker.Open(broker.Options{Listen: cfg.MQTT.Embedded.Listen, Logger: log})
		if err != nil {
			return fmt.Errorf("%w (set mqtt.embedded.listen to a free host:port)", err)
		}
		defer b.Close()
		brokerAddr = b.URL()
		log.Info("embedded mqtt broker", "addr", brokerAddr)
	} else {
		brokerAddr = cfg.MQTT.Broker
	}

	cams := make([]review.CameraStatus, len(cfg.Cameras))
	for i, c := range cfg.Cameras {
		cams[i] = review.CameraStatus{ID: c.ID, Source: c.Source.Kind, Automation: c.Automation}
	}
	status := review.Status{
		Device: cfg.Device.ID, Site: cfg.Device.Site, Version: buildVersion(),
		Model: man.Name + " " + man.Version + " (" + modelName(cfg.Model.Path) + ")", Provider: eng.Provider(), Cameras: cams,
		OpenAccess: cfg.Review.Auth == "open", Broker: brokerAddr,
	}
	srv, err := review.Open(review.Options{Listen: cfg.Review.Listen, Logger: log, Status: func() review.Status { return status }})
	if err != nil {
		return err
	}
	srv.SetReady(true)

	what := "LineSight"
	if demo {
		what = "LineSight demo"
	}
	fmt.Fprintf(stdio.Out, "%s %s is running.\n  operator UI: %s\n  metrics:     %smetrics\n", what, buildVersion(), srv.URL(), srv.URL())
	if brokerAddr != "" {
		fmt.Fprintf(stdio.Out, "  MQTT broker: %s\n", brokerAddr)
	}
	fmt.Fprintln(stdio.Out, "Press Ctrl-C to stop.")

	<-ctx.Done()
	log.Info("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Close(sctx); err != nil {
		return err
	}
	fmt.Fprintln(stdio.Out, "stopped cleanly")
	return nil
}
