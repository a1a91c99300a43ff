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
	lo := defaultLoopOptions()
	loopOn := fs.Bool("loop", false, "run the closed loop instead: a weak first model, an inspector labelling its deferred parts, retraining, a signed rollout in shadow, promotion, and the automation rate before and after (README: The closed loop)")
	fs.IntVar(&lo.Labels, "labels", lo.Labels, "with -loop: labels collected before retraining")
	fs.IntVar(&lo.Base, "base", lo.Base, "with -loop: synthetic images the first model is trained on")
	fs.Float64Var(&lo.FPS, "fps", lo.FPS, "with -loop: parts per second on the line")
	fs.IntVar(&lo.ShadowFrames, "shadow-frames", lo.ShadowFrames, "with -loop: live frames in shadow before the promotion decision")
	fs.IntVar(&lo.Test, "test", lo.Test, "with -loop: fresh synthetic parts the figures are measured on")
	fs.StringVar(&lo.Python, "python", lo.Python, "with -loop: the Python with torch that runs scripts/train")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *loopOn {
		if *path != "" {
			return cli.Usagef("-loop builds its own line; it takes no -c FILE")
		}
		if *listen != "" {
			lo.Listen = *listen
		}
		if *broker != "" {
			lo.BrokerListen = *broker
		}
		return demoLoop(ctx, stdio, *data, lo)
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
