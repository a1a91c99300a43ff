package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/linesight/linesight/agent/config"
	"github.com/linesight/linesight/agent/lifecycle"
	"github.com/linesight/linesight/agent/pipeline"
	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/sync/rollout"
	"github.com/linesight/linesight/sync/uplink"
	"github.com/linesight/linesight/sync/wire"
)

// modelLink forwards the lifecycle's chunk requests and state reports to
// the MQTT model link once it is attached (the link needs the lifecycle as
// its handler, so one of them must come first).
type modelLink struct {
	mu sync.Mutex
	l  *rollout.Link
}

func (m *modelLink) set(l *rollout.Link) {
	m.mu.Lock()
	m.l = l
	m.mu.Unlock()
}

func (m *modelLink) get() *rollout.Link {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.l
}

// RequestChunks implements lifecycle.Requester.
func (m *modelLink) RequestChunks(offer string, chunks []int) error {
	l := m.get()
	if l == nil {
		return errors.New("model link not connected yet")
	}
	return l.RequestChunks(offer, chunks)
}

// ReportState implements lifecycle.Reporter.
func (m *modelLink) ReportState(s wire.ModelState) error {
	l := m.get()
	if l == nil {
		return nil // reported again on the next change
	}
	return l.ReportState(s)
}

// attachModelLink opens the device's model connection: its own MQTT client,
// so that 128 KiB model chunks never delay verdicts or the outbox drain.
func attachModelLink(cfg *config.Config, broker string, tlsConf *tls.Config, lc *lifecycle.Lifecycle, log *slog.Logger) (*rollout.Link, func() error, error) {
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID(cfg) + "-models").
		SetUsername(cfg.MQTT.Username).SetPassword(cfg.MQTT.Password).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second).SetMaxReconnectInterval(30 * time.Second).
		SetKeepAlive(30 * time.Second).SetConnectTimeout(10 * time.Second)
	if tlsConf != nil {
		opts.SetTLSConfig(tlsConf)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.Disconnect(0)
		return nil, nil, fmt.Errorf("model link: connect %s: %v (check mqtt.broker; model rollouts need it)", broker, tok.Error())
	}
	link, err := rollout.AttachDevice(c, rollout.LinkOptions{Site: cfg.Device.Site, Device: cfg.Device.ID, Groups: cfg.Device.Group, Logger: log}, lc)
	if err != nil {
		c.Disconnect(0)
		return nil, nil, fmt.Errorf("model link: %w", err)
	}
	return link, func() error {
		err := link.Close()
		c.Disconnect(250)
		return err
	}, nil
}

// lifecycleModels is the pipeline's view of the lifecycle (nil when off).
func lifecycleModels(lc *lifecycle.Lifecycle) pipeline.Models {
	if lc == nil {
		return nil
	}
	return lc
}

// rollbackFunc adapts the lifecycle to the uplink's rollback command.
type rollbackFunc func(ctx context.Context, by string) error

func (f rollbackFunc) Rollback(ctx context.Context, by string) error { return f(ctx, by) }

// rollbacker is nil (an untyped nil interface) without a lifecycle.
func rollbacker(lc *lifecycle.Lifecycle) uplink.Rollbacker {
	if lc == nil {
		return nil
	}
	return rollbackFunc(func(ctx context.Context, _ string) error { return lc.Rollback(ctx) })
}

// promoteFunc adapts the lifecycle to the uplink's promote command.
type promoteFunc func(ctx context.Context, by string) error

func (f promoteFunc) Promote(ctx context.Context, by string) error { return f(ctx, by) }

// promoter is nil (an untyped nil interface) without a lifecycle.
func promoter(lc *lifecycle.Lifecycle) uplink.Promoter {
	if lc == nil {
		return nil
	}
	return promoteFunc(func(ctx context.Context, _ string) error { return lc.Promote(ctx) })
}

// storeFrames gives the lifecycle's health check the newest stored images.
type storeFrames struct{ st *store.Store }

// Recent implements lifecycle.Frames.
func (f storeFrames) Recent(n int) ([][]byte, error) {
	ins, err := f.st.Recent("", 50*n)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, in := range ins {
		if in.Image == "" {
			continue
		}
		b, err := f.st.Image(in.ID)
		if err != nil {
			continue
		}
		if out = append(out, b); len(out) == n {
			break
		}
	}
	return out, nil
}

// cameraInputs are the frame sizes the configuration promises, for the
// lifecycle's fit check (0: unknown, not checked).
func cameraInputs(cfg *config.Config) []lifecycle.CameraInput {
	out := make([]lifecycle.CameraInput, 0, len(cfg.Cameras))
	for _, c := range cfg.Cameras {
		ci := lifecycle.CameraInput{ID: c.ID, Width: c.Source.Width, Height: c.Source.Height}
		if c.Source.Kind == "synthetic" {
			ci.Width, ci.Height, ci.Channels = c.Source.Synthetic.Size, c.Source.Synthetic.Size, 1
		}
		if c.ROI != nil {
			ci.Width, ci.Height = c.ROI.W, c.ROI.H
		}
		out = append(out, ci)
	}
	return out
}
