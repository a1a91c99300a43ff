// LineSight review UI: plain JavaScript, no build step, talks to /api/v1 only.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const st = {
    session: null, csrf: "", view: "review",
    current: null, preload: null, preloading: null,
    lastLabelled: null, busy: false, filter: { camera: "", reason: "" },
    es: null, live: null,
  };

  async function api(method, path, body) {
    const opt = { method, headers: {}, credentials: "same-origin" };
    if (method !== "GET") {
      opt.headers["X-CSRF-Token"] = st.csrf;
      opt.headers["Content-Type"] = "application/json";
      opt.body = JSON.stringify(body || {});
    }
    const r = await fetch(path, opt);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401 && path !== "/api/v1/login") { showLogin(); }
    return { ok: r.ok, status: r.status, data: data || {} };
  }

  function say(el, text, cls) {
    el.textContent = text;
    el.className = "status" + (cls ? " " + cls : "");
  }

  // ---- session and login ----
  async function start() {
    const r = await api("GET", "/api/v1/session");
    st.session = r.data;
    st.csrf = r.data.csrf;
    $("open-banner").hidden = !r.data.open_access;
    $("ephemeral-banner").hidden = !r.data.ephemeral_key;
    if (!r.data.user) { showLogin(); return; }
    showApp();
  }

  function showLogin() {
    for (const v of ["view-review", "view-live", "view-super"]) $(v).hidden = true;
    $("nav").hidden = true; $("logout").hidden = true; $("who").textContent = "";
    $("login").hidden = false;
    const open = st.session && st.session.open_access;
    $("login-pass-wrap").hidden = !!open;
    $("login-user").focus();
  }

  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await api("POST", "/api/v1/login", { user: $("login-user").value, password: $("login-pass").value });
    if (!r.ok) { $("login-error").textContent = r.data.error || "Login failed."; return; }
    $("login-error").textContent = ""; $("login-pass").value = "";
    await start();
  });

  $("logout").addEventListener("click", async () => {
    await releaseHeld();
    await api("POST", "/api/v1/logout");
    st.current = st.preload = null;
    if (st.es) { st.es.close(); st.es = null; }
    start();
  });

  function showApp() {
    const s = st.session;
    $("login").hidden = true; $("nav").hidden = false; $("logout").hidden = s.mode === "header";
    $("who").textContent = s.user.name + " (" + s.user.role + ")";
    $("device").textContent = [s.device, s.site, s.model].filter(Boolean).join(" · ");
    $("tab-super").hidden = s.user.role !== "supervisor";
    connectEvents();
    show(st.view);
  }

  // ---- views ----
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => show(b.dataset.view));
  function show(view) {
    st.view = view;
    for (const v of ["review", "live", "super"]) {
      $("view-" + v).hidden = v !== view;
      const t = $("tab-" + v);
      if (v === view) t.setAttribute("aria-current", "page"); else t.removeAttribute("aria-current");
    }
    if (view === "review" && !st.current) loadFirst();
    if (view === "live" && st.live) renderLive(st.live);
    if (view === "super") renderSuper();
  }

  // ---- review queue ----
  async function refreshFilters() {
    const r = await api("GET", "/api/v1/queue?limit=1");
    if (!r.ok) return;
    fillSelect($("f-camera"), "All cameras", r.data.by_camera, st.filter.camera);
    fillSelect($("f-reason"), "All reasons", r.data.by_reason, st.filter.reason);
    $("queue-count").textContent = r.data.total || "";
  }
  function fillSelect(sel, all, counts, value) {
    sel.textContent = "";
    sel.append(new Option(all, ""));
    for (const k of Object.keys(counts || {}).sort()) sel.append(new Option(k + " (" + counts[k] + ")", k));
    if (value && !(counts || {})[value]) sel.append(new Option(value + " (0)", value));
    sel.value = value;
  }
  $("f-camera").addEventListener("change", () => { st.filter.camera = $("f-camera").value; restart(); });
  $("f-reason").addEventListener("change", () => { st.filter.reason = $("f-reason").value; restart(); });
  $("heat-toggle").addEventListener("change", () => $("stage").classList.toggle("noheat", !$("heat-toggle").checked));
  $("reset-skips").addEventListener("click", () => loadFirst(true));

  async function releaseHeld() {
    for (const it of [st.current, st.preload]) if (it) await api("POST", "/api/v1/items/" + it.id + "/release");
  }
  async function restart() {
    await releaseHeld();
    st.current = st.preload = null;
    loadFirst();
  }

  async function fetchNext(exclude, resetSkips) {
    const r = await api("POST", "/api/v1/next", { camera: st.filter.camera, reason: st.filter.reason, exclude, reset_skips: !!resetSkips });
    if (r.ok) return { item: r.data };
    return { err: r.data, status: r.status };
  }

  async function loadFirst(resetSkips) {
    refreshFilters();
    const r = await fetchNext([], resetSkips);
    st.current = r.item || null;
    if (!r.item && r.status !== 404) say($("status"), r.err.error || "Could not load the queue.", "err");
    render(r.err);
    preloadNext();
  }

  // The next item is fetched (and its image loaded) while the inspector
  // looks at the current one, so moving on is instant.
  async function preloadNext() {
    if (!st.current || st.preload || st.preloading) return;
    const p = fetchNext([st.current.id]);
    st.preloading = p;
    const r = await p;
    st.preloading = null;
    if (r.item && st.current && r.item.id !== st.current.id) {
      st.preload = r.item;
      if (r.item.image) { const im = new Image(); im.src = r.item.image; }
    }
  }

  async function advance() {
    if (st.preloading) await st.preloading;
    if (st.preload) { st.current = st.preload; st.preload = null; render(); preloadNext(); }
    else { st.current = null; await loadFirst(); }
  }

  function render(emptyInfo) {
    const it = st.current;
    $("item").hidden = !it;
    $("empty").hidden = !!it;
    if (!it) {
      const sk = emptyInfo && emptyInfo.skipped;
      $("empty-text").textContent = "Nothing left to review" + (sk ? " (you skipped " + sk + ")." : ".");
      $("reset-skips").hidden = !sk;
      return;
    }
    $("item").dataset.id = it.id;
    const img = $("img");
    $("no-image").hidden = !!it.image;
    img.hidden = !it.image;
    if (it.image) { img.src = it.image; img.alt = "Part " + (it.part_id || it.id) + " from camera " + it.camera; }
    drawHeat(it);
    $("meta").textContent = it.camera + " · " + new Date(it.time).toLocaleTimeString() + " · level " + it.level + (it.audit ? " · audit sample" : "");
    $("reason").textContent = "Why it is here: " + it.reason_text;
    $("detail").textContent = it.detail || "";
    $("lease").textContent = it.label ? ("Labelled " + it.label.class + " by " + it.label.by) : "";
    $("hint").hidden = !it.show_model;
    $("nohint").hidden = it.show_model;
    const ol = $("scores"); ol.textContent = "";
    for (const s of (it.scores || []).slice(0, 6)) {
      const li = document.createElement("li");
      const name = document.createElement("span"); name.textContent = s.label;
      const bar = document.createElement("span"); bar.className = "bar";
      const fill = document.createElement("span"); fill.style.width = (s.p * 100).toFixed(1) + "%"; bar.append(fill);
      const p = document.createElement("span"); p.textContent = (s.p * 100).toFixed(1) + "%";
      li.append(name, bar, p); ol.append(li);
    }
    const cl = $("classes"); cl.textContent = "";
    it.classes.slice(0, 9).forEach((c, i) => {
      const b = document.createElement("button");
      b.type = "button"; b.dataset.cls = c; b.id = "cls-" + (i + 1);
      b.textContent = c; const k = document.createElement("kbd"); k.textContent = String(i + 1); b.append(k);
      b.setAttribute("aria-label", "Label " + c + " (key " + (i + 1) + ")");
      if (it.show_model && c === it.suggested) b.classList.add("suggested");
      b.addEventListener("click", () => label(c));
      cl.append(b);
    });
    $("accept").disabled = !(it.show_model && it.suggested);
    $("accept").firstChild.textContent = it.show_model && it.suggested ? "Accept " + it.suggested + " " : "No suggestion ";
    $("undo").disabled = !st.lastLabelled;
  }

  // The heatmap is a coarse grid over the whole image; the canvas holds one
  // pixel per cell and the browser scales it smoothly over the image.
  function drawHeat(it) {
    const c = $("heat");
    const h = it.heatmap;
    if (!h || !h.v || !it.show_model) { c.width = 1; c.height = 1; c.getContext("2d").clearRect(0, 0, 1, 1); return; }
    const v = Uint8Array.from(atob(h.v), (ch) => ch.charCodeAt(0));
    c.width = h.w; c.height = h.h;
    const ctx = c.getContext("2d");
    const d = ctx.createImageData(h.w, h.h);
    for (let i = 0; i < h.w * h.h; i++) {
      const t = (v[i] || 0) / 255;
      d.data[4 * i] = Math.round(255 * Math.min(1, 2 * t));
      d.data[4 * i + 1] = Math.round(255 * Math.max(0, 1 - Math.abs(2 * t - 1)) * 0.8);
      d.data[4 * i + 2] = Math.round(255 * Math.max(0, 1 - 2 * t));
      d.data[4 * i + 3] = Math.round(255 * Math.max(0, t - 0.1) / 0.9); // cool cells stay clear
    }
    ctx.putImageData(d, 0, 0);
  }

  async function label(cls) {
    const it = st.current;
    if (!it || st.busy) return;
    st.busy = true;
    say($("status"), "Saving " + cls + "…");
    try {
      const r = await api("POST", "/api/v1/items/" + it.id + "/label", { class: cls });
      if (r.ok && r.data.saved) {
        st.lastLabelled = { id: it.id, cls };
        say($("status"), "Saved: " + cls + " ✓ (U to undo)", "saved");
        await advance();
        $("stage").focus();
      } else if (r.status === 409) {
        say($("status"), r.data.error + " Moved on to the next item.", "err");
        await advance();
      } else {
        say($("status"), r.data.error || "Not saved.", "err");
      }
    } catch (e) {
      say($("status"), "Not saved: the agent did not answer (" + e.message + ").", "err");
    } finally { st.busy = false; }
  }

  async function undo() {
    const l = st.lastLabelled;
    if (!l || st.busy) return;
    st.busy = true;
    try {
      const r = await api("POST", "/api/v1/items/" + l.id + "/undo");
      if (!r.ok) { say($("status"), r.data.error, "err"); return; }
      st.lastLabelled = null;
      if (st.preload) await api("POST", "/api/v1/items/" + st.preload.id + "/release");
      st.preload = st.current; st.current = r.data;
      say($("status"), "Undone: " + l.cls + " removed; label it again.", "saved");
      render(); $("stage").focus();
    } finally { st.busy = false; }
  }

  async function skip() {
    const it = st.current;
    if (!it || st.busy) return;
    st.busy = true;
    try {
      const r = await api("POST", "/api/v1/items/" + it.id + "/skip");
      if (!r.ok) { say($("status"), r.data.error, "err"); return; }
      say($("status"), "Skipped; it comes back to you in " + Math.round(r.data.back_in_s / 60) + " minutes.");
      await advance();
    } finally { st.busy = false; }
  }

  $("accept").addEventListener("click", () => { const it = st.current; if (it && it.show_model && it.suggested) label(it.suggested); });
  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", undo);

  document.addEventListener("keydown", (e) => {
    if (st.view !== "review" || $("view-review").hidden || e.ctrlKey || e.metaKey || e.altKey) return;
    const tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea") return;
    const it = st.current;
    const k = e.key;
    if (k >= "1" && k <= "9") {
      if (it && it.classes[+k - 1]) { e.preventDefault(); label(it.classes[+k - 1]); }
    } else if (k === "Enter" || k === " ") {
      if (tag === "button") return; // a focused button does its own thing
      e.preventDefault();
      if (it && it.show_model && it.suggested) label(it.suggested);
    } else if (k === "u" || k === "U") { e.preventDefault(); undo(); }
    else if (k === "s" || k === "S") { e.preventDefault(); skip(); }
    else if (k === "h" || k === "H") { e.preventDefault(); $("heat-toggle").click(); }
  });

  // Keep the leases of what is on screen while the inspector looks at it.
  setInterval(() => {
    for (const it of [st.current, st.preload]) if (it) api("POST", "/api/v1/items/" + it.id + "/claim");
  }, 45000);
  window.addEventListener("pagehide", () => {
    for (const it of [st.current, st.preload]) if (it) fetch("/api/v1/items/" + it.id + "/release", { method: "POST", keepalive: true, headers: { "X-CSRF-Token": st.csrf, "Content-Type": "application/json" }, body: "{}" });
  });

  // ---- live view ----
  function connectEvents() {
    if (st.es) return;
    const es = new EventSource("/api/v1/events");
    st.es = es;
    es.addEventListener("live", (e) => {
      st.live = JSON.parse(e.data);
      $("queue-count").textContent = st.live.queue || "";
      if (st.view === "live") renderLive(st.live);
    });
    es.addEventListener("decision", (e) => {
      const ev = JSON.parse(e.data);
      if (!st.live) return;
      const cam = (st.live.cameras || []).find((c) => c.id === ev.camera);
      if (cam) { cam.last = [ev.decision].concat(cam.last || []).slice(0, 8); }
      scheduleLive();
    });
    es.addEventListener("alarm", (e) => {
      const ev = JSON.parse(e.data);
      const p = document.createElement("p");
      p.className = ev.alarm.active ? "warn" : "note";
      p.textContent = new Date(ev.time).toLocaleTimeString() + " " + ev.camera + ": " + ev.alarm.name + (ev.alarm.active ? " raised" : " cleared") + (ev.alarm.detail ? " (" + ev.alarm.detail + ")" : "");
      $("alarms").prepend(p);
      while ($("alarms").children.length > 10) $("alarms").lastChild.remove();
    });
    es.addEventListener("level", () => { if (st.view === "super") renderSuper(); });
  }
  let liveTimer = null;
  function scheduleLive() {
    if (liveTimer || st.view !== "live") return;
    liveTimer = setTimeout(() => { liveTimer = null; renderLive(st.live); }, 250);
  }

  const fmtMs = (ns) => ns ? (ns / 1e6).toFixed(ns < 1e7 ? 1 : 0) + " ms" : "–";
  function thumb(d) {
    const f = document.createElement("figure");
    f.className = "thumb v-" + d.verdict;
    if (d.image) {
      const im = document.createElement("img"); im.src = "/api/v1/items/" + d.id + "/image"; im.loading = "lazy";
      im.alt = d.camera + " " + d.verdict + (d.top ? " " + d.top : ""); f.append(im);
    }
    const c = document.createElement("figcaption"); c.textContent = d.verdict + (d.top ? " · " + d.top : ""); f.append(c);
    return f;
  }
  function renderLive(v) {
    $("line-down").hidden = v.running;
    const box = $("cams"); box.textContent = "";
    for (const c of v.cameras || []) {
      const d = document.createElement("article"); d.className = "cam"; d.setAttribute("aria-label", "Camera " + c.id);
      const h = document.createElement("h2"); h.textContent = c.id + " ";
      const b = document.createElement("span"); b.className = "badge"; b.textContent = v.running ? c.level : (c.automation || "–"); h.append(b);
      if (c.drift && c.drift.alarm) { const a = document.createElement("span"); a.className = "badge alarm"; a.textContent = "drift alarm"; h.append(" ", a); }
      if (c.defer_alarm) { const a = document.createElement("span"); a.className = "badge alarm"; a.textContent = "defer rate alarm"; h.append(" ", a); }
      d.append(h);
      if (v.running) {
        const counts = c.counts || {};
        const rows = [
          ["State", c.running ? "running" : (c.state || "down")],
          ["Model", (c.model && c.model.name ? c.model.name + " " + c.model.version : "–") + (c.shadow ? " (shadow " + c.shadow.version + ")" : "")],
          ["Pass / reject / defer", (counts.pass || 0) + " / " + (counts.reject || 0) + " / " + (counts.defer || 0)],
          ["Defer rate", ((c.defer_rate || 0) * 100).toFixed(1) + "%"],
          ["Throughput", (c.throughput || 0).toFixed(1) + " parts/s"],
          ["Latency p50 / p99", fmtMs(c.latency_p50_ns) + " / " + fmtMs(c.latency_p99_ns)],
          ["Drift", c.drift ? (c.drift.score || 0).toFixed(3) + (c.drift.detail ? " (" + c.drift.detail + ")" : "") : "–"],
        ];
        const dl = document.createElement("dl");
        for (const [k, val] of rows) { const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = val; dl.append(dt, dd); }
        d.append(dl);
        const th = document.createElement("div"); th.className = "thumbs";
        for (const x of c.last || []) th.append(thumb(x));
        d.append(th);
      }
      box.append(d);
    }
    const rec = $("recent"); rec.textContent = "";
    if (!v.running) for (const x of v.recent || []) rec.append(thumb(x));
  }

  // ---- supervisor ----
  const LEVELS = ["human", "shadow", "assist", "partial", "full"];
  async function renderSuper() {
    const r = await api("GET", "/api/v1/live");
    if (!r.ok) return;
    const box = $("super-cams"); box.textContent = "";
    if (!r.data.running) { const p = document.createElement("p"); p.className = "warn"; p.textContent = "The line is not running: automation levels cannot be changed now."; box.append(p); }
    for (const c of r.data.cameras || []) {
      const d = document.createElement("div"); d.className = "supcam";
      const h = document.createElement("h2"); h.textContent = c.id; d.append(h);
      const lab = document.createElement("label"); lab.htmlFor = "lvl-" + c.id; lab.textContent = "Automation level";
      const sel = document.createElement("select"); sel.id = "lvl-" + c.id;
      for (const l of LEVELS) sel.append(new Option(l, l));
      sel.value = r.data.running ? (c.set_level || c.level) : (c.automation || "human");
      const apply = document.createElement("button"); apply.type = "button"; apply.textContent = "Apply level";
      apply.setAttribute("aria-label", "Apply automation level for " + c.id);
      apply.disabled = !r.data.running;
      apply.addEventListener("click", async () => {
        const res = await api("POST", "/api/v1/cameras/" + encodeURIComponent(c.id) + "/level", { level: sel.value });
        say($("super-status"), res.ok ? c.id + " is now at level " + sel.value + "." : res.data.error, res.ok ? "saved" : "err");
      });
      const shadow = document.createElement("span"); shadow.className = "muted"; shadow.textContent = "Shadow agreement: …";
      api("GET", "/api/v1/cameras/" + encodeURIComponent(c.id) + "/shadow").then((s) => {
        shadow.textContent = s.ok ? "Shadow " + s.data.shadow.version + " agrees with " + s.data.active.version + " on " + (s.data.agreement * 100).toFixed(1) + "% of " + s.data.parts + " parts" : "Shadow agreement: " + s.data.error;
      });
      d.append(lab, sel, apply, shadow);
      for (const act of ["promote", "rollback"]) {
        const b = document.createElement("button"); b.type = "button";
        b.textContent = act === "promote" ? "Promote shadow model" : "Roll back model";
        b.setAttribute("aria-label", b.textContent + " on " + c.id);
        b.addEventListener("click", async () => {
          if (!confirm(b.textContent + " on " + c.id + "?")) return;
          const res = await api("POST", "/api/v1/cameras/" + encodeURIComponent(c.id) + "/" + act);
          say($("super-status"), res.ok ? b.textContent + ": done." : b.textContent + ": " + res.data.error, res.ok ? "saved" : "err");
        });
        d.append(b);
      }
      box.append(d);
    }
  }

  start();
})();
