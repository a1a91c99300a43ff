package main

import (
	"context"
	"fmt"

	"github.com/linesight/linesight/agent/config"
	"github.com/linesight/linesight/internal/cli"
)

func configCmd(ctx context.Context, stdio Stdio, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return cli.Usagef("usage: linesight config check FILE")
	}
	fs := newFlags("config check", stdio)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef("usage: linesight config check FILE (one file)")
	}
	path := fs.Arg(0)
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "%s: ok (device %s/%s, %d camera(s), model %s, provider %s)\n",
		path, cfg.Device.Site, cfg.Device.ID, len(cfg.Cameras), modelName(cfg.Model.Path), cfg.Model.Provider)
	return nil
}

func modelName(path string) string {
	if path == "" {
		return "built-in"
	}
	return path
}
