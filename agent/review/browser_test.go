package review

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/linesight/linesight/agent/policy"
	"github.com/linesight/linesight/agent/store"
)

// browser starts headless Chromium (Debian's chromium; scripts/setup.sh
// installs it) and returns a tab context. The test is skipped, saying why,
// only when chromium is not installed.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if lp, err := exec.LookPath(p); err == nil {
			path = lp
			break
		}
	}
	if path == "" {
		t.Skip("chromium is not installed (apt-get install chromium, or scripts/setup.sh): browser tests skipped")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-gpu", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil { // start the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shots is where screenshots go: $LINESIGHT_SCREENSHOTS, else t.TempDir().
func shots(t *testing.T) string {
	if d := os.Getenv("LINESIGHT_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

// step runs actions with a bound, so a stuck page fails the test instead of
// hanging it.
func step(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s: %v\npage text:\n%s", what, err, html)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func waitFor(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	step(t, ctx, what, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](js, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))(ctx, tg)
		return chromedp.Void{}, err
	})
}

func login(t *testing.T, ctx context.Context, base, user, pass string) {
	t.Helper()
	step(t, ctx, "open the UI", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#login-user"))
	step(t, ctx, "log in as "+user,
		chromedp.SendKeys("#login-user", user), chromedp.SendKeys("#login-pass", pass), chromedp.Click("#login-submit"))
}

// TestBrowserReview drives the real UI in headless Chromium: a request
// without a session is refused, an inspector logs in, sees a deferred item
// with its heatmap, labels it with the keyboard, lands on the next one, and
// undoes; the labels are checked in the store and its outbox.
func TestBrowserReview(t *testing.T) {
	ctx := browser(t)
	dir := shots(t)
	st := openStore(t, true)
	ids := putDeferred(t, st, 6, "cam1", "cam2")
	line := newFakeLine("cam1", "cam2")
	s := openServer(t, Options{Store: st, Line: line, Auth: testAuth(t),
		Status: func() Status { return Status{Device: "edge-07", Site: "plant-a", Model: "tilenet 1.0.0"} }})
	base := "http://" + s.Addr()

	step(t, ctx, "open the UI", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#login-user"))
	shot(t, ctx, dir, "01-login.png")
	// Without a session the API refuses, from the browser too.
	if code := eval[int](t, ctx, `fetch("/api/v1/queue").then(r => r.status)`); code != 401 {
		t.Errorf("queue without a session from the browser = %d, want 401", code)
	}
	if code := eval[int](t, ctx, `fetch("/api/v1/items/`+ids[0]+`/image").then(r => r.status)`); code != 401 {
		t.Errorf("image without a session = %d, want 401", code)
	}
	// A wrong password says so.
	step(t, ctx, "wrong password", chromedp.SendKeys("#login-user", "alice"), chromedp.SendKeys("#login-pass", "wrong"), chromedp.Click("#login-submit"))
	waitFor(t, ctx, "login error", `document.getElementById("login-error").textContent.includes("Wrong name or password")`)

	step(t, ctx, "log in", chromedp.Evaluate[chromedp.Void](`document.getElementById("login-pass").value = ""`), chromedp.SendKeys("#login-pass", "ecila-pw"), chromedp.Click("#login-submit"))
	waitFor(t, ctx, "first item shown", `!document.getElementById("item").hidden && document.getElementById("img").complete && document.getElementById("img").naturalWidth > 0`)
	first := eval[string](t, ctx, `document.getElementById("item").dataset.id`)
	if first != ids[0] {
		t.Errorf("first item %s, want the oldest %s", first, ids[0])
	}
	// The heatmap is drawn from Inspection.Heatmap (12 x 12 cells) over the image.
	if got := eval[string](t, ctx, `(() => { const c = document.getElementById("heat"); const r = c.getBoundingClientRect(), i = document.getElementById("img").getBoundingClientRect();
		const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data; let on = 0; for (let k = 3; k < px.length; k += 4) if (px[k] > 0) on++;
		return c.width + "x" + c.height + " painted=" + (on > 0) + " covers=" + (Math.abs(r.width - i.width) < 2 && Math.abs(r.height - i.height) < 2) + " shown=" + (getComputedStyle(c).display !== "none"); })()`); got != "12x12 painted=true covers=true shown=true" {
		t.Errorf("heatmap overlay: %s", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#scores li").length`); n != 6 {
		t.Errorf("top classes shown: %d, want 6", n)
	}
	if txt := eval[string](t, ctx, `document.getElementById("reason").textContent`); !strings.Contains(txt, "unsure") {
		t.Errorf("reason text %q does not say why it was deferred", txt)
	}
	shot(t, ctx, dir, "02-review-heatmap.png")
	step(t, ctx, "heatmap toggle (H)", chromedp.Focus("#stage"), chromedp.KeyEvent("h"))
	if d := eval[string](t, ctx, `getComputedStyle(document.getElementById("heat")).display`); d != "none" {
		t.Errorf("H did not hide the heatmap (display %s)", d)
	}
	shot(t, ctx, dir, "03-review-no-heatmap.png")
	step(t, ctx, "heatmap back", chromedp.KeyEvent("h"))

	// Key 4 labels the first item as classes[3].
	step(t, ctx, "label with key 4", chromedp.Focus("#stage"), chromedp.KeyEvent("4"))
	waitFor(t, ctx, "next item after label", `document.getElementById("item").dataset.id !== "`+first+`" && document.getElementById("status").textContent.startsWith("Saved")`)
	second := eval[string](t, ctx, `document.getElementById("item").dataset.id`)
	l, err := st.GetLabel(first)
	if err != nil || l.Class != testClasses[3] || l.By != "alice" {
		t.Fatalf("store label of %s = %+v, %v; want %s by alice", first, l, err, testClasses[3])
	}
	if !outboxHas(t, st, l.OutboxID()) {
		t.Errorf("label %s not in the outbox", l.OutboxID())
	}
	shot(t, ctx, dir, "04-saved-next.png")

	// Enter accepts the model's suggestion.
	sugg := eval[string](t, ctx, `document.querySelector("#classes .suggested").dataset.cls`)
	step(t, ctx, "accept with Enter", chromedp.Focus("#stage"), chromedp.KeyEvent(kb.Enter))
	waitFor(t, ctx, "third item", `document.getElementById("item").dataset.id !== "`+second+`" && document.getElementById("status").textContent.includes("`+sugg+`")`)
	if l, err := st.GetLabel(second); err != nil || l.Class != sugg || l.Suggested != sugg {
		t.Errorf("Enter label = %+v, %v; want the suggestion %s", l, err, sugg)
	}

	// U undoes it: the item comes back, the label and its outbox entry go.
	step(t, ctx, "undo with U", chromedp.KeyEvent("u"))
	waitFor(t, ctx, "undone item back", `document.getElementById("item").dataset.id === "`+second+`" && document.getElementById("status").textContent.startsWith("Undone")`)
	if _, err := st.GetLabel(second); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("label still in the store after undo: %v", err)
	}
	shot(t, ctx, dir, "05-undone.png")

	// S skips; 1 labels the next.
	step(t, ctx, "skip with S", chromedp.Focus("#stage"), chromedp.KeyEvent("s"))
	waitFor(t, ctx, "moved on after skip", `document.getElementById("item").dataset.id !== "`+second+`" && document.getElementById("status").textContent.startsWith("Skipped")`)

	// Another inspector labelled the item on screen: the page says who.
	cur := eval[string](t, ctx, `document.getElementById("item").dataset.id`)
	if err := st.Release(context.Background(), cur, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Label(context.Background(), store.LabelInput{ItemID: cur, By: "bob", Class: "free"}); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "label an item bob labelled", chromedp.Focus("#stage"), chromedp.KeyEvent("1"))
	waitFor(t, ctx, "conflict message", `document.getElementById("status").textContent.includes("by bob")`)
	shot(t, ctx, dir, "06-conflict.png")

	// Live view: pushed decisions and an alarm.
	step(t, ctx, "live view", chromedp.Click("#tab-live"), chromedp.WaitVisible(".cam"))
	for i, id := range ids[:4] {
		in, _ := st.Get(id)
		line.decide(Decision{ID: id, Camera: in.Camera, Time: time.Now(), Verdict: []policy.Verdict{policy.Pass, policy.Reject, policy.Defer, policy.Pass}[i], Top: in.Top, P: 0.9, Image: true, Latency: 20 * time.Millisecond})
	}
	line.alarm("cam2", Alarm{Name: "drift", Active: true, Score: 0.31, Detail: "brightness KS 0.31 > 0.2"})
	waitFor(t, ctx, "thumbnails and alarm", `document.querySelectorAll(".cam .thumb img").length >= 4 && document.getElementById("alarms").textContent.includes("drift raised") && document.querySelector(".badge.alarm") !== null`)
	waitFor(t, ctx, "thumbnails loaded", `[...document.querySelectorAll(".cam .thumb img")].every(i => i.complete && i.naturalWidth > 0)`)
	shot(t, ctx, dir, "07-live.png")
}

// TestBrowserSupervisor: a supervisor changes a camera's level from the UI;
// promote answers "not available yet".
func TestBrowserSupervisor(t *testing.T) {
	ctx := browser(t)
	dir := shots(t)
	st := openStore(t, true)
	putDeferred(t, st, 2)
	line := newFakeLine("cam1", "cam2")
	s := openServer(t, Options{Store: st, Line: line, Auth: testAuth(t)})
	login(t, ctx, "http://"+s.Addr(), "sue", "eus-pw")
	step(t, ctx, "supervisor tab", chromedp.WaitVisible("#tab-super"), chromedp.Click("#tab-super"), chromedp.WaitVisible("#lvl-cam2"))
	waitFor(t, ctx, "shadow says not available", `document.querySelector("#super-cams").textContent.includes("Not available yet")`)
	step(t, ctx, "set cam2 to full", chromedp.SetValue("#lvl-cam2", "full"), chromedp.Click(`button[aria-label="Apply automation level for cam2"]`))
	waitFor(t, ctx, "level applied", `document.getElementById("super-status").textContent.includes("cam2 is now at level full")`)
	if lv := line.Cameras()[1].Level; lv != policy.Full {
		t.Errorf("cam2 level = %v, want full", lv)
	}
	shot(t, ctx, dir, "08-supervisor.png")
}

// TestBrowserOpenMode: open access says so on screen.
func TestBrowserOpenMode(t *testing.T) {
	ctx := browser(t)
	dir := shots(t)
	st := openStore(t, true)
	putDeferred(t, st, 2)
	s := openServer(t, Options{Store: st, Auth: Auth{Mode: AuthOpen}})
	step(t, ctx, "open the UI", chromedp.Navigate("http://"+s.Addr()+"/"), chromedp.WaitVisible("#open-banner"), chromedp.WaitVisible("#item"))
	if txt := eval[string](t, ctx, `document.getElementById("open-banner").textContent`); !strings.Contains(txt, "no login") {
		t.Errorf("open banner %q", txt)
	}
	step(t, ctx, "live view without a line", chromedp.Click("#tab-live"), chromedp.WaitVisible("#line-down"))
	shot(t, ctx, dir, "09-open-mode-line-down.png")
}
