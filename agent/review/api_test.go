package review

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/agent/store"
)

func TestAPIRefusesWithoutSession(t *testing.T) {
	st := openStore(t, true)
	ids := putDeferred(t, st, 1)
	s := openServer(t, Options{Store: st, Line: newFakeLine("cam1"), Auth: testAuth(t)})
	c := newClient(t, s)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/queue"},
		{"POST", "/api/v1/next"},
		{"GET", "/api/v1/items/" + ids[0]},
		{"GET", "/api/v1/items/" + ids[0] + "/image"},
		{"POST", "/api/v1/items/" + ids[0] + "/label"},
		{"POST", "/api/v1/items/" + ids[0] + "/undo"},
		{"POST", "/api/v1/items/" + ids[0] + "/skip"},
		{"GET", "/api/v1/stats"},
		{"GET", "/api/v1/live"},
		{"GET", "/api/v1/events"},
		{"POST", "/api/v1/cameras/cam1/level"},
	} {
		var e apiError
		if code := c.do(tc.method, tc.path, map[string]string{}, &e); code != http.StatusUnauthorized || e.Code != "login_required" || e.Error == "" {
			t.Errorf("%s %s without a session = %d %+v, want 401 login_required", tc.method, tc.path, code, e)
		}
	}
	// A forged or expired cookie is no session either.
	code, _ := c.raw("GET", "/api/v1/queue", nil, map[string]string{"Cookie": sessionCookie + "=eyJuIjoic3VlIiwiciI6InN1cGVydmlzb3IiLCJlIjo5OTk5OTk5OTk5fQ.AAAA"})
	if code != http.StatusUnauthorized {
		t.Errorf("forged session cookie = %d, want 401", code)
	}
	if _, err := st.GetLabel(ids[0]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unauthenticated label reached the store: %v", err)
	}
}

func TestAPIAuth(t *testing.T) {
	st := openStore(t, true)
	putDeferred(t, st, 3)
	line := newFakeLine("cam1")
	s := openServer(t, Options{Store: st, Line: line, Auth: testAuth(t)})

	t.Run("login", func(t *testing.T) {
		for _, tc := range []struct {
			name, user, pass string
			code             int
			role             string
		}{
			{"inspector", "alice", "ecila-pw", 200, RoleInspector},
			{"supervisor", "sue", "eus-pw", 200, RoleSupervisor},
			{"wrong password", "alice", "nope", 401, ""},
			{"unknown user", "mallory", "x", 401, ""},
			{"empty", "", "", 401, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := newClient(t, s)
				var id identity
				if code := c.do("POST", "/api/v1/login", map[string]string{"user": tc.user, "password": tc.pass}, &id); code != tc.code {
					t.Fatalf("login = %d, want %d", code, tc.code)
				}
				var sess sessionView
				c.do("GET", "/api/v1/session", nil, &sess)
				if tc.role == "" {
					if sess.User != nil {
						t.Errorf("failed login left a session: %+v", sess.User)
					}
					return
				}
				if sess.User == nil || sess.User.Role != tc.role || sess.User.Name != tc.user {
					t.Errorf("session = %+v, want %s as %s", sess.User, tc.user, tc.role)
				}
			})
		}
	})

	t.Run("csrf", func(t *testing.T) {
		c := newClient(t, s)
		c.login("alice", "ecila-pw")
		for _, tc := range []struct {
			name  string
			token string
		}{{"missing", ""}, {"wrong", strings.Repeat("0", 64)}} {
			code, b := c.raw("POST", "/api/v1/next", "{}", map[string]string{csrfHeader: tc.token})
			if code != http.StatusForbidden || !strings.Contains(string(b), `"csrf"`) {
				t.Errorf("%s token: %d %s, want 403 csrf", tc.name, code, b)
			}
		}
		// Login needs the token too (no login CSRF).
		c2 := newClient(t, s)
		if code, _ := c2.raw("POST", "/api/v1/login", `{"user":"alice","password":"ecila-pw"}`, nil); code != http.StatusForbidden {
			t.Errorf("login without token = %d, want 403", code)
		}
		// A token from another browser's cookie does not fit this one.
		other := newClient(t, s)
		if code, _ := c.raw("POST", "/api/v1/next", "{}", map[string]string{csrfHeader: other.csrf}); code != http.StatusForbidden {
			t.Errorf("another browser's token = %d, want 403", code)
		}
		if code := c.do("POST", "/api/v1/next", map[string]string{}, nil); code != 200 {
			t.Errorf("with the right token = %d, want 200", code)
		}
	})

	t.Run("roles", func(t *testing.T) {
		insp := newClient(t, s)
		insp.login("bob", "bob-pw")
		sup := newClient(t, s)
		sup.login("sue", "eus-pw")
		for _, tc := range []struct {
			name string
			c    *client
			path string
			code int
		}{
			{"inspector level", insp, "/api/v1/cameras/cam1/level", 403},
			{"inspector promote", insp, "/api/v1/cameras/cam1/promote", 403},
			{"supervisor level", sup, "/api/v1/cameras/cam1/level", 200},
			{"supervisor promote (no lifecycle yet)", sup, "/api/v1/cameras/cam1/promote", 501},
			{"supervisor rollback (no lifecycle yet)", sup, "/api/v1/cameras/cam1/rollback", 501},
			{"supervisor unknown camera", sup, "/api/v1/cameras/cam9/level", 404},
		} {
			var e apiError
			if code := tc.c.do("POST", tc.path, map[string]string{"level": "assist"}, &e); code != tc.code {
				t.Errorf("%s = %d %+v, want %d", tc.name, code, e, tc.code)
			}
		}
		if got := line.Cameras()[0].Level; got != policy.Assist {
			t.Errorf("cam1 level = %v, want assist", got)
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		c := newClient(t, s)
		for i := range 5 {
			if code := c.do("POST", "/api/v1/login", map[string]string{"user": "bob", "password": "guess"}, nil); code != 401 {
				t.Fatalf("attempt %d = %d, want 401", i, code)
			}
		}
		code, b := c.raw("POST", "/api/v1/login", `{"user":"bob","password":"bob-pw"}`, map[string]string{csrfHeader: c.csrf})
		if code != http.StatusTooManyRequests || !strings.Contains(string(b), "Try again in") {
			t.Errorf("6th attempt = %d %s, want 429 even with the right password", code, b)
		}
	})

	t.Run("logout", func(t *testing.T) {
		c := newClient(t, s)
		c.login("sue", "eus-pw")
		if code := c.do("POST", "/api/v1/logout", nil, nil); code != 200 {
			t.Fatalf("logout = %d", code)
		}
		if code := c.do("GET", "/api/v1/stats", nil, nil); code != 401 {
			t.Errorf("after logout = %d, want 401", code)
		}
	})
}

func TestAPIAuthModes(t *testing.T) {
	st := openStore(t, true)
	putDeferred(t, st, 2)
	t.Run("header", func(t *testing.T) {
		a := testAuth(t)
		a.Mode, a.Header = AuthHeader, "X-Remote-User"
		s := openServer(t, Options{Store: st, Auth: a, Line: newFakeLine("cam1")})
		c := newClient(t, s)
		if code, _ := c.raw("GET", "/api/v1/queue", nil, nil); code != 401 {
			t.Errorf("no header = %d, want 401", code)
		}
		var sess sessionView
		code, b := c.raw("GET", "/api/v1/session", nil, map[string]string{"X-Remote-User": "sue"})
		if err := json.Unmarshal(b, &sess); err != nil || code != 200 || sess.User == nil || sess.User.Role != RoleSupervisor {
			t.Errorf("header sue: %d %s, want supervisor", code, b)
		}
		code, _ = c.raw("POST", "/api/v1/cameras/cam1/level", `{"level":"full"}`, map[string]string{"X-Remote-User": "walter", csrfHeader: c.csrf})
		if code != 403 {
			t.Errorf("unlisted header user changing level = %d, want 403 (inspector by default)", code)
		}
		code, _ = c.raw("POST", "/api/v1/login", `{"user":"x"}`, map[string]string{csrfHeader: c.csrf})
		if code != 400 {
			t.Errorf("login in header mode = %d, want 400", code)
		}
	})
	t.Run("open", func(t *testing.T) {
		s := openServer(t, Options{Store: st, Auth: Auth{Mode: AuthOpen}})
		c := newClient(t, s)
		var sess sessionView
		c.do("GET", "/api/v1/session", nil, &sess)
		if !sess.OpenAccess || sess.User == nil || !strings.HasPrefix(sess.User.Name, "guest-") || !sess.EphemeralKey {
			t.Errorf("open session = %+v, want open_access, a guest name and ephemeral_key", sess)
		}
		if code := c.do("GET", "/api/v1/queue", nil, nil); code != 200 {
			t.Errorf("open queue = %d", code)
		}
		var id identity
		if code := c.do("POST", "/api/v1/login", map[string]string{"user": "Line 3 Anna"}, &id); code != 200 || id.Name != "Line 3 Anna" {
			t.Errorf("open login with a name = %d %+v", code, id)
		}
		if code := c.do("POST", "/api/v1/login", map[string]string{"user": "<script>"}, nil); code != 400 {
			t.Errorf("bad name = %d, want 400", code)
		}
	})
	t.Run("zero value requires login", func(t *testing.T) {
		s := openServer(t, Options{Store: st})
		c := newClient(t, s)
		if code := c.do("GET", "/api/v1/queue", nil, nil); code != 401 {
			t.Errorf("zero Auth queue = %d, want 401", code)
		}
	})
}

// TestAPILabelFlow: two inspectors, leases, conflicts, the label in the
// store and outbox, undo and skip.
func TestAPILabelFlow(t *testing.T) {
	st := openStore(t, true)
	ids := putDeferred(t, st, 4, "cam1", "cam2")
	s := openServer(t, Options{Store: st, Line: newFakeLine("cam1", "cam2"), Auth: testAuth(t)})
	alice, bob := newClient(t, s), newClient(t, s)
	alice.login("alice", "ecila-pw")
	bob.login("bob", "bob-pw")

	var a, b itemView
	if code := alice.do("POST", "/api/v1/next", map[string]any{}, &a); code != 200 || a.ID != ids[0] {
		t.Fatalf("alice next = %d %s, want the oldest %s", code, a.ID, ids[0])
	}
	if a.LeaseBy != "alice" || a.Heatmap == nil || len(a.Heatmap.V) != 144 || a.Image == "" || !a.ShowModel || a.Suggested == "" || len(a.Scores) != 6 || a.Scores[0].P < a.Scores[1].P {
		t.Errorf("item view incomplete: %+v", a)
	}
	if code := bob.do("POST", "/api/v1/next", map[string]any{}, &b); code != 200 || b.ID == a.ID {
		t.Fatalf("bob next = %d %s: two inspectors got the same item", code, b.ID)
	}
	var e apiError
	if code := bob.do("POST", "/api/v1/items/"+a.ID+"/label", map[string]string{"class": "crack"}, &e); code != 409 || e.Code != "lease_held" || e.By != "alice" || !strings.Contains(e.Error, "alice") {
		t.Errorf("bob labels alice's item = %d %+v, want 409 lease_held naming alice", code, e)
	}
	if code := bob.do("POST", "/api/v1/items/"+a.ID+"/claim", nil, &e); code != 409 || e.By != "alice" {
		t.Errorf("bob claims alice's item = %d %+v", code, e)
	}
	var lv labelView
	if code := alice.do("POST", "/api/v1/items/"+a.ID+"/label", map[string]string{"class": "crack"}, &lv); code != 200 || !lv.Saved || lv.Label.Class != "crack" || lv.Label.By != "alice" {
		t.Fatalf("alice label = %d %+v", code, lv)
	}
	// The label is committed, with its outbox entry.
	if l, err := st.GetLabel(a.ID); err != nil || l.Class != "crack" {
		t.Errorf("store label = %+v, %v", l, err)
	}
	if !outboxHas(t, st, lv.Label.OutboxID()) {
		t.Errorf("outbox has no %s", lv.Label.OutboxID())
	}
	if code := bob.do("POST", "/api/v1/items/"+a.ID+"/label", map[string]string{"class": "free"}, &e); code != 409 || e.Code != "already_labelled" || e.By != "alice" {
		t.Errorf("second label = %d %+v, want 409 already_labelled by alice", code, e)
	}
	// Bob may correct it explicitly.
	if code := bob.do("POST", "/api/v1/items/"+a.ID+"/label", map[string]any{"class": "break", "correct": true}, &lv); code != 200 || lv.Label.Revision != 2 {
		t.Errorf("correct = %d %+v", code, lv)
	}
	if code := alice.do("POST", "/api/v1/items/"+a.ID+"/undo", nil, &e); code != 403 || e.Code != "not_your_label" {
		t.Errorf("alice undoes bob's correction = %d %+v", code, e)
	}
	if code := bob.do("POST", "/api/v1/items/"+a.ID+"/undo", nil, nil); code != 200 {
		t.Errorf("bob undoes his correction = %d", code)
	}
	if l, _ := st.GetLabel(a.ID); l == nil || l.Class != "crack" {
		t.Errorf("after undoing the correction label = %+v, want alice's crack back", l)
	}

	// Undo of a first label puts the item back, leased to its author.
	var c itemView
	alice.do("POST", "/api/v1/next", map[string]any{}, &c)
	alice.do("POST", "/api/v1/items/"+c.ID+"/label", map[string]string{"class": "free"}, &lv)
	var back itemView
	if code := alice.do("POST", "/api/v1/items/"+c.ID+"/undo", nil, &back); code != 200 || back.ID != c.ID || back.Label != nil || back.LeaseBy != "alice" {
		t.Errorf("undo = %d %+v", code, back)
	}
	if _, err := st.GetLabel(c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("label still there after undo: %v", err)
	}
	if outboxHas(t, st, lv.Label.OutboxID()) {
		t.Errorf("outbox entry %s still pending after undo", lv.Label.OutboxID())
	}

	// Skip: the item stays out of alice's queue until she asks for it back.
	if code := alice.do("POST", "/api/v1/items/"+c.ID+"/skip", nil, nil); code != 200 {
		t.Fatalf("skip = %d", code)
	}
	var d itemView
	if code := alice.do("POST", "/api/v1/next", map[string]any{}, &d); code != 200 || d.ID == c.ID {
		t.Errorf("next after skip = %d %s, want another item than %s", code, d.ID, c.ID)
	}
	// Filter by camera.
	var f itemView
	if code := alice.do("POST", "/api/v1/next", map[string]any{"camera": "cam2", "exclude": []string{d.ID}}, &f); code == 200 && f.Camera != "cam2" {
		t.Errorf("camera filter gave %s", f.Camera)
	}
	var q queueView
	if code := alice.do("GET", "/api/v1/queue?camera=cam1", nil, &q); code != 200 || q.ByCamera["cam1"] == 0 {
		t.Errorf("queue = %d %+v", code, q)
	}
	for _, it := range q.Items {
		if it.Camera != "cam1" {
			t.Errorf("queue filter let %s through", it.Camera)
		}
	}
	// Empty queue says so, with the skipped count.
	var empty map[string]any
	code := alice.do("POST", "/api/v1/next", map[string]any{"reason": "ood-blank-frame"}, &empty)
	if code != 404 || empty["code"] != "queue_empty" {
		t.Errorf("empty queue = %d %v", code, empty)
	}
	// The image is the stored JPEG.
	code, img := alice.raw("GET", "/api/v1/items/"+a.ID+"/image", nil, nil)
	if code != 200 || len(img) < 100 || img[0] != 0xFF || img[1] != 0xD8 {
		t.Errorf("image = %d, %d bytes", code, len(img))
	}
}

func outboxHas(t *testing.T, st *store.Store, id string) bool {
	t.Helper()
	es, err := st.Pending(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.ID == id {
			return e.Kind == store.KindLabel
		}
	}
	return false
}

func TestAPIBadInput(t *testing.T) {
	st := openStore(t, true)
	ids := putDeferred(t, st, 2)
	s := openServer(t, Options{Store: st, Line: newFakeLine("cam1"), Auth: testAuth(t)})
	c := newClient(t, s)
	c.login("sue", "eus-pw")
	item := "/api/v1/items/" + ids[0]
	for _, tc := range []struct {
		name, method, path string
		body               any
		code               int
		errCode            string
	}{
		{"not json", "POST", item + "/label", "{class:", 400, "bad_request"},
		{"unknown field", "POST", item + "/label", `{"klass":"crack"}`, 400, "bad_request"},
		{"no class", "POST", item + "/label", `{}`, 400, "bad_class"},
		{"unknown class", "POST", item + "/label", `{"class":"dent"}`, 400, "bad_class"},
		{"long note", "POST", item + "/label", `{"class":"crack","note":"` + strings.Repeat("x", 1001) + `"}`, 400, "bad_note"},
		{"unknown item", "POST", "/api/v1/items/0000000000000000-0000-00000000/label", `{"class":"crack"}`, 404, "not_found"},
		{"unknown item view", "GET", "/api/v1/items/nope", nil, 404, "not_found"},
		{"bad level", "POST", "/api/v1/cameras/cam1/level", `{"level":"max"}`, 400, "bad_level"},
		{"bad limit", "GET", "/api/v1/queue?limit=-3", nil, 400, "bad_request"},
		{"bad audit", "GET", "/api/v1/queue?audit=maybe", nil, 400, "bad_request"},
		{"undo nothing", "POST", item + "/undo", nil, 404, "not_found"},
		{"no route", "GET", "/api/v1/nothing", nil, 404, "no_route"},
		{"too many excludes", "POST", "/api/v1/next", `{"exclude":[` + strings.Repeat(`"x",`, 100) + `"x"]}`, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := c.raw(tc.method, tc.path, tc.body, map[string]string{csrfHeader: c.csrf})
			var e apiError
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("%d, not a JSON error: %s", code, b)
			}
			if code != tc.code || e.Code != tc.errCode || e.Error == "" {
				t.Errorf("= %d %+v, want %d %s with a message", code, e, tc.code, tc.errCode)
			}
		})
	}
	if _, err := st.GetLabel(ids[0]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a bad request wrote a label: %v", err)
	}
}

func TestAPINoStoreNoLine(t *testing.T) {
	s := openServer(t, Options{Auth: Auth{Mode: AuthOpen}})
	c := newClient(t, s)
	var e apiError
	if code := c.do("POST", "/api/v1/next", map[string]any{}, &e); code != 503 || e.Code != "store_unavailable" {
		t.Errorf("next without store = %d %+v", code, e)
	}
	if code := c.do("POST", "/api/v1/cameras/cam1/level", map[string]string{"level": "full"}, &e); code != 503 || e.Code != "line_not_running" {
		t.Errorf("level without line = %d %+v", code, e)
	}
	var lv liveView
	if code := c.do("GET", "/api/v1/live", nil, &lv); code != 200 || lv.Running {
		t.Errorf("live without line = %d %+v", code, lv)
	}
}

// fakeModels stands for the model lifecycle (agent/lifecycle, not written yet).
type fakeModels struct{ promoted []string }

func (m *fakeModels) Shadow(cam string) (ShadowStatus, error) {
	return ShadowStatus{Active: store.ModelRef{Name: "tilenet", Version: "1.0.0"}, Shadow: store.ModelRef{Name: "tilenet", Version: "1.1.0"}, Parts: 500, Agreement: 0.982}, nil
}
func (m *fakeModels) Promote(ctx context.Context, cam, by string) error {
	m.promoted = append(m.promoted, cam+" by "+by)
	return nil
}
func (m *fakeModels) Rollback(ctx context.Context, cam, by string) error {
	return ErrNotAvailable
}

func TestAPIModels(t *testing.T) {
	m := &fakeModels{}
	s := openServer(t, Options{Auth: testAuth(t), Models: m, Line: newFakeLine("cam1")})
	c := newClient(t, s)
	c.login("sue", "eus-pw")
	var sh ShadowStatus
	if code := c.do("GET", "/api/v1/cameras/cam1/shadow", nil, &sh); code != 200 || sh.Agreement != 0.982 {
		t.Errorf("shadow = %d %+v", code, sh)
	}
	if code := c.do("POST", "/api/v1/cameras/cam1/promote", nil, nil); code != 200 || len(m.promoted) != 1 || m.promoted[0] != "cam1 by sue" {
		t.Errorf("promote = %d %v", code, m.promoted)
	}
	var e apiError
	if code := c.do("POST", "/api/v1/cameras/cam1/rollback", nil, &e); code != 501 || e.Code != "not_available" {
		t.Errorf("rollback = %d %+v", code, e)
	}
}

// TestAPIEvents: the event stream carries a snapshot, then the line's events.
func TestAPIEvents(t *testing.T) {
	line := newFakeLine("cam1")
	s := openServer(t, Options{Auth: Auth{Mode: AuthOpen}, Line: line})
	resp, err := http.Get("http://" + s.Addr() + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	next := func() (string, string) {
		var ev, data string
		for {
			l, err := rd.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			l = strings.TrimRight(l, "\n")
			switch {
			case strings.HasPrefix(l, "event: "):
				ev = l[7:]
			case strings.HasPrefix(l, "data: "):
				data = l[6:]
			case l == "" && ev != "":
				return ev, data
			}
		}
	}
	if ev, data := next(); ev != "live" || !strings.Contains(data, `"cam1"`) {
		t.Fatalf("first event %s %s", ev, data)
	}
	// The subscription is made before the first snapshot is sent.
	line.decide(Decision{ID: "x1", Camera: "cam1", Time: time.Now(), Verdict: policy.Reject, Reason: policy.ReasonConfidentReject, Top: "crack", P: 0.97})
	line.alarm("cam1", Alarm{Name: "drift", Active: true, Score: 0.31, Detail: "brightness"})
	seen := map[string]string{}
	for len(seen) < 2 {
		ev, data := next()
		if ev != "live" {
			seen[ev] = data
		}
	}
	if !strings.Contains(seen["decision"], `"verdict":"reject"`) || !strings.Contains(seen["alarm"], `"drift"`) {
		t.Errorf("events = %v", seen)
	}
}
