// Command linesight-fleet is the cloud side of LineSight: the MQTT
// endpoint devices report to, the collector that turns inspectors' labels
// into a training set, and the publisher of signed models. It is pure Go
// (CGO_ENABLED=0).
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/linesight/linesight/internal/cli"
	"github.com/linesight/linesight/sync/broker"
	"github.com/linesight/linesight/sync/fleet"
	"github.com/linesight/linesight/sync/rollout"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], cli.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}

// Main runs the linesight-fleet command line; tests call it directly.
func Main(ctx context.Context, args []string, stdio cli.Stdio) int {
	cmds := []cli.Command{
		{Name: "serve", Summary: "run the fleet service: linesight-fleet serve -c FILE", Run: serveCmd},
		{Name: "config", Summary: "check a configuration file: linesight-fleet config check FILE", Run: configCmd},
		{Name: "keys", Summary: "make a model-signing key pair: linesight-fleet keys gen --out DIR", Run: keysCmd},
		{Name: "push", Summary: "sign and offer a model: linesight-fleet push --model DIR --to DEVICE|group:NAME --stage shadow|canary|all", Run: pushCmd},
		{Name: "version", Summary: "print the version", Run: versionCmd},
	}
	return cli.Dispatch(ctx, "linesight-fleet", "LineSight fleet: devices, labelled data and model rollouts.", cmds, args, stdio)
}

func versionCmd(ctx context.Context, stdio cli.Stdio, args []string) error {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	fmt.Fprintf(stdio.Out, "linesight-fleet %s\nGo %s %s/%s\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func configCmd(ctx context.Context, stdio cli.Stdio, args []string) error {
	if len(args) != 2 || args[0] != "check" {
		return cli.Usagef("usage: linesight-fleet config check FILE")
	}
	cfg, err := fleet.Load(args[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "%s: ok (broker %s, dataset %s)\n", args[1], cfg.MQTT.Broker, cfg.DatasetDir)
	return nil
}

func serveCmd(ctx context.Context, stdio cli.Stdio, args []string) error {
	fs := cli.NewFlags("linesight-fleet serve", stdio)
	path := fs.String("c", "", "configuration file (default: built-in single-node defaults)")
	listen := fs.String("listen", "", "override listen (host:port; port 0 picks a free one)")
	brokerListen := fs.String("broker-listen", "", "override mqtt.embedded.listen")
	dataset := fs.String("dataset", "", "override dataset_dir")
	releases := fs.String("releases", "", "releases stored by push, whose chunk requests serve answers (default: releases beside dataset_dir)")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	cfg := fleet.Default()
	if *path != "" {
		var err error
		if cfg, err = fleet.Load(*path); err != nil {
			return err
		}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *dataset != "" {
		cfg.DatasetDir = *dataset
	}
	if *brokerListen != "" {
		cfg.MQTT.Embedded.Listen = *brokerListen
	}
	if err := cfg.Validate(); err != nil {
		return &cli.UsageError{Err: err}
	}
	log, err := cli.NewLogger(stdio.Err, cfg.Log)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	brokerURL := cfg.MQTT.Broker
	if cfg.MQTT.Broker == "embedded" {
		b, err := broker.Open(broker.Options{Listen: cfg.MQTT.Embedded.Listen, Logger: log})
		if err != nil {
			return err
		}
		defer b.Close()
		brokerURL = b.URL()
	}
	col, err := fleet.OpenCollector(ctx, fleet.CollectorOptions{
		Broker: brokerURL, ClientID: cfg.MQTT.ClientID, Username: cfg.MQTT.Username, Password: cfg.MQTT.Password,
		CA: cfg.MQTT.TLS.CA, Cert: cfg.MQTT.TLS.Cert, Key: cfg.MQTT.TLS.Key, SharedGroup: cfg.SharedGroup,
		DatasetDir: cfg.DatasetDir, RetrainAfter: cfg.Retrain.AfterLabels, RetrainCommand: cfg.Retrain.Command, Logger: log,
	})
	if err != nil {
		return err
	}
	defer col.Close()
	if *releases == "" {
		*releases = filepath.Join(filepath.Dir(cfg.DatasetDir), "releases")
	}
	rs, err := rollout.OpenReleases(*releases)
	if err != nil {
		return err
	}
	pub, err := rollout.NewPublisher(col.MQTT(), rollout.PublisherOptions{Lookup: rs.Get, Logger: log})
	if err != nil {
		return fmt.Errorf("rollout publisher: %w", err)
	}
	defer pub.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (set listen to a free host:port)", cfg.Listen, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("/", col.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(stdio.Out, "linesight-fleet is running.\n  status:      http://%s/\n  MQTT broker: %s\n  dataset:     %s\n  releases:    %s (chunks served for every pushed release)\nPress Ctrl-C to stop.\n", ln.Addr(), brokerURL, cfg.DatasetDir, rs.Dir())
	select {
	case <-ctx.Done():
	case err := <-done:
		return fmt.Errorf("status server: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Fprintln(stdio.Out, "stopped cleanly")
	return nil
}
