package main

import (
	"context"
	"path/filepath"

	"github.com/linesight/linesight/agent/config"
	"github.com/linesight/linesight/internal/cli"
)

func runCmd(ctx context.Context, stdio Stdio, args []string) error {
	fs := newFlags("run", stdio)
	path := fs.String("c", "", "configuration file (see configs/)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return cli.Usagef("missing -c FILE: the configuration to run (start from configs/line-usb.yaml)")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	return runAgent(ctx, stdio, cfg, false)
}

func demoCmd(ctx context.Context, stdio Stdio, args []string) error {
	fs := newFlags("demo", stdio)
	path := fs.String("c", "", "configuration file (default: the embedded demo configuration)")
	listen := fs.String("listen", "", "override review.listen (host:port; port 0 picks a free one)")
	broker := fs.String("broker-listen", "", "override mqtt.embedded.listen (host:port; port 0 picks a free one)")
	data := fs.String("data", "", "override data_dir")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := config.Default()
	if *path != "" {
		var err error
		if cfg, err = config.Load(*path); err != nil {
			return err
		}
	}
	if *listen != "" {
		cfg.Review.Listen = *listen
	}
	if *broker != "" {
		cfg.MQTT.Embedded.Listen = *broker
	}
	if *data != "" {
		cfg.DataDir = *data
	}
	if *path == "" && cfg.Outputs.JSONL == "" {
		// The demo keeps a readable log of its verdicts beside its store.
		cfg.Outputs.JSONL = filepath.Join(cfg.DataDir, "decisions.jsonl")
	}
	if err := cfg.Validate(); err != nil {
		return cli.Usagef("demo configuration is invalid:\n%w", err)
	}
	return runAgent(ctx, stdio, cfg, true)
}
