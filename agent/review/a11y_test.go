package review

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// a11yJS checks the visible page: every control and image has an accessible
// name, no positive tabindex, and text contrast is at least 4.5:1 (3:1 for
// large text; disabled controls are exempt, as WCAG 1.4.3 allows). It
// returns the problems found, one per line.
const a11yJS = `(() => {
  const out = [];
  const visible = (e) => { const r = e.getBoundingClientRect(); const s = getComputedStyle(e); return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none"; };
  const desc = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.split(" ").join(".") : "");
  const name = (e) => (e.getAttribute("aria-label") || "").trim()
    || (e.getAttribute("aria-labelledby") || "").split(" ").map((id) => (document.getElementById(id) || {}).textContent || "").join(" ").trim()
    || (e.labels && e.labels.length ? [...e.labels].map((l) => l.textContent).join(" ").trim() : "")
    || (e.tagName === "IMG" ? (e.getAttribute("alt") || "") : "")
    || (["BUTTON", "A"].includes(e.tagName) ? e.textContent.trim() : "")
    || (e.getAttribute("title") || "");
  for (const e of document.querySelectorAll("button, input, select, textarea, a[href], img, [tabindex]")) {
    if (!visible(e)) continue;
    if (!name(e)) out.push("no accessible name: " + desc(e));
    if (e.tabIndex > 0) out.push("positive tabindex: " + desc(e));
  }
  const rgb = (c) => { const m = c.match(/[\d.]+/g).map(Number); return { r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1 }; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bgOf = (e) => { for (let n = e; n && n.nodeType === 1; n = n.parentElement) { const c = rgb(getComputedStyle(n).backgroundColor); if (c.a > 0.5) return c; } return { r: 255, g: 255, b: 255, a: 1 }; };
  for (const e of document.querySelectorAll("body *")) {
    if (!visible(e) || e.closest("[disabled]")) continue;
    const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const s = getComputedStyle(e);
    const fg = rgb(s.color), bg = bgOf(e);
    const l1 = lum(fg), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const px = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
    const need = px >= 24 || (bold && px >= 18.66) ? 3 : 4.5;
    if (ratio < need) out.push("contrast " + ratio.toFixed(2) + " < " + need + ": " + desc(e) + " " + JSON.stringify(e.textContent.trim().slice(0, 30)));
  }
  return out.join("\n");
})()`

func checkA11y(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	if p := eval[string](t, ctx, a11yJS); p != "" {
		t.Errorf("%s: accessibility problems:\n%s", page, p)
	}
}

// TestAccessibility checks labels, focus order and contrast on the login
// page, the review page, the live view and the supervisor view.
func TestAccessibility(t *testing.T) {
	ctx := browser(t)
	st := openStore(t, true)
	putDeferred(t, st, 3)
	line := newFakeLine("cam1")
	s := openServer(t, Options{Store: st, Line: line, Auth: testAuth(t)})
	base := "http://" + s.Addr()
	step(t, ctx, "open the UI", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#login-user"))
	checkA11y(t, ctx, "login")

	step(t, ctx, "log in", chromedp.SendKeys("#login-user", "sue"), chromedp.SendKeys("#login-pass", "eus-pw"), chromedp.Click("#login-submit"))
	waitFor(t, ctx, "item", `!document.getElementById("item").hidden && document.querySelectorAll("#classes button").length === 6`)
	checkA11y(t, ctx, "review")

	// Focus order: Tab from the top walks the header, the filters, the
	// image, the class buttons (1..6 in order), then accept, skip.
	step(t, ctx, "focus the first tab", chromedp.Focus("#tab-review"))
	order := []string{eval[string](t, ctx, `document.activeElement.id`)}
	for range 15 {
		step(t, ctx, "tab", chromedp.KeyEvent(kb.Tab))
		order = append(order, eval[string](t, ctx, `document.activeElement.id || document.activeElement.tagName`))
	}
	got := strings.Join(order, " ")
	want := "tab-review tab-live tab-super logout f-camera f-reason heat-toggle stage cls-1 cls-2 cls-3 cls-4 cls-5 cls-6 accept skip"
	if got != want {
		t.Errorf("focus order:\n got %s\nwant %s", got, want)
	}

	step(t, ctx, "live", chromedp.Click("#tab-live"), chromedp.WaitVisible(".cam"))
	checkA11y(t, ctx, "live")
	step(t, ctx, "supervisor", chromedp.Click("#tab-super"), chromedp.WaitVisible("#lvl-cam1"))
	waitFor(t, ctx, "shadow line", `!document.querySelector("#super-cams").textContent.includes("…")`)
	checkA11y(t, ctx, "supervisor")
}
