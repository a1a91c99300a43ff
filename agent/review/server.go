package review

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Status is what the status page shows; the agent fills it in.
type Status struct {
	Device     string
	Site       string
	Version    string
	Model      string
	Provider   string
	Cameras    []CameraStatus
	OpenAccess bool // auth is "open": anyone on the network can act
	Broker     string
}

// CameraStatus is one camera's line on the status page.
type CameraStatus struct {
	ID         string
	Source     string
	Automation string
}

// Options configures the server.
type Options struct {
	Listen   string
	Logger   *slog.Logger
	Registry *prometheus.Registry // metrics to expose; nil creates one with Go and process collectors
	Status   func() Status        // called per status-page request
}

// Server is the agent's HTTP server.
type Server struct {
	opts  Options
	log   *slog.Logger
	ln    net.Listener
	http  *http.Server
	ready atomic.Bool
	done  chan error
}

// Open starts serving on o.Listen.
func Open(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if o.Status == nil {
		o.Status = func() Status { return Status{} }
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("review ui listen on %s: %w (is another LineSight or program using the port? set review.listen)", o.Listen, err)
	}
	s := &Server{opts: o, log: o.Logger.With("component", "review"), ln: ln, done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleStatus)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}))
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		err := s.http.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	s.log.Info("serving", "addr", ln.Addr().String())
	return s, nil
}

// Addr is the bound host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the operator UI's address.
func (s *Server) URL() string { return "http://" + s.Addr() + "/" }

// SetReady flips /readyz: the agent calls it once every part is running,
// and clears it when shutdown begins.
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// Close stops the server; requests in flight get until ctx is done.
func (s *Server) Close(ctx context.Context) error {
	s.SetReady(false)
	if err := s.http.Shutdown(ctx); err != nil {
		return fmt.Errorf("close review ui: %w", err)
	}
	return <-s.done
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := statusPage.Execute(w, s.opts.Status()); err != nil {
		s.log.Warn("render status page", "err", err)
	}
}

var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LineSight {{.Device}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px system-ui,sans-serif;margin:2rem;color:#111;background:#fff}
table{border-collapse:collapse}td,th{padding:.3rem .8rem;border-bottom:1px solid #ccc;text-align:left}
.warn{background:#fff3cd;border:1px solid #8a6d00;padding:.5rem 1rem;margin:1rem 0}</style></head>
<body><h1>LineSight <small>{{.Version}}</small></h1>
{{if .OpenAccess}}<p class="warn" role="alert">Open access: this UI has no login (review.auth is "open"). Use it on a trusted network only.</p>{{end}}
<p>Device <b>{{.Device}}</b> at site <b>{{.Site}}</b>. Model <b>{{.Model}}</b> on <b>{{.Provider}}</b>.{{if .Broker}} MQTT broker <b>{{.Broker}}</b>.{{end}}</p>
<table><caption>Cameras</caption><tr><th scope="col">Camera</th><th scope="col">Source</th><th scope="col">Automation</th></tr>
{{range .Cameras}}<tr><td>{{.ID}}</td><td>{{.Source}}</td><td>{{.Automation}}</td></tr>{{end}}</table>
<p><a href="/metrics">Metrics</a> · <a href="/healthz">Health</a> · <a href="/readyz">Readiness</a></p>
</body></html>`))
