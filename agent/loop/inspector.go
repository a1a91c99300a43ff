package loop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"time"
)

// InspectorOptions configure a simulated inspector.
type InspectorOptions struct {
	// URL is the review server's base URL ("http://host:port/").
	URL string
	// User and Password log in (review.auth users); with open access any
	// name works and Password is ignored.
	User, Password string
	// Camera limits the queue to one camera ("" takes every camera).
	Camera string
	// Truth gives the class of a part from its part ID (required): the
	// inspector looks at the part, not at the model's suggestion.
	Truth func(partID string) (string, error)
	// Idle is the pause when the queue is empty (default 200ms).
	Idle time.Duration
	// OnLabel, when set, is called after each committed label (from the
	// inspector's goroutine).
	OnLabel func(Labelled)
	Logger  *slog.Logger
}

// Labelled is one label the review API committed.
type Labelled struct {
	LabelID   string // the store's label ID; its sample is "label-"+LabelID
	ItemID    string
	PartID    string
	Class     string // the ground truth the inspector gave
	Suggested string // the model's top class as the review API showed it
}

// InspectorStats count what the inspector did.
type InspectorStats struct {
	Labels int // committed labels
	// Corrected: labels that differ from the model's suggestion.
	Corrected int
	// Errors: requests that failed (retried after Idle).
	Errors int
}

// Inspector is a person at the review UI, simulated: it logs in through
// the review API, takes the oldest deferred part (POST next), decides its
// class from the ground truth and labels it (POST items/{id}/label), over
// and over until closed. It uses the API exactly as the browser does
// (session cookie, CSRF header), so every label goes through the store's
// commit and its outbox entry.
type Inspector struct {
	o    InspectorOptions
	log  *slog.Logger
	hc   *http.Client
	base string
	csrf string

	mu     sync.Mutex
	labels []Labelled
	stats  InspectorStats
	paused bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// OpenInspector logs in and starts labelling.
func OpenInspector(ctx context.Context, o InspectorOptions) (*Inspector, error) {
	if o.URL == "" || o.Truth == nil {
		return nil, errors.New("inspector: URL and Truth are required")
	}
	if o.Idle <= 0 {
		o.Idle = 200 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("inspector: %w", err)
	}
	in := &Inspector{o: o, log: o.Logger.With("component", "inspector", "user", o.User),
		hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}, base: strings.TrimSuffix(o.URL, "/") + "/api/v1/"}
	if err := in.login(ctx); err != nil {
		return nil, err
	}
	in.ctx, in.cancel = context.WithCancel(context.WithoutCancel(ctx))
	in.wg.Add(1)
	go func() { defer in.wg.Done(); in.run() }()
	return in, nil
}

// Close stops the inspector after the label in progress and waits.
func (in *Inspector) Close() error {
	in.cancel()
	in.wg.Wait()
	return nil
}

// Pause stops taking new items (true) or resumes (false); a label in
// progress finishes.
func (in *Inspector) Pause(p bool) {
	in.mu.Lock()
	in.paused = p
	in.mu.Unlock()
}

// Labels are the labels committed so far, oldest first.
func (in *Inspector) Labels() []Labelled {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Labelled(nil), in.labels...)
}

// Stats are the inspector's counters.
func (in *Inspector) Stats() InspectorStats {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stats
}

func (in *Inspector) login(ctx context.Context) error {
	var sess struct {
		CSRF string `json:"csrf"`
	}
	if err := in.call(ctx, http.MethodGet, "session", nil, &sess); err != nil {
		return fmt.Errorf("inspector: session: %w", err)
	}
	in.csrf = sess.CSRF
	if err := in.call(ctx, http.MethodPost, "login", map[string]string{"user": in.o.User, "password": in.o.Password}, nil); err != nil {
		return fmt.Errorf("inspector: login as %s: %w", in.o.User, err)
	}
	return nil
}

func (in *Inspector) run() {
	for in.ctx.Err() == nil {
		in.mu.Lock()
		paused := in.paused
		in.mu.Unlock()
		var err error
		if !paused {
			_, err = in.LabelNext(in.ctx)
		}
		switch {
		case err == nil && !paused:
			continue
		case err != nil && !errors.Is(err, ErrQueueEmpty) && in.ctx.Err() == nil:
			in.mu.Lock()
			in.stats.Errors++
			in.mu.Unlock()
			in.log.Warn("label failed; trying again", "err", err)
		}
		select {
		case <-in.ctx.Done():
		case <-time.After(in.o.Idle):
		}
	}
}

// item is the part of the review API's item view the inspector reads.
type item struct {
	ID        string `json:"id"`
	PartID    string `json:"part_id"`
	Suggested string `json:"suggested"`
}

// LabelNext leases the oldest deferred item, labels it with its true
// class and returns the committed label; ErrQueueEmpty when there is none.
// Close's goroutine calls it in a loop; a test may call it directly.
func (in *Inspector) LabelNext(ctx context.Context) (Labelled, error) {
	var it item
	err := in.call(ctx, http.MethodPost, "next", map[string]any{"camera": in.o.Camera, "audit": "false"}, &it)
	if err != nil {
		return Labelled{}, err
	}
	class, err := in.o.Truth(it.PartID)
	if err != nil {
		// Not a part this inspector can judge: leave it for someone else.
		_ = in.call(ctx, http.MethodPost, "items/"+it.ID+"/skip", map[string]any{}, nil)
		return Labelled{}, fmt.Errorf("item %s: %w", it.ID, err)
	}
	var res struct {
		Saved bool `json:"saved"`
		Label struct {
			ID string `json:"id"`
		} `json:"label"`
	}
	// Once sent, the label is seen through even when ctx ends (Close): the
	// server may commit it, and a label committed but not recorded here
	// would be one the inspector "did not send".
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := in.call(lctx, http.MethodPost, "items/"+it.ID+"/label", map[string]any{"class": class}, &res); err != nil {
		return Labelled{}, fmt.Errorf("label %s: %w", it.ID, err)
	}
	if !res.Saved || res.Label.ID == "" {
		return Labelled{}, fmt.Errorf("label %s: %w: not saved", it.ID, ErrReview)
	}
	l := Labelled{LabelID: res.Label.ID, ItemID: it.ID, PartID: it.PartID, Class: class, Suggested: it.Suggested}
	in.mu.Lock()
	in.labels = append(in.labels, l)
	in.stats.Labels++
	if l.Suggested != l.Class {
		in.stats.Corrected++
	}
	in.mu.Unlock()
	if in.o.OnLabel != nil {
		in.o.OnLabel(l)
	}
	return l, nil
}

// call sends one API request with the CSRF header and decodes the JSON
// answer into out (when not nil). A 404 queue_empty is ErrQueueEmpty;
// another error answer wraps ErrReview with the API's message.
func (in *Inspector) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, in.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if in.csrf != "" {
		req.Header.Set("X-CSRF-Token", in.csrf)
	}
	resp, err := in.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code  string `json:"code"`
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if e.Code == "queue_empty" {
			return ErrQueueEmpty
		}
		return fmt.Errorf("%w: %s %s: %d %s: %s", ErrReview, method, path, resp.StatusCode, e.Code, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%w: %s %s: answer is not JSON: %v", ErrReview, method, path, err)
		}
	}
	return nil
}

// Live is the part of the review API's live view the loop reports.
type Live struct {
	Queue   uint64       `json:"queue"`
	Cameras []LiveCamera `json:"cameras"`
}

// LiveCamera is one camera of the live view.
type LiveCamera struct {
	ID    string `json:"id"`
	Model struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"model"`
	Counts    map[string]uint64 `json:"counts"` // by verdict: pass, reject, defer
	DeferRate float64           `json:"defer_rate"`
}

// Live reads the running line's live view (GET live), as the UI's live
// page does.
func (in *Inspector) Live(ctx context.Context) (Live, error) {
	var l Live
	err := in.call(ctx, http.MethodGet, "live", nil, &l)
	return l, err
}
