package camera

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linesight/linesight/sync/broker"
)

// eventLog collects a camera's events.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.events = append(l.events, e); l.mu.Unlock() }

// snapshot copies the events so far (the camera may still be adding).
func (l *eventLog) snapshot() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func (l *eventLog) count(k EventKind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func synthSpec(id string) Spec {
	s := DefaultSpec(id)
	s.Source.Synthetic = testSynth()
	s.Trigger.FPS = 0
	return s
}

func triggeredSpec(id string) Spec {
	s := synthSpec(id)
	s.Trigger = TriggerSpec{Mode: TriggerExternal, Deadline: 10 * time.Second}
	s.Queue = QueueSpec{Size: 4, Policy: FailSafe}
	return s
}

// drain reads frames until the camera reports the end; they are closed
// when the test ends.
func drain(t *testing.T, c *Camera) []*Frame {
	t.Helper()
	var out []*Frame
	t.Cleanup(func() {
		for _, f := range out {
			f.Close()
		}
	})
	for {
		f, err := c.Next(testCtx(t))
		if err != nil {
			if !errors.Is(err, ErrClosed) && !errors.Is(err, io.EOF) {
				t.Fatalf("drain: %v", err)
			}
			return out
		}
		out = append(out, f)
	}
}

func TestCameraFreeRunDropsOldest(t *testing.T) {
	noLeakedMats(t)
	spec := synthSpec("free")
	spec.Queue = QueueSpec{Size: 3, Policy: DropOldest}
	spec.ROI = &Rect{X: 0, Y: 0, W: 100, H: 60}
	spec.Rotate = 90
	var ev eventLog
	c, err := Open(spec, Options{OnEvent: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	// nobody reads: the queue fills and the oldest frames are dropped
	waitFor(t, "dropped frames", func() bool { return c.Stats().Dropped > 5 })
	c.Close()
	frames := drain(t, c)
	if len(frames) != 3 {
		t.Errorf("queued after close: %d frames, want the queue size 3", len(frames))
	}
	st := c.Stats()
	if st.Frames != st.Dropped+3 || ev.count(EventDropped) == 0 || st.Late != 0 {
		t.Errorf("stats %+v: want frames = dropped + 3, dropped events, nothing late", st)
	}
	for i, f := range frames {
		if i > 0 && f.Seq <= frames[i-1].Seq {
			t.Errorf("frames out of order: seq %d after %d", f.Seq, frames[i-1].Seq)
		}
		if f.CameraID != "free" || f.Truth == "" || f.PartID != "" {
			t.Errorf("frame %+v: want camera free, a ground truth, no part", f)
		}
	}
	if _, err := c.Next(testCtx(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after drain: %v, want ErrClosed", err)
	}
}

func TestCameraFreeRunROIRotate(t *testing.T) {
	noLeakedMats(t)
	spec := synthSpec("roi")
	spec.ROI = &Rect{X: 10, Y: 0, W: 100, H: 60}
	spec.Rotate = 90
	c, err := Open(spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Next(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if f.Mat.Cols() != 60 || f.Mat.Rows() != 100 || f.Mask.Cols() != 60 || f.Mask.Rows() != 100 {
		t.Errorf("cropped 100x60 and rotated: got image %dx%d mask %dx%d, want 60x100", f.Mat.Cols(), f.Mat.Rows(), f.Mask.Cols(), f.Mask.Rows())
	}
	f.Close()
	c.Close()
	c.Discard()
}

func TestCameraFileEnds(t *testing.T) {
	noLeakedMats(t)
	dir := t.TempDir()
	path := dir + "/v.avi"
	writeVideo(t, path, 5, 32, 32)
	spec := DefaultSpec("file")
	spec.Source = SourceSpec{Kind: KindFile, Path: path, Pace: "fast"}
	spec.Trigger.FPS = 0
	spec.Queue.Size = 10
	c, err := Open(spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n int
	for {
		f, err := c.Next(testCtx(t))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		f.Close()
	}
	if n != 5 {
		t.Errorf("read %d frames from a 5-frame file", n)
	}
}

func TestCameraFolderSkipsBadImages(t *testing.T) {
	noLeakedMats(t)
	dir := t.TempDir()
	writeFile(t, dir+"/a.jpg", testJPEG(t, 32, 32, 1))
	writeFile(t, dir+"/b.jpg", []byte("garbage"))
	writeFile(t, dir+"/c.jpg", nil)
	writeFile(t, dir+"/d.jpg", testJPEG(t, 32, 32, 2))
	spec := DefaultSpec("folder")
	spec.Source = SourceSpec{Kind: KindFolder, Path: dir}
	spec.Trigger.FPS = 0
	var ev eventLog
	c, err := Open(spec, Options{OnEvent: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frames := drain(t, c)
	if len(frames) != 2 || frames[0].Meta["file"] != "a.jpg" || frames[1].Meta["file"] != "d.jpg" {
		t.Errorf("got %d frames, want a.jpg and d.jpg", len(frames))
	}
	if st := c.Stats(); st.DecodeErrors != 2 || ev.count(EventDecode) != 2 || ev.count(EventEnd) != 1 {
		t.Errorf("decode errors %d, events decode %d end %d; want 2, 2, 1", st.DecodeErrors, ev.count(EventDecode), ev.count(EventEnd))
	}
}

func TestCameraTriggeredNeverDrops(t *testing.T) {
	noLeakedMats(t)
	spec := triggeredSpec("trig")
	spec.Queue.Size = 1
	c, err := Open(spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// nobody reads: one part keeps its image, the rest are passed on late
	for i := range 5 {
		if err := c.Trigger(Part{ID: fmt.Sprintf("P-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// a part already past its deadline when it arrives
	if err := c.Trigger(Part{ID: "P-late", Received: time.Now().Add(-time.Minute), Deadline: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "six parts queued", func() bool { return c.Stats().QueueLen == 6 })
	c.Close()
	var got []string
	var images, queueFull int
	for _, f := range drain(t, c) {
		got = append(got, f.PartID)
		if f.HasImage() {
			images++
			if f.Late {
				t.Errorf("part %s has its image but is flagged late (%s)", f.PartID, f.LateReason)
			}
		} else if !f.Late {
			t.Errorf("part %s has no image and is not flagged late", f.PartID)
		}
		if f.LateReason == "queue full" {
			queueFull++
		}
		if f.PartID == "P-late" && (!f.Late || f.LateReason != "deadline passed before capture") {
			t.Errorf("P-late: late %v reason %q", f.Late, f.LateReason)
		}
	}
	if strings.Join(got, ",") != "P-0,P-1,P-2,P-3,P-4,P-late" {
		t.Errorf("parts out: %v, want every part in trigger order", got)
	}
	if images != 1 || queueFull != 4 {
		t.Errorf("%d with an image and %d queue-full; want 1 and 4", images, queueFull)
	}
	if st := c.Stats(); st.Late != 5 || st.Triggers != 6 || st.Frames != 6 {
		t.Errorf("stats %+v: want 6 triggers, 6 frames, 5 late", st)
	}
	if err := c.Trigger(Part{ID: "after"}); !errors.Is(err, ErrClosed) {
		t.Errorf("trigger after Close: %v, want ErrClosed", err)
	}
}

func TestCameraTriggerErrors(t *testing.T) {
	noLeakedMats(t)
	free, err := Open(synthSpec("free"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { free.Close(); free.Discard() }()
	if err := free.Trigger(Part{ID: "x"}); !errors.Is(err, ErrNotTriggered) {
		t.Errorf("free-run trigger: %v, want ErrNotTriggered", err)
	}
	trig, err := Open(triggeredSpec("t"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { trig.Close(); trig.Discard() }()
	for _, id := range []string{"", "  ", strings.Repeat("x", 200), "a\x00b"} {
		if err := trig.Trigger(Part{ID: id}); !errors.Is(err, ErrBadTrigger) {
			t.Errorf("part id %q: %v, want ErrBadTrigger", id, err)
		}
	}
	bad := triggeredSpec("bad")
	bad.Queue.Policy = DropOldest
	if _, err := Open(bad, Options{}); err == nil || !strings.Contains(err.Error(), "fail-safe") {
		t.Errorf("triggered camera with drop-oldest: %v, want a validation error naming fail-safe", err)
	}
}

func TestTriggerHTTP(t *testing.T) {
	noLeakedMats(t)
	trig, err := Open(triggeredSpec("left"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	free, err := Open(synthSpec("top"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { free.Close(); free.Discard() }()
	cams := map[string]Triggerer{"left": trig, "top": free}
	mux := http.NewServeMux()
	mux.Handle(TriggerRoute, TriggerHandler(func(id string) (Triggerer, bool) { c, ok := cams[id]; return c, ok }))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		camera, body string
		want         int
	}{
		{"left", `{"part_id":"P-1","deadline_ms":5000}`, http.StatusAccepted},
		{"left", `{"part_id":"P-2"}`, http.StatusAccepted},
		{"left", `{"part_id":""}`, http.StatusBadRequest},
		{"left", `not json`, http.StatusBadRequest},
		{"left", `{"part_id":"P-3","deadline_ms":-1}`, http.StatusBadRequest},
		{"left", `{"part":"P-3"}`, http.StatusBadRequest},
		{"right", `{"part_id":"P-4"}`, http.StatusNotFound},
		{"top", `{"part_id":"P-5"}`, http.StatusConflict},
	}
	for _, tt := range tests {
		resp, err := http.Post(srv.URL+"/api/v1/cameras/"+tt.camera+"/trigger", "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("POST %s %s: %d %v, want %d", tt.camera, tt.body, resp.StatusCode, body, tt.want)
		}
		if tt.want != http.StatusAccepted && body["error"] == "" {
			t.Errorf("POST %s %s: no error message", tt.camera, tt.body)
		}
	}
	if resp, _ := http.Get(srv.URL + "/api/v1/cameras/left/trigger"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
	for _, want := range []string{"P-1", "P-2"} {
		f, err := trig.Next(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if f.PartID != want || !f.HasImage() || f.Late || f.Deadline.IsZero() {
			t.Errorf("got part %q image %v late %v deadline %v, want %s captured in time", f.PartID, f.HasImage(), f.Late, f.Deadline, want)
		}
		if want == "P-1" && f.Deadline.Sub(f.Triggered) != 5*time.Second {
			t.Errorf("P-1 deadline %v after trigger, want 5s", f.Deadline.Sub(f.Triggered))
		}
		f.Close()
	}
	trig.Close()
	if n := len(drain(t, trig)); n != 0 {
		t.Errorf("%d unexpected frames", n)
	}
}

func TestTriggerMQTT(t *testing.T) {
	noLeakedMats(t)
	b, err := broker.Open(broker.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cam, err := Open(triggeredSpec("left"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cam.Close(); cam.Discard() }()
	tr, err := OpenMQTTTrigger(MQTTTriggerOptions{Broker: b.URL(), Site: "plant1", Device: "line-07",
		Lookup: func(id string) (Triggerer, bool) { return cam, id == "left" }})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()

	plc := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("plc"))
	if tok := plc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("plc connect: %v", tok.Error())
	}
	defer plc.Disconnect(100)
	pub := func(camera, payload string) {
		tok := plc.Publish(TriggerTopic("plant1", "line-07", camera), 1, false, payload)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	pub("left", `{"part_id":"P-100","deadline_ms":3000}`)
	f, err := cam.Next(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if f.PartID != "P-100" || f.Late || !f.HasImage() || f.Deadline.Sub(f.Triggered) != 3*time.Second {
		t.Errorf("got part %q late %v image %v, want P-100 in time with a 3s deadline", f.PartID, f.Late, f.HasImage())
	}
	f.Close()
	pub("left", `{"oops"`)
	pub("right", `{"part_id":"P-101"}`)
	waitFor(t, "two rejected triggers", func() bool { return tr.Rejected() == 2 })
	if tr.Accepted() != 1 {
		t.Errorf("accepted %d, want 1", tr.Accepted())
	}
	if _, err := OpenMQTTTrigger(MQTTTriggerOptions{Broker: b.URL(), Site: "a/b", Device: "d", Lookup: func(string) (Triggerer, bool) { return nil, false }}); err == nil {
		t.Error("a site with '/' was accepted")
	}
}

// A stream that goes down and comes back: the outage is reported, the
// camera reopens it with backoff and frames flow again, with no restart.
func TestCameraOutageAndRecovery(t *testing.T) {
	noLeakedMats(t)
	jpg := testJPEG(t, 64, 48, 1)
	var stop atomic.Bool
	srv := startServerAt(t, "127.0.0.1:0", mjpegHandler(jpg, 5*time.Millisecond, &stop))
	addr := srv.Listener.Addr().String()
	spec := DefaultSpec("net")
	spec.Source = SourceSpec{Kind: KindURL, URL: srv.URL + "/stream.mjpg"}
	spec.Trigger.FPS = 0
	spec.Retry = RetrySpec{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	spec.Stall = 5 * time.Second
	var ev eventLog
	c, err := Open(spec, Options{OnEvent: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close(); c.Discard() }()
	ctx := testCtx(t)
	next := func() {
		t.Helper()
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Mat.Cols() != 64 {
			t.Errorf("frame %dx%d, want 64x48", f.Mat.Cols(), f.Mat.Rows())
		}
		f.Close()
	}
	next()

	// the server goes away: connections cut, port closed
	stop.Store(true)
	srv.CloseClientConnections()
	srv.Close()
	waitFor(t, "the outage to be reported", func() bool { return ev.count(EventDown) > 0 })
	waitFor(t, "failed reopen attempts", func() bool { return c.Stats().Retries >= 2 })
	if c.Stats().Up {
		t.Error("camera reports up while the stream is down")
	}
	c.Discard() // forget frames from before the outage

	// the server comes back on the same address
	stop.Store(false)
	srv2 := startServerAt(t, addr, mjpegHandler(jpg, 5*time.Millisecond, nil))
	defer closeServer(srv2)
	waitFor(t, "recovery", func() bool { return c.Stats().Recoveries == 1 })
	next()
	st := c.Stats()
	if !st.Up || st.Outages != 1 || ev.count(EventUp) != 2 || ev.count(EventRetry) < 2 {
		t.Errorf("stats %+v, up events %d, retry events %d: want up after one outage with retries", st, ev.count(EventUp), ev.count(EventRetry))
	}
	for _, e := range ev.snapshot() {
		if e.Kind == EventRetry && (e.Backoff <= 0 || e.Backoff > spec.Retry.Max) {
			t.Errorf("retry event with backoff %v outside (0, %v]", e.Backoff, spec.Retry.Max)
		}
	}
}

// A stream that stays connected but stops sending is caught by the
// watchdog and treated as an outage.
func TestCameraStallWatchdog(t *testing.T) {
	noLeakedMats(t)
	jpg := testJPEG(t, 64, 48, 1)
	release := make(chan struct{})
	var stall atomic.Bool
	// streams frames, then, once stall is set, keeps the connection open
	// and sends nothing more (a hung encoder, a half-dead switch)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mw := multipart.NewWriter(w)
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+mw.Boundary())
		for !stall.Load() {
			hdr := textproto.MIMEHeader{}
			hdr.Set("Content-Type", "image/jpeg")
			hdr.Set("Content-Length", fmt.Sprint(len(jpg)))
			pw, err := mw.CreatePart(hdr)
			if err != nil {
				return
			}
			pw.Write(jpg)
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := startServerAt(t, "127.0.0.1:0", h)
	defer closeServer(srv)
	defer close(release)
	spec := DefaultSpec("stall")
	spec.Source = SourceSpec{Kind: KindURL, URL: srv.URL + "/s.mjpg"}
	spec.Trigger.FPS = 0
	spec.Stall = 300 * time.Millisecond
	spec.Retry = RetrySpec{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	var ev eventLog
	c, err := Open(spec, Options{OnEvent: ev.add})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Next(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	stall.Store(true)
	waitFor(t, "the watchdog", func() bool { return c.Stats().Stalls >= 1 })
	if ev.count(EventStalled) == 0 || c.Stats().Outages < 1 {
		t.Errorf("stall not reported: %+v", c.Stats())
	}
	// unblock the hung FFmpeg read so Close can finish
	srv.CloseClientConnections()
	c.Close()
	c.Discard()
}

// A triggered camera whose stream is down answers every part, late.
func TestCameraDownPartsPassedOnLate(t *testing.T) {
	noLeakedMats(t)
	srv := startServerAt(t, "127.0.0.1:0", http.NotFoundHandler())
	url := srv.URL + "/none.mjpg"
	srv.Close()
	spec := triggeredSpec("down")
	spec.Source = SourceSpec{Kind: KindURL, URL: url}
	spec.Retry = RetrySpec{Initial: 50 * time.Millisecond, Max: time.Second}
	var ev eventLog
	c, err := Open(spec, Options{OnEvent: ev.add})
	if err != nil {
		t.Fatalf("a stream that is down at start must not fail Open: %v", err)
	}
	defer func() { c.Close(); c.Discard() }()
	if err := c.Trigger(Part{ID: "P-9"}); err != nil {
		t.Fatal(err)
	}
	f, err := c.Next(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.PartID != "P-9" || !f.Late || f.HasImage() || f.LateReason != "camera unavailable" {
		t.Errorf("got part %q late %v reason %q image %v; want P-9 late, camera unavailable", f.PartID, f.Late, f.LateReason, f.HasImage())
	}
	// The late event follows the frame into the queue: the reader may
	// have the frame before the event is out.
	waitFor(t, "the late event", func() bool { return ev.count(EventLate) >= 1 })
	if ev.count(EventDown) != 1 || ev.count(EventLate) != 1 {
		t.Errorf("events down %d late %d, want 1 and 1", ev.count(EventDown), ev.count(EventLate))
	}
}

func TestQueueFailSafeExpiresOverdue(t *testing.T) {
	noLeakedMats(t)
	q := NewQueue(2, FailSafe)
	now := time.Now()
	q.now = func() time.Time { return now }
	mk := func(id string, deadline time.Time) *Frame {
		s, _ := NewSyntheticSource("q", testSynth())
		f, _ := s.Read(context.Background())
		f.PartID, f.Deadline = id, deadline
		return f
	}
	q.Push(mk("old", now.Add(-time.Millisecond))) // overdue
	q.Push(mk("ok", now.Add(time.Second)))
	res, _ := q.Push(mk("new", now.Add(time.Second)))
	if res.Expired != 1 || res.Late {
		t.Errorf("push into a full queue with an overdue part: %+v, want that part expired and the new one kept", res)
	}
	var got bytes.Buffer
	for range 3 {
		f, _ := q.Pop(context.Background())
		fmt.Fprintf(&got, "%s:%v:%v ", f.PartID, f.HasImage(), f.Late)
		f.Close()
	}
	if got.String() != "old:false:true ok:true:false new:true:false " {
		t.Errorf("popped %s", got.String())
	}
	if q.Late() != 1 {
		t.Errorf("queue late count %d, want 1", q.Late())
	}
	q.Close(nil)
	if _, err := q.Pop(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("pop from a closed empty queue: %v", err)
	}
	if _, err := q.Push(mk("x", now)); !errors.Is(err, ErrClosed) {
		t.Errorf("push to a closed queue: %v", err)
	}
}
