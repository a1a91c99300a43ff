package review

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/agent/store"
)

// skipFor is how long an item an inspector skipped stays out of their queue.
const skipFor = 10 * time.Minute

type apiHandler func(w http.ResponseWriter, r *http.Request, me identity)

// user wraps an API handler: the request needs a user (401 otherwise) and,
// unless it is a GET, a valid CSRF token (403).
func (s *Server) user(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		me, ok := s.identify(r)
		if !ok {
			writeErr(w, http.StatusUnauthorized, "login_required", "Please log in.")
			return
		}
		if r.Method != http.MethodGet && !s.auth.checkCSRF(r) {
			writeErr(w, http.StatusForbidden, "csrf", "The page is out of date (security token missing or wrong); reload it.")
			return
		}
		h(w, r, me)
	}
}

// supervisor is user for supervisor-only actions.
func (s *Server) supervisor(h apiHandler) http.HandlerFunc {
	return s.user(func(w http.ResponseWriter, r *http.Request, me identity) {
		if !me.supervisor() {
			writeErr(w, http.StatusForbidden, "forbidden", "Only a supervisor can do that.")
			return
		}
		h(w, r, me)
	})
}

// csrf wraps a handler that needs no user but does need the CSRF token
// (login, logout).
func (s *Server) csrf(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.auth.checkCSRF(r) {
			writeErr(w, http.StatusForbidden, "csrf", "The page is out of date (security token missing or wrong); reload it.")
			return
		}
		h(w, r)
	}
}

func (s *Server) identify(r *http.Request) (identity, bool) {
	if id, ok := s.auth.identify(r); ok {
		return id, true
	}
	if s.auth.mode == AuthOpen {
		return identity{Name: "guest", Role: RoleSupervisor}, true
	}
	return identity{}, false
}

// decode reads a JSON body into v, refusing unknown fields and bodies over
// 64 KiB; on error it has written a 400 and returns false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeErr(w, http.StatusBadRequest, "bad_request", "The request body is not valid JSON for this endpoint: "+err.Error())
		return false
	}
	return true
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	code, ae := storeError(err)
	if code >= 500 {
		s.log.Warn("api error", "err", err)
	}
	writeJSON(w, code, ae)
}

// store returns the store, or writes 503 and returns nil.
func (s *Server) store(w http.ResponseWriter) Store {
	if s.opts.Store == nil {
		writeErr(w, http.StatusServiceUnavailable, "store_unavailable", "The store is not open on this agent, so there is no review queue.")
	}
	return s.opts.Store
}

// sessionView is GET /api/v1/session.
type sessionView struct {
	User       *identity `json:"user"`
	Mode       string    `json:"mode"`
	OpenAccess bool      `json:"open_access"`
	// EphemeralKey: no session_key configured, sessions end on restart.
	EphemeralKey bool     `json:"ephemeral_key"`
	CSRF         string   `json:"csrf"`
	Classes      []string `json:"classes"`
	Device       string   `json:"device,omitempty"`
	Site         string   `json:"site,omitempty"`
	Version      string   `json:"version,omitempty"`
	Model        string   `json:"model,omitempty"`
	LineRunning  bool     `json:"line_running"`
	StoreOpen    bool     `json:"store_open"`
	ModelActions bool     `json:"model_actions"`
}

func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	v := sessionView{Mode: s.auth.mode, OpenAccess: s.auth.mode == AuthOpen, EphemeralKey: s.auth.ephemeral && s.auth.mode != AuthHeader,
		CSRF: s.auth.csrfToken(w, r), Classes: s.opts.Classes, LineRunning: s.opts.Line != nil, StoreOpen: s.opts.Store != nil,
		ModelActions: s.opts.Models != nil}
	if id, ok := s.auth.identify(r); ok {
		v.User = &id
	} else if s.auth.mode == AuthOpen {
		// Each open-mode browser gets its own name, so leases tell them apart.
		id := identity{Name: guestName(), Role: RoleSupervisor}
		s.auth.startSession(w, r, id)
		v.User = &id
	}
	if v.User != nil {
		st := s.opts.Status()
		v.Device, v.Site, v.Version, v.Model = st.Device, st.Site, st.Version, st.Model
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if !decode(w, r, &req) {
		return
	}
	req.User = strings.TrimSpace(req.User)
	switch s.auth.mode {
	case AuthHeader:
		writeErr(w, http.StatusBadRequest, "login_by_proxy", "Log in through the site's single sign-on; this agent trusts its proxy.")
		return
	case AuthOpen:
		if !validName(req.User) {
			writeErr(w, http.StatusBadRequest, "bad_name", "A name is 1 to 40 letters, digits, spaces, dots or dashes.")
			return
		}
		id := identity{Name: req.User, Role: RoleSupervisor}
		s.auth.startSession(w, r, id)
		writeJSON(w, http.StatusOK, id)
		return
	}
	keys := s.auth.limiter.keys(r, req.User)
	if wait := s.auth.limiter.allow(keys); wait > 0 {
		secs := int(wait/time.Second) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeErr(w, http.StatusTooManyRequests, "rate_limited", fmt.Sprintf("Too many failed logins. Try again in %d seconds.", secs))
		return
	}
	id, ok := s.auth.checkPassword(req.User, req.Password)
	if !ok {
		s.auth.limiter.fail(keys)
		s.log.Info("login failed", "user", req.User, "remote", r.RemoteAddr)
		writeErr(w, http.StatusUnauthorized, "bad_login", "Wrong name or password.")
		return
	}
	s.auth.startSession(w, r, id)
	s.log.Info("login", "user", id.Name, "role", id.Role)
	writeJSON(w, http.StatusOK, id)
}

func validName(n string) bool {
	if n == "" || utf8.RuneCountInString(n) > 40 {
		return false
	}
	for _, c := range n {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && !strings.ContainsRune(" .-_", c) {
			return false
		}
	}
	return true
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	s.auth.endSession(w, r)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// filterFrom reads camera, reason and audit from a query or request body.
func filterFrom(camera, reason, audit string) (store.QueueFilter, error) {
	f := store.QueueFilter{Camera: camera, Reason: policy.Reason(reason)}
	switch audit {
	case "":
	case "true", "1":
		t := true
		f.Audit = &t
	case "false", "0":
		t := false
		f.Audit = &t
	default:
		return f, fmt.Errorf("audit %q: want true or false", audit)
	}
	return f, nil
}

// queueView is GET /api/v1/queue.
type queueView struct {
	Items []store.QueueItem `json:"items"`
	// Total is the whole queue's length; ByCamera and ByReason count it
	// (the filter menus).
	Total    int            `json:"total"`
	ByCamera map[string]int `json:"by_camera"`
	ByReason map[string]int `json:"by_reason"`
}

func (s *Server) handleQueue(w http.ResponseWriter, r *http.Request, me identity) {
	st := s.store(w)
	if st == nil {
		return
	}
	q := r.URL.Query()
	f, err := filterFrom(q.Get("camera"), q.Get("reason"), q.Get("audit"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeErr(w, http.StatusBadRequest, "bad_request", "limit must be a number from 1 to 1000")
			return
		}
		limit = n
	}
	items, err := st.Queue(f, limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	all, err := st.Queue(store.QueueFilter{}, 10000)
	if err != nil {
		s.fail(w, err)
		return
	}
	v := queueView{Items: items, Total: len(all), ByCamera: map[string]int{}, ByReason: map[string]int{}}
	if v.Items == nil {
		v.Items = []store.QueueItem{}
	}
	for _, it := range all {
		v.ByCamera[it.Camera]++
		v.ByReason[string(it.Reason)]++
	}
	writeJSON(w, http.StatusOK, v)
}

// itemView is one review item as the UI shows it.
type itemView struct {
	ID           string         `json:"id"`
	Camera       string         `json:"camera"`
	Time         time.Time      `json:"time"`
	PartID       string         `json:"part_id,omitempty"`
	Verdict      policy.Verdict `json:"verdict"`
	Reason       policy.Reason  `json:"reason"`
	ReasonText   string         `json:"reason_text"` // for people
	Detail       string         `json:"detail,omitempty"`
	Level        policy.Level   `json:"level"`
	Audit        bool           `json:"audit,omitempty"`
	Model        store.ModelRef `json:"model"`
	ModelVerdict policy.Verdict `json:"model_verdict,omitempty"`
	// ShowModel is false at the human and shadow levels: the inspector
	// sees no hint (no scores, heatmap or suggestion), so the labels stay an
	// independent judgement.
	ShowModel bool           `json:"show_model"`
	Scores    []store.Score  `json:"scores,omitempty"` // highest first
	Suggested string         `json:"suggested,omitempty"`
	Heatmap   *store.Heatmap `json:"heatmap,omitempty"`
	Width     int            `json:"width,omitempty"`
	Height    int            `json:"height,omitempty"`
	Image     string         `json:"image,omitempty"` // URL; empty when purged
	Classes   []string       `json:"classes"`         // key 1 is Classes[0]
	// LeaseBy holds the item until LeaseUntil (you, normally).
	LeaseBy    string       `json:"lease_by,omitempty"`
	LeaseUntil time.Time    `json:"lease_until,omitzero"`
	Label      *store.Label `json:"label,omitempty"`
}

func (s *Server) classes(in *store.Inspection) []string {
	if len(s.opts.Classes) > 0 {
		return s.opts.Classes
	}
	c := make([]string, 0, len(in.Scores))
	for _, sc := range in.Scores {
		c = append(c, sc.Label)
	}
	return c
}

func (s *Server) view(st Store, in *store.Inspection, q *store.QueueItem) itemView {
	v := itemView{ID: in.ID, Camera: in.Camera, Time: in.Time, PartID: in.PartID, Verdict: in.Verdict, Reason: in.Reason,
		ReasonText: reasonText(in.Reason), Detail: in.Detail, Level: in.Level, Audit: in.Audit, Model: in.Model,
		ShowModel: in.Level >= policy.Assist, Width: in.Width, Height: in.Height, Classes: s.classes(in)}
	if v.ShowModel {
		v.ModelVerdict = in.ModelVerdict
		v.Scores = slices.Clone(in.Scores)
		sort.SliceStable(v.Scores, func(i, j int) bool { return v.Scores[i].P > v.Scores[j].P })
		v.Suggested = in.Top
		if v.Suggested == "" && len(v.Scores) > 0 {
			v.Suggested = v.Scores[0].Label
		}
		v.Heatmap = in.Heatmap
	}
	if in.Image != "" && !in.ImagePurged {
		v.Image = "/api/v1/items/" + in.ID + "/image"
	}
	if q != nil {
		v.LeaseBy, v.LeaseUntil = q.LeaseBy, q.LeaseUntil
	}
	if l, err := st.GetLabel(in.ID); err == nil {
		v.Label = l
	}
	return v
}

func (s *Server) handleNext(w http.ResponseWriter, r *http.Request, me identity) {
	st := s.store(w)
	if st == nil {
		return
	}
	var req struct {
		Camera string `json:"camera"`
		Reason string `json:"reason"`
		Audit  string `json:"audit"`
		// Exclude: items the page already holds (the current and the
		// preloaded one).
		Exclude []string `json:"exclude"`
		// ResetSkips brings back the items this inspector skipped.
		ResetSkips bool `json:"reset_skips"`
	}
	if !decode(w, r, &req) {
		return
	}
	f, err := filterFrom(req.Camera, req.Reason, req.Audit)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if len(req.Exclude) > 100 {
		writeErr(w, http.StatusBadRequest, "bad_request", "exclude lists at most 100 items")
		return
	}
	if req.ResetSkips {
		s.skipMu.Lock()
		delete(s.skips, me.Name)
		s.skipMu.Unlock()
	}
	skipped := s.skipped(me.Name)
	q, in, err := s.next(r, st, me.Name, f, req.Exclude, skipped)
	if errors.Is(err, store.ErrQueueEmpty) {
		writeJSON(w, http.StatusNotFound, map[string]any{"code": "queue_empty", "error": "Nothing left to review.", "skipped": len(skipped)})
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(st, in, &q))
}

// next leases the oldest item matching f that by may take, leaving out
// exclude and the items by skipped. Without exclusions it is store.Next
// (one transaction). With them it lists the queue and claims the first
// candidate; an in-flight pick is reserved, so concurrent inspectors do not
// all race to claim the same item (that herd made p99 seconds at 100
// inspectors).
func (s *Server) next(r *http.Request, st Store, by string, f store.QueueFilter, exclude []string, skipped map[string]bool) (store.QueueItem, *store.Inspection, error) {
	if len(exclude) == 0 && len(skipped) == 0 {
		return st.Next(r.Context(), by, f, s.opts.LeaseFor)
	}
	ex := make(map[string]bool, len(exclude)+len(skipped))
	for _, id := range exclude {
		ex[id] = true
	}
	for id := range skipped {
		ex[id] = true
	}
	limit := 256
	for range 64 {
		items, err := st.Queue(f, limit)
		if err != nil {
			return store.QueueItem{}, nil, err
		}
		now := s.opts.Now()
		pick := ""
		s.resMu.Lock()
		for _, q := range items {
			if ex[q.ID] || s.reserved[q.ID] || (q.LeaseBy != "" && q.LeaseBy != by && now.Before(q.LeaseUntil)) {
				continue
			}
			pick = q.ID
			s.reserved[pick] = true
			break
		}
		s.resMu.Unlock()
		if pick == "" {
			if len(items) < limit {
				return store.QueueItem{}, nil, store.ErrQueueEmpty
			}
			limit *= 4 // the window was all taken: look further
			continue
		}
		got, err := st.Claim(r.Context(), pick, by, s.opts.LeaseFor)
		s.resMu.Lock()
		delete(s.reserved, pick)
		s.resMu.Unlock()
		if errors.Is(err, store.ErrLeaseHeld) || errors.Is(err, store.ErrAlreadyLabelled) || errors.Is(err, store.ErrNotFound) {
			ex[pick] = true // taken since we listed it
			continue
		}
		if err != nil {
			return store.QueueItem{}, nil, err
		}
		in, err := st.Get(pick)
		if err != nil {
			return store.QueueItem{}, nil, err
		}
		return got, in, nil
	}
	return store.QueueItem{}, nil, store.ErrQueueEmpty
}

func (s *Server) skipped(user string) map[string]bool {
	s.skipMu.Lock()
	defer s.skipMu.Unlock()
	now := s.opts.Now()
	out := map[string]bool{}
	for id, until := range s.skips[user] {
		if now.After(until) {
			delete(s.skips[user], id)
			continue
		}
		out[id] = true
	}
	return out
}

func (s *Server) handleItem(w http.ResponseWriter, r *http.Request, me identity) {
	st := s.store(w)
	if st == nil {
		return
	}
	id := r.PathValue("id")
	in, err := st.Get(id)
	if err != nil {
		s.fail(w, err)
		return
	}
	var qp *store.QueueItem
	if qs, err := st.Queue(store.QueueFilter{Camera: in.Camera}, 10000); err == nil {
		for i := range qs {
			if qs[i].ID == id {
				qp = &qs[i]
				break
			}
		}
	}
	writeJSON(w, http.StatusOK, s.view(st, in, qp))
}

func (s *Server) handleImage(w http.ResponseWriter, r *http.Request, me identity) {
	st := s.store(w)
	if st == nil {
		return
	}
	b, err := st.Image(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	// An ID's image never changes.
	w.Header().Set("Cache-Control", "private, max-age=86400, immutable")
	_, _ = w.Write(b)
}

// conflict fills in who holds the item (lease) or labelled it.
func (s *Server) conflict(w http.ResponseWriter, st Store, id string, err error) {
	code, ae := storeError(err)
	switch ae.Code {
	case "lease_held":
		if in, gerr := st.Get(id); gerr == nil {
			if qs, qerr := st.Queue(store.QueueFilter{Camera: in.Camera}, 10000); qerr == nil {
				for _, q := range qs {
					if q.ID == id {
						ae.By = q.LeaseBy
					}
				}
			}
		}
		if ae.By != "" {
			ae.Error = ae.By + " is reviewing this item right now."
		}
	case "already_labelled":
		if l, lerr := st.GetLabel(id); lerr == nil {
			ae.By = l.By
			ae.Error = fmt.Sprintf("Already labelled %q by %s at %s.", l.Class, l.By, l.At.Local().Format("15:04:05"))
		}
	}
	if code >= 500 {
		s.log.Warn("api error", "err", err)
	}
	writeJSON(w, code, ae)
}

func (s *Server) handleClaim(w http.ResponseWriter, r *http.Request, me identity) {
	st := s.store(w)
	if st == nil {
		return
	}
	id := r.PathValue("id")
	q, err := st.Claim(r.Context(), id, me.Name, s.opts.LeaseFor)
	if err != nil {
		s.conflict(w, st, id, err)
		return
	}
	writeJSON(w, http.StatusOK, q)
}

// labelView is the answer to a label: it is sent only after the store
// committed the label and its outbox entry.
type labelView struct {
	Saved bool         `json:"saved"`
	Label *store.Label `json:"label"`
}

func (s *Server) handleLabel(w http.ResponseWriter, r *http.Request, me identity) {
	st := s.store(w)
	if st == nil {
		return
	}
	var req struct {
		Class   string `json:"class"`
		Note    string `json:"note"`
		Correct bool   `json:"correct"` // replace an existing label
	}
	if !decode(w, r, &req) {
		return
	}
	id := r.PathValue("id")
	in, err := st.Get(id)
	if err != nil {
		s.fail(w, err)
		return
	}
	if req.Class == "" {
		writeErr(w, http.StatusBadRequest, "bad_class", "Choose a class.")
		return
	}
	if cl := s.classes(in); len(cl) > 0 && !slices.Contains(cl, req.Class) {
		writeErr(w, http.StatusBadRequest, "bad_class", fmt.Sprintf("Unknown class %q; the classes are %s.", req.Class, strings.Join(cl, ", ")))
		return
	}
	if len(req.Note) > 1000 {
		writeErr(w, http.StatusBadRequest, "bad_note", "A note is at most 1000 characters.")
		return
	}
	li := store.LabelInput{ItemID: id, By: me.Name, Class: req.Class, Note: req.Note}
	var l *store.Label
	if req.Correct {
		l, err = st.Correct(r.Context(), li)
	} else {
		l, err = st.Label(r.Context(), li)
	}
	if err != nil {
		s.conflict(w, st, id, err)
		return
	}
	s.skipMu.Lock()
	delete(s.skips[me.Name], id)
	s.skipMu.Unlock()
	writeJSON(w, http.StatusOK, labelView{Saved: true, Label: l})
}

func (s *Server) handleUndo(w http.ResponseWriter, r *http.Request, me identity) {
	st := s.store(w)
	if st == nil {
		return
	}
	id := r.PathValue("id")
	if err := st.Undo(r.Context(), id, me.Name); err != nil {
		s.fail(w, err)
		return
	}
	in, err := st.Get(id)
	if err != nil {
		s.fail(w, err)
		return
	}
	// The item is back in the queue, leased to me.
	writeJSON(w, http.StatusOK, s.view(st, in, &store.QueueItem{ID: id, LeaseBy: me.Name, LeaseUntil: s.opts.Now().Add(s.opts.LeaseFor)}))
}

func (s *Server) handleSkip(w http.ResponseWriter, r *http.Request, me identity) {
	st := s.store(w)
	if st == nil {
		return
	}
	id := r.PathValue("id")
	if err := st.Release(r.Context(), id, me.Name); err != nil {
		s.fail(w, err)
		return
	}
	s.skipMu.Lock()
	m := s.skips[me.Name]
	if m == nil {
		m = map[string]time.Time{}
		s.skips[me.Name] = m
	}
	if len(m) < 1000 {
		m[id] = s.opts.Now().Add(skipFor)
	}
	s.skipMu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"skipped": id, "back_in_s": int(skipFor / time.Second)})
}

// handleRelease gives back the lease without skipping (the page changed
// filter, was closed, or undid a label and no longer shows its preloaded item).
func (s *Server) handleRelease(w http.ResponseWriter, r *http.Request, me identity) {
	st := s.store(w)
	if st == nil {
		return
	}
	if err := st.Release(r.Context(), r.PathValue("id"), me.Name); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"released": true})
}

// statsView is GET /api/v1/stats.
type statsView struct {
	Store   store.Stats    `json:"store"`
	Queue   uint64         `json:"queue"`
	Cameras []CameraStatus `json:"cameras"`
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request, me identity) {
	st := s.store(w)
	if st == nil {
		return
	}
	ss, err := st.Stats()
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, statsView{Store: ss, Queue: ss.Queue, Cameras: s.cameras()})
}

func (s *Server) cameras() []CameraStatus {
	var cams []CameraStatus
	if s.opts.Line != nil {
		cams = s.opts.Line.Cameras()
	} else {
		cams = s.opts.Status().Cameras
	}
	if cams == nil {
		cams = []CameraStatus{}
	}
	return cams
}

// liveView is GET /api/v1/live.
type liveView struct {
	Running bool           `json:"running"`
	Cameras []CameraStatus `json:"cameras"`
	// Recent are the store's latest inspections when no line is running.
	Recent []Decision `json:"recent,omitempty"`
	Queue  uint64     `json:"queue"`
}

func (s *Server) handleLive(w http.ResponseWriter, r *http.Request, me identity) {
	writeJSON(w, http.StatusOK, s.live())
}

func (s *Server) live() liveView {
	v := liveView{Running: s.opts.Line != nil, Cameras: s.cameras()}
	if s.opts.Store != nil {
		if ss, err := s.opts.Store.Stats(); err == nil {
			v.Queue = ss.Queue
		}
		if !v.Running {
			if rec, err := s.opts.Store.Recent("", 24); err == nil {
				for _, in := range rec {
					v.Recent = append(v.Recent, decisionOf(in))
				}
			}
		}
	}
	return v
}

func decisionOf(in *store.Inspection) Decision {
	d := Decision{ID: in.ID, Camera: in.Camera, Time: in.Time, Verdict: in.Verdict, Reason: in.Reason, Top: in.Top,
		Review: in.Review, Image: in.Image != "" && !in.ImagePurged}
	for _, sc := range in.Scores {
		if sc.Label == in.Top {
			d.P = sc.P
		}
	}
	return d
}

func (s *Server) handleLevel(w http.ResponseWriter, r *http.Request, me identity) {
	var req struct {
		Level string `json:"level"`
	}
	if !decode(w, r, &req) {
		return
	}
	lv, err := policy.ParseLevel(req.Level)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "bad_level", fmt.Sprintf("Unknown automation level %q; the levels are %s.", req.Level, strings.Join(policy.LevelNames(), ", ")))
		return
	}
	if s.opts.Line == nil {
		writeErr(w, http.StatusServiceUnavailable, "line_not_running", "The line is not running, so its automation level cannot be changed here.")
		return
	}
	cam := r.PathValue("id")
	if err := s.opts.Line.SetLevel(r.Context(), cam, lv, me.Name); err != nil {
		if errors.Is(err, ErrUnknownCamera) {
			s.fail(w, err)
			return
		}
		writeErr(w, http.StatusConflict, "level_refused", err.Error())
		return
	}
	s.log.Info("automation level changed", "camera", cam, "level", lv.String(), "by", me.Name)
	writeJSON(w, http.StatusOK, map[string]any{"camera": cam, "level": lv})
}

func (s *Server) handleShadow(w http.ResponseWriter, r *http.Request, me identity) {
	if s.opts.Models == nil {
		s.fail(w, ErrNotAvailable)
		return
	}
	sh, err := s.opts.Models.Shadow(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, sh)
}

func (s *Server) handleModelAction(action string) apiHandler {
	return func(w http.ResponseWriter, r *http.Request, me identity) {
		if s.opts.Models == nil {
			s.fail(w, ErrNotAvailable)
			return
		}
		cam := r.PathValue("id")
		var err error
		if action == "promote" {
			err = s.opts.Models.Promote(r.Context(), cam, me.Name)
		} else {
			err = s.opts.Models.Rollback(r.Context(), cam, me.Name)
		}
		if err != nil {
			if errors.Is(err, ErrNotAvailable) || errors.Is(err, ErrUnknownCamera) {
				s.fail(w, err)
				return
			}
			writeErr(w, http.StatusConflict, action+"_refused", err.Error())
			return
		}
		s.log.Info("model "+action, "camera", cam, "by", me.Name)
		writeJSON(w, http.StatusOK, map[string]any{"camera": cam, "done": action})
	}
}

// handleEvents streams server-sent events: "decision", "alarm" and "level"
// from the line as they happen, and a "live" snapshot (liveView) every
// second. It ends when the client goes or the server closes.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, me identity) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeErr(w, http.StatusInternalServerError, "no_stream", "Streaming is not supported here.")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var events <-chan Event
	if s.opts.Line != nil {
		ch, cancel := s.opts.Line.Subscribe(256)
		defer cancel()
		events = ch
	}
	send := func(kind string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", kind, b); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	if !send("live", s.live()) {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil // the line stopped; keep sending snapshots
				continue
			}
			if !send(string(ev.Kind), ev) {
				return
			}
		case <-tick.C:
			if !send("live", s.live()) {
				return
			}
		}
	}
}

// reasonText says in words why a part was sent to review.
func reasonText(r policy.Reason) string {
	switch r {
	case policy.ReasonUncertain:
		return "The model was unsure: its confidence fell between the pass and reject thresholds."
	case policy.ReasonFullNotGood:
		return "Full automation: the part was not confidently good."
	case policy.ReasonLevelHuman:
		return "This camera is at the human level: every part is reviewed, the model's hint is hidden."
	case policy.ReasonLevelShadow:
		return "Shadow level: every part is reviewed while the model is evaluated; its hint is hidden."
	case policy.ReasonLevelAssist:
		return "Assist level: every part is reviewed with the model's hint."
	case policy.ReasonInferenceError:
		return "The model failed on this part."
	case policy.ReasonTimeout:
		return "The model took too long on this part."
	case policy.ReasonDeadlineMissed:
		return "The part reached the model after the line's deadline."
	case policy.ReasonBlank:
		return "The frame looks blank or covered."
	case policy.ReasonBrightness:
		return "The image is brighter or darker than the model was trained on."
	case policy.ReasonContrast:
		return "The image contrast is outside what the model was trained on."
	case policy.ReasonSharpness:
		return "The image is blurrier or sharper than the model was trained on."
	case policy.ReasonAlwaysReview:
		return "The model's top class is one that always goes to a person."
	case policy.ReasonDriftDowngrade:
		return "A drift alarm lowered automation: the camera's images differ from the reference."
	case policy.ReasonNoModelOutput:
		return "The model gave no usable output."
	case policy.ReasonConfidentPass, policy.ReasonConfidentReject, policy.ReasonClassReject:
		return "An automatic decision sampled for audit: check the model was right."
	}
	return string(r)
}
