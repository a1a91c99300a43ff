package review

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linesight/linesight/agent/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed assets
var assetFS embed.FS

// Status is what the status page shows; the agent fills it in.
type Status struct {
	Device     string
	Site       string
	Version    string
	Model      string
	Provider   string
	ModelCPUs  string // the CPUs reserved for the model (model.cpus), or empty
	Cameras    []CameraStatus
	OpenAccess bool // auth is "open": anyone on the network can act
	Broker     string
}

// Store is what the UI consumes from the agent's store (*store.Store
// implements it). Each method's contract is the store's: reads do not wait
// for the writer; writes return once committed.
type Store interface {
	Queue(f store.QueueFilter, limit int) ([]store.QueueItem, error)
	Next(ctx context.Context, by string, f store.QueueFilter, leaseFor time.Duration) (store.QueueItem, *store.Inspection, error)
	Claim(ctx context.Context, id, by string, leaseFor time.Duration) (store.QueueItem, error)
	Release(ctx context.Context, id, by string) error
	Label(ctx context.Context, li store.LabelInput) (*store.Label, error)
	Correct(ctx context.Context, li store.LabelInput) (*store.Label, error)
	Undo(ctx context.Context, itemID, by string) error
	Get(id string) (*store.Inspection, error)
	GetLabel(itemID string) (*store.Label, error)
	Image(id string) ([]byte, error)
	Recent(camera string, limit int) ([]*store.Inspection, error)
	Stats() (store.Stats, error)
}

var _ Store = (*store.Store)(nil)

// Options configures the server. Only Listen is required; what is nil is
// shown in the UI as not available.
type Options struct {
	Listen   string
	Logger   *slog.Logger
	Registry *prometheus.Registry // metrics to expose; nil creates one with Go and process collectors
	Status   func() Status        // called per status-page and live-view request

	// Auth says who may use the UI and the API. The zero value requires a
	// login and has no accounts: nobody gets in until the configuration
	// names users, a proxy header, or open access.
	Auth Auth
	// Store holds the review queue, images and labels; nil: the queue
	// says the store is not open.
	Store Store
	// Line is the running inspection line; nil: the live view says the line
	// is not running and falls back to the store's recent inspections.
	Line Line
	// Models are the model-lifecycle actions; nil: "not available yet".
	Models Models
	// Classes are the model's classes in key order: key 1 is Classes[0].
	// Empty: each item's own score order.
	Classes []string
	// LeaseFor is how long an item stays leased to the inspector viewing it
	// (the UI renews it while the item is on screen; default 2m).
	LeaseFor time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server is the agent's HTTP server.
type Server struct {
	opts  Options
	log   *slog.Logger
	auth  *authenticator
	ln    net.Listener
	http  *http.Server
	ready atomic.Bool
	done  chan error
	stop  chan struct{} // closed by Close: ends event streams
	once  sync.Once

	skipMu sync.Mutex
	skips  map[string]map[string]time.Time // user → item → until

	resMu    sync.Mutex
	reserved map[string]bool // items a next is claiming right now
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
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LeaseFor <= 0 {
		o.LeaseFor = 2 * time.Minute
	}
	log := o.Logger.With("component", "review")
	au, err := newAuthenticator(o.Auth, o.Now)
	if err != nil {
		return nil, err
	}
	switch {
	case au.mode == AuthOpen:
		log.Warn("review UI is open: anyone who can reach it can label and change automation levels (review.auth: open)")
	case au.mode == AuthUsers && len(au.users) == 0:
		log.Warn("review UI has no users: nobody can log in (add review.users or set review.auth)")
	}
	if au.ephemeral && au.mode != AuthHeader {
		log.Warn("review.session_key is empty: using a random key, so sessions end when the agent restarts (set LINESIGHT_REVIEW_SESSION_KEY)")
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("review ui listen on %s: %w (is another LineSight or program using the port? set review.listen)", o.Listen, err)
	}
	s := &Server{opts: o, log: log, auth: au, ln: ln, done: make(chan error, 1),
		stop: make(chan struct{}), skips: map[string]map[string]time.Time{}, reserved: map[string]bool{}}
	s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		err := s.http.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	s.log.Info("serving", "addr", ln.Addr().String(), "auth", au.mode)
	return s, nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assetFS, "assets")
	files := http.FileServerFS(static)
	mux.Handle("GET /{$}", files)
	mux.Handle("GET /app.js", files)
	mux.Handle("GET /app.css", files)
	mux.HandleFunc("GET /status", s.handleStatus)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))

	// The API. Every route but session, login and logout needs a user
	// (user, supervisor); every POST needs the CSRF token.
	mux.HandleFunc("GET /api/v1/session", s.handleSession)
	mux.HandleFunc("POST /api/v1/login", s.csrf(s.handleLogin))
	mux.HandleFunc("POST /api/v1/logout", s.csrf(s.handleLogout))
	mux.HandleFunc("GET /api/v1/queue", s.user(s.handleQueue))
	mux.HandleFunc("POST /api/v1/next", s.user(s.handleNext))
	mux.HandleFunc("GET /api/v1/items/{id}", s.user(s.handleItem))
	mux.HandleFunc("GET /api/v1/items/{id}/image", s.user(s.handleImage))
	mux.HandleFunc("POST /api/v1/items/{id}/claim", s.user(s.handleClaim))
	mux.HandleFunc("POST /api/v1/items/{id}/label", s.user(s.handleLabel))
	mux.HandleFunc("POST /api/v1/items/{id}/undo", s.user(s.handleUndo))
	mux.HandleFunc("POST /api/v1/items/{id}/skip", s.user(s.handleSkip))
	mux.HandleFunc("POST /api/v1/items/{id}/release", s.user(s.handleRelease))
	mux.HandleFunc("GET /api/v1/stats", s.user(s.handleStats))
	mux.HandleFunc("GET /api/v1/live", s.user(s.handleLive))
	mux.HandleFunc("GET /api/v1/events", s.user(s.handleEvents))
	mux.HandleFunc("POST /api/v1/cameras/{id}/level", s.supervisor(s.handleLevel))
	mux.HandleFunc("GET /api/v1/cameras/{id}/shadow", s.user(s.handleShadow))
	mux.HandleFunc("POST /api/v1/cameras/{id}/promote", s.supervisor(s.handleModelAction("promote")))
	mux.HandleFunc("POST /api/v1/cameras/{id}/rollback", s.supervisor(s.handleModelAction("rollback")))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "no_route", "No such API endpoint: "+r.Method+" "+r.URL.Path)
	})
	return securityHeaders(mux)
}

// securityHeaders keeps the UI from being framed or loading anything from
// elsewhere.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.ServeHTTP(w, r)
	})
}

// Addr is the bound host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the operator UI's address.
func (s *Server) URL() string { return "http://" + s.Addr() + "/" }

// SetReady flips /readyz: the agent calls it once every part is running,
// and clears it when shutdown begins.
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// Close stops the server: event streams end at once, other requests in
// flight get until ctx is done (a label being committed completes).
func (s *Server) Close(ctx context.Context) error {
	s.SetReady(false)
	s.once.Do(func() { close(s.stop) })
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
<link rel="stylesheet" href="/app.css"></head>
<body class="status"><h1>LineSight <small>{{.Version}}</small></h1>
{{if .OpenAccess}}<p class="warn" role="alert">Open access: this UI has no login (review.auth is "open"). Use it on a trusted network only.</p>{{end}}
<p>Device <b>{{.Device}}</b> at site <b>{{.Site}}</b>. Model <b>{{.Model}}</b> on <b>{{.Provider}}</b>{{if .ModelCPUs}}, CPU <b>{{.ModelCPUs}}</b> reserved for it{{end}}.{{if .Broker}} MQTT broker <b>{{.Broker}}</b>.{{end}}</p>
<table><caption>Cameras</caption><tr><th scope="col">Camera</th><th scope="col">Source</th><th scope="col">Automation</th></tr>
{{range .Cameras}}<tr><td>{{.ID}}</td><td>{{.Source}}</td><td>{{.Automation}}</td></tr>{{end}}</table>
<p><a href="/">Review</a> · <a href="/metrics">Metrics</a> · <a href="/healthz">Health</a> · <a href="/readyz">Readiness</a></p>
</body></html>`))
