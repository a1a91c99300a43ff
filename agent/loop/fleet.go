package loop

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/sync/fleet"
	"github.com/linesight/linesight/sync/rollout"
	"github.com/linesight/linesight/sync/wire"
)

// FleetOptions configure the loop's cloud side.
type FleetOptions struct {
	Broker       string // tcp://host:port
	Site, Device string // the device the loop manages
	// DatasetDir is where the collector writes the labelled samples.
	DatasetDir string
	// Key is the fleet's private key file (rollout.GenerateKey).
	Key    string
	Logger *slog.Logger
}

// Fleet is the cloud side of the loop, the parts `linesight-fleet serve`
// and `linesight-fleet push` run: the collector (registry and dataset,
// sync/fleet) on its own connection, and a fleet manager's connection that
// publishes signed model offers and answers chunk requests
// (sync/rollout.Publisher), follows the device's model/state and sends
// commands (promote) on its cmd topic.
type Fleet struct {
	o   FleetOptions
	log *slog.Logger
	col *fleet.Collector
	cli paho.Client
	pub *rollout.Publisher
	key ed25519.PrivateKey

	mu      sync.Mutex
	state   wire.ModelState
	changed chan struct{} // closed and replaced on every new state
	seq     int
}

// OpenFleet opens the collector and the manager's connection.
func OpenFleet(ctx context.Context, o FleetOptions) (*Fleet, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	key, err := rollout.LoadPrivateKey(o.Key)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	col, err := fleet.OpenCollector(ctx, fleet.CollectorOptions{Broker: o.Broker, ClientID: "linesight-fleet-loop",
		DatasetDir: o.DatasetDir, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	f := &Fleet{o: o, log: o.Logger.With("component", "fleet-manager"), col: col, key: key, changed: make(chan struct{})}
	f.cli = paho.NewClient(paho.NewClientOptions().AddBroker(o.Broker).SetClientID("linesight-fleet-loop-manager").
		SetCleanSession(true).SetOrderMatters(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).SetConnectTimeout(10 * time.Second))
	if tok := f.cli.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		col.Close()
		return nil, fmt.Errorf("fleet: manager connect %s: %v", o.Broker, tokErr(tok))
	}
	topic := wire.Topic(o.Site, o.Device, wire.KindModelState)
	if tok := f.cli.Subscribe(topic, 1, f.onState); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		f.cli.Disconnect(0)
		col.Close()
		return nil, fmt.Errorf("fleet: subscribe %s: %v", topic, tokErr(tok))
	}
	if f.pub, err = rollout.NewPublisher(f.cli, rollout.PublisherOptions{Site: o.Site, Logger: o.Logger}); err != nil {
		f.cli.Disconnect(0)
		col.Close()
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return f, nil
}

func tokErr(t paho.Token) error {
	if t.Error() != nil {
		return t.Error()
	}
	return errors.New("timed out")
}

// Close stops the publisher, the manager's connection and the collector.
func (f *Fleet) Close() error {
	err := f.pub.Close()
	f.cli.Disconnect(250)
	return errors.Join(err, f.col.Close())
}

// Collector is the fleet's collector.
func (f *Fleet) Collector() *fleet.Collector { return f.col }

// onState runs on paho's goroutine: it only records the state.
func (f *Fleet) onState(_ paho.Client, m paho.Message) {
	_, s, err := wire.DecodeModelState(m.Payload())
	if err != nil {
		f.log.Warn("bad model state", "err", err)
		return
	}
	f.mu.Lock()
	f.state = s
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// State is the device's latest model/state report.
func (f *Fleet) State() wire.ModelState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

// WaitState waits until the device reports a state for which ok is true,
// and returns it; it returns ctx's error when ctx ends first.
func (f *Fleet) WaitState(ctx context.Context, ok func(wire.ModelState) bool) (wire.ModelState, error) {
	for {
		f.mu.Lock()
		s, ch := f.state, f.changed
		f.mu.Unlock()
		if ok(s) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-ch:
		}
	}
}

// Push signs the model package in dir as a release for the device at
// stage (rollout.StageShadow, ...) with criteria, offers it (retained, as
// linesight-fleet push does) and serves its chunks until Close. It
// returns the release.
func (f *Fleet) Push(dir, stage string, c rollout.Criteria) (*rollout.Release, error) {
	tg := rollout.Target{Site: f.o.Site, Device: f.o.Device}
	rel, err := rollout.BuildRelease(dir, rollout.ReleaseOptions{Target: tg.String(), Stage: stage, Criteria: c})
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	off, err := rollout.Sign(rel, f.key)
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	if err := f.pub.Offer(tg, off, rel, rollout.NewSource(dir, rel)); err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	return rel, nil
}

// Promote sends the device a promote command on its cmd topic (the
// uplink hands it to the model lifecycle).
func (f *Fleet) Promote(by, reason string) error {
	f.mu.Lock()
	f.seq++
	id := "loop-promote-" + strconv.Itoa(f.seq)
	f.mu.Unlock()
	b, err := wire.Encode(wire.Envelope{Type: wire.TypeCommand, ID: id, Time: time.Now().UTC()},
		wire.Command{Op: wire.OpPromote, By: by, Reason: reason})
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	tok := f.cli.Publish(wire.Topic(f.o.Site, f.o.Device, wire.KindCommand), 1, false, b)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("promote: publish: %v", tokErr(tok))
	}
	return nil
}

// ReadRecords reads a dataset's manifest.jsonl (every line, stale ones
// included), oldest first. A last line still being appended is left out.
func ReadRecords(datasetDir string) ([]fleet.Record, error) {
	data, err := os.ReadFile(filepath.Join(datasetDir, fleet.ManifestName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dataset manifest: %w", err)
	}
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	var out []fleet.Record
	for i, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r fleet.Record
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("read dataset manifest: line %d: %w", i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}
