package broker

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Options configures the embedded broker.
type Options struct {
	// Listen is host:port; port 0 picks a free port (see Addr).
	Listen string
	// TLS, when set, makes the listener speak MQTT over TLS.
	TLS *tls.Config
	// Auth decides who may connect and what they may read and write;
	// nil allows everyone (demo and tests on loopback only).
	Auth mqtt.Hook
	// Logger receives the broker's own log lines.
	Logger *slog.Logger
}

// Broker is a running embedded MQTT broker.
type Broker struct {
	srv  *mqtt.Server
	addr string
	done chan error
	gate *gate
}

// Open starts a broker listening on o.Listen.
func Open(o Options) (*Broker, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// mochi logs every connection at info; keep only its warnings and errors.
	g := new(gate)
	quiet := slog.New(minLevel{Handler: log.Handler(), min: slog.LevelWarn, gate: g}).With("component", "broker")
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: quiet})
	var hook mqtt.Hook = new(auth.AllowHook)
	if o.Auth != nil {
		hook = o.Auth
	}
	if err := srv.AddHook(hook, nil); err != nil {
		return nil, fmt.Errorf("broker auth hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: o.Listen, TLSConfig: o.TLS})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker listen on %s: %w", o.Listen, err)
	}
	b := &Broker{srv: srv, addr: tcp.Address(), done: make(chan error, 1), gate: g}
	go func() { b.done <- srv.Serve() }()
	return b, nil
}

// Addr is the bound host:port.
func (b *Broker) Addr() string { return b.addr }

// URL is the address as a client broker URL (tcp://host:port).
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Server exposes the mochi server for in-process publish and subscribe.
func (b *Broker) Server() *mqtt.Server { return b.srv }

// Close disconnects every client and stops listening.
func (b *Broker) Close() error {
	err := b.srv.Close()
	// mochi's connection goroutines may still log a connection's end after
	// Close returns: nothing is logged once Close is done (the caller may
	// close or read what the logger writes to).
	b.gate.mu.Lock()
	b.gate.closed = true
	b.gate.mu.Unlock()
	if err != nil {
		return fmt.Errorf("close broker: %w", err)
	}
	return nil
}

// gate stops the broker's log once it is closed.
type gate struct {
	mu     sync.RWMutex
	closed bool
}

// minLevel drops records below min, and every record once the gate is closed.
type minLevel struct {
	slog.Handler
	min  slog.Level
	gate *gate
}

func (h minLevel) Handle(ctx context.Context, r slog.Record) error {
	h.gate.mu.RLock()
	defer h.gate.mu.RUnlock()
	if h.gate.closed {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(as), min: h.min, gate: h.gate}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min, gate: h.gate}
}
