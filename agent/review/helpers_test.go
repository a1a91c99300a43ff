package review

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/agent/store"
	"github.com/linesight/linesight/camera"
	"golang.org/x/crypto/bcrypt"
)

var testClasses = camera.Classes

// openStore opens a real bbolt store in t.TempDir().
func openStore(tb testing.TB, noSync bool) *store.Store {
	tb.Helper()
	st, err := store.Open(tb.TempDir()+"/ls.db", store.Options{RetentionEvery: -1, NoSync: noSync})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// putDeferred stores n deferred parts drawn by the synthetic generator,
// JPEG-encoded, each with a heatmap made from the defect mask (as a model's
// class-activation map would look), round-robin over cams. It returns
// their IDs, oldest first.
func putDeferred(tb testing.TB, st *store.Store, n int, cams ...string) []string {
	tb.Helper()
	if len(cams) == 0 {
		cams = []string{"cam1"}
	}
	g, err := camera.NewGenerator(camera.SyntheticSpec{Seed: 7, Size: 256, DefectRate: 0.8, ExposureMin: 0.9, ExposureMax: 1.1})
	if err != nil {
		tb.Fatal(err)
	}
	tile := g.NewTile()
	base := time.Now().Add(-time.Hour)
	ids := make([]string, n)
	next := uint64(0)
	for i := range n {
		// Deferred parts are mostly doubtful defects: skip clean tiles.
		for g.Generate(next, tile); tile.Class == camera.ClassFree; g.Generate(next, tile) {
			next++
		}
		next++
		var buf bytes.Buffer
		img := &image.Gray{Pix: tile.Pix, Stride: tile.W, Rect: image.Rect(0, 0, tile.W, tile.H)}
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
			tb.Fatal(err)
		}
		at := base.Add(time.Duration(i) * time.Second)
		in := &store.Inspection{ID: st.NewID(at), Time: at, Camera: cams[i%len(cams)], PartID: fmt.Sprintf("p%04d", next),
			Model: store.ModelRef{Name: "tilenet", Version: "1.0.0"}, Scores: scoresFor(tile.Class), Top: tile.Class,
			Verdict: policy.Defer, Reason: policy.ReasonUncertain, Detail: "P(good)=0.41 between 0.20 and 0.90",
			Level: policy.Partial, ModelVerdict: policy.Defer, Review: true,
			Heatmap: heatFromMask(tile.Mask, tile.W, tile.H, 12), Width: tile.W, Height: tile.H}
		if err := st.Put(context.Background(), in, buf.Bytes()); err != nil {
			tb.Fatal(err)
		}
		ids[i] = in.ID
	}
	return ids
}

// scoresFor makes a plausible score vector with class top first-ranked.
func scoresFor(top string) []store.Score {
	s := make([]store.Score, len(testClasses))
	for i, c := range testClasses {
		p := 0.05
		if c == top {
			p = 0.55
		} else if c == camera.ClassFree {
			p = 0.2
		}
		s[i] = store.Score{Label: c, P: p}
	}
	return s
}

func heatFromMask(mask []byte, w, h, cells int) *store.Heatmap {
	hm := &store.Heatmap{W: cells, H: cells, V: make([]byte, cells*cells)}
	sums := make([]int, cells*cells)
	for y := range h {
		for x := range w {
			sums[(y*cells/h)*cells+x*cells/w] += int(mask[y*w+x])
		}
	}
	maxv := 1
	for _, v := range sums {
		maxv = max(maxv, v)
	}
	for i, v := range sums {
		hm.V[i] = byte(20 + 235*v/maxv)
	}
	return hm
}

// fakeLine stands for the pipeline (agent/pipeline), which implements Line
// for real; the tests need a line whose state they control.
type fakeLine struct {
	mu     sync.Mutex
	cams   []CameraStatus
	subs   map[int]chan Event
	nextID int
}

var _ Line = (*fakeLine)(nil)

func newFakeLine(ids ...string) *fakeLine {
	l := &fakeLine{subs: map[int]chan Event{}}
	for _, id := range ids {
		l.cams = append(l.cams, CameraStatus{ID: id, Source: "synthetic", Running: true, State: "running",
			Level: policy.Partial, SetLevel: policy.Partial, Model: store.ModelRef{Name: "tilenet", Version: "1.0.0"},
			Counts:    map[policy.Verdict]uint64{policy.Pass: 940, policy.Reject: 41, policy.Defer: 19},
			DeferRate: 0.019, Throughput: 12.5, LatencyP50: 18 * time.Millisecond, LatencyP99: 41 * time.Millisecond,
			Drift: Drift{Score: 0.04, Detail: "brightness KS"}})
	}
	return l
}

func (l *fakeLine) Cameras() []CameraStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]CameraStatus, len(l.cams))
	for i, c := range l.cams {
		c.Last = append([]Decision(nil), c.Last...)
		out[i] = c
	}
	return out
}

func (l *fakeLine) SetLevel(ctx context.Context, cam string, lv policy.Level, by string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.cams {
		if l.cams[i].ID == cam {
			from := l.cams[i].Level
			l.cams[i].Level, l.cams[i].SetLevel = lv, lv
			l.publishLocked(Event{Kind: EventLevel, Time: time.Now(), Camera: cam, Level: &LevelEvent{From: from, To: lv, By: by}})
			return nil
		}
	}
	return fmt.Errorf("set level of %s: %w", cam, ErrUnknownCamera)
}

func (l *fakeLine) Subscribe(buffer int) (<-chan Event, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan Event, buffer)
	id := l.nextID
	l.nextID++
	l.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.subs, id)
			l.mu.Unlock()
			close(ch)
		})
	}
}

// decide records a decision as the pipeline would and publishes it.
func (l *fakeLine) decide(d Decision) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.cams {
		if l.cams[i].ID == d.Camera {
			l.cams[i].Counts[d.Verdict]++
			l.cams[i].Last = append([]Decision{d}, l.cams[i].Last...)
			if len(l.cams[i].Last) > 8 {
				l.cams[i].Last = l.cams[i].Last[:8]
			}
		}
	}
	l.publishLocked(Event{Kind: EventDecision, Time: d.Time, Camera: d.Camera, Decision: &d})
}

func (l *fakeLine) alarm(cam string, a Alarm) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.cams {
		if l.cams[i].ID == cam && a.Name == "drift" {
			l.cams[i].Drift = Drift{Alarm: a.Active, Score: a.Score, Detail: a.Detail}
		}
	}
	l.publishLocked(Event{Kind: EventAlarm, Time: time.Now(), Camera: cam, Alarm: &a})
}

func (l *fakeLine) publishLocked(ev Event) {
	for _, ch := range l.subs {
		select {
		case ch <- ev:
		default: // never block the line
		}
	}
}

// Accounts used by the tests; passwords are the names reversed.
var testUsers = []struct{ name, role, pass string }{
	{"alice", RoleInspector, "ecila-pw"},
	{"bob", RoleInspector, "bob-pw"},
	{"sue", RoleSupervisor, "eus-pw"},
}

func testAuth(tb testing.TB) Auth {
	tb.Helper()
	a := Auth{Mode: AuthUsers, SessionKey: "test-session-key-0123456789abcdef"}
	for _, u := range testUsers {
		h, err := bcrypt.GenerateFromPassword([]byte(u.pass), bcrypt.MinCost)
		if err != nil {
			tb.Fatal(err)
		}
		a.Users = append(a.Users, User{Name: u.name, Role: u.role, PasswordHash: string(h)})
	}
	return a
}

func openServer(tb testing.TB, o Options) *Server {
	tb.Helper()
	o.Listen = "127.0.0.1:0"
	if o.Classes == nil {
		o.Classes = testClasses
	}
	s, err := Open(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

// client is one browser-like API client: a cookie jar and the CSRF token.
type client struct {
	tb   testing.TB
	base string
	hc   *http.Client
	csrf string
}

func newClient(tb testing.TB, s *Server) *client {
	jar, _ := cookiejar.New(nil)
	c := &client{tb: tb, base: "http://" + s.Addr(), hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	var sess sessionView
	if code := c.do("GET", "/api/v1/session", nil, &sess); code != 200 {
		tb.Fatalf("session: %d", code)
	}
	c.csrf = sess.CSRF
	return c
}

func (c *client) login(name, pass string) {
	c.tb.Helper()
	if code := c.do("POST", "/api/v1/login", map[string]string{"user": name, "password": pass}, nil); code != 200 {
		c.tb.Fatalf("login %s: %d", name, code)
	}
}

// do sends a request (JSON body if body is not nil, with the CSRF token)
// and decodes the answer into out when it is not nil.
func (c *client) do(method, path string, body, out any) int {
	c.tb.Helper()
	code, b := c.raw(method, path, body, map[string]string{csrfHeader: c.csrf})
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			c.tb.Fatalf("%s %s: %d, body not JSON: %v: %s", method, path, code, err, b)
		}
	}
	return code
}

func (c *client) raw(method, path string, body any, hdr map[string]string) (int, []byte) {
	c.tb.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
