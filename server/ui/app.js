// flowhost's dashboard: the run list, a run's page (its graph, timeline,
// steps, error and live events, with cancel and rerun), and the tenants.
// Plain DOM, no framework: every text goes in through textContent.
"use strict";

const $ = (sel) => document.querySelector(sel);
const main = $("#main");
let session = { tenant: "*", tokens: false };
let timer = null;
let source = null;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v; // through the CSSOM: the page's CSP allows no inline style
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: { "X-Flowhost": "1", ...(opts.headers || {}) }, credentials: "same-origin" });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) { showSignIn(); throw new Error(body.error || "sign in"); }
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

function tenant() { return $("#tenant").value || (session.tenant !== "*" ? session.tenant : "default"); }
function q(params) { return new URLSearchParams({ tenant: tenant(), ...params }).toString(); }
function badge(status) { return el("span", { class: "badge " + (status || "pending"), "data-status": status || "pending" }, status || "pending"); }
function when(s) { if (!s) return "–"; const d = new Date(s); return d.toLocaleString(); }
function ms(v) { if (v === undefined || v === null) return "–"; if (v < 1000) return v.toFixed(v < 10 ? 2 : 0) + " ms"; return (v / 1000).toFixed(2) + " s"; }
function bytes(n) { if (!n) return "–"; const u = ["B", "KiB", "MiB", "GiB"]; let i = 0; while (n >= 1024 && i < 3) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + " " + u[i]; }
function since(a, b) { if (!a) return null; const t0 = Date.parse(a), t1 = b ? Date.parse(b) : Date.now(); return t1 - t0; }

function stop() {
  if (timer) { clearTimeout(timer); timer = null; }
  if (source) { source.close(); source = null; }
}

// ---------------------------------------------------------------- runs

async function runsPage() {
  const status = el("select", { id: "f-status" }, ["", "pending", "running", "succeeded", "failed", "cancelled"].map((s) => el("option", { value: s }, s || "any status")));
  const name = el("input", { id: "f-name", placeholder: "flow name" });
  const body = el("tbody");
  const more = el("button", { id: "more", hidden: "" }, "Older runs");
  main.replaceChildren(
    el("h1", {}, "Runs"),
    el("div", { class: "filters" }, status, name),
    el("table", { id: "runs" }, el("thead", {}, el("tr", {}, el("th", {}, "Run"), el("th", {}, "Flow"), el("th", {}, "Status"),
      el("th", {}, "Created"), el("th", {}, "Duration"), el("th", {}, "Error"))), body),
    more);
  let before = 0;
  async function load(append) {
    const params = { limit: 50 };
    if (status.value) params.status = status.value;
    if (name.value) params.name = name.value;
    if (append && before) params.before = before;
    const page = await api("/api/v1/runs?" + q(params));
    const rows = page.runs.map((r) => el("tr", { "data-run": r.run_id },
      el("td", {}, el("a", { href: "#/runs/" + r.run_id, class: "mono" }, r.run_id)),
      el("td", {}, r.name || "–"),
      el("td", {}, badge(r.status)),
      el("td", {}, when(r.created_at)),
      el("td", { class: "num" }, ms(since(r.created_at, r.finished_at))),
      el("td", { class: "error" }, (r.error || "").slice(0, 160))));
    if (append) body.append(...rows); else body.replaceChildren(...rows);
    if (!append && rows.length === 0) body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "empty" }, "No runs.")));
    before = page.next || 0;
    more.hidden = !page.next;
  }
  status.addEventListener("change", () => load(false));
  name.addEventListener("change", () => load(false));
  more.addEventListener("click", () => load(true));
  const tick = async () => {
    try { if (!before || body.children.length <= 50) await load(false); } catch (e) { console.warn(e); }
    timer = setTimeout(tick, 2000);
  };
  await tick();
}

// ----------------------------------------------------------------- run

async function runPage(id) {
  const events = el("div", { id: "events" });
  const logs = el("div", { id: "logs" });
  const view = el("div");
  main.replaceChildren(view, el("h2", {}, "Events"), events, el("h2", {}, "Guest logs"), logs);
  let run = null, pending = false;
  async function refresh() {
    try { run = await api("/api/v1/runs/" + encodeURIComponent(id) + "?" + q({})); render(); }
    catch (e) { view.replaceChildren(el("p", { class: "error" }, e.message)); return; }
    try {
      const l = await api("/api/v1/runs/" + encodeURIComponent(id) + "/logs?" + q({}));
      logs.replaceChildren(...(l.lines.length ? l.lines.map((x) => el("div", { class: "logline" },
        new Date(x.time).toLocaleTimeString() + "  " + x.level + "  " + (x.step || "") + "  " + x.module + "." + x.task + ": " + x.msg)) :
        [el("div", { class: "muted" }, "No guest log lines.")]));
    } catch (e) { /* the logs are a bonus */ }
  }
  // At most one refresh a second, however fast the events come.
  function later() { if (!pending) { pending = true; setTimeout(() => { pending = false; refresh(); }, 1000); } }
  const batchCharts = el("div", { id: "batches" });
  async function loadBatches() {
    // Each map or filter step's batches: waiting in the queue (light), then
    // running; a retry is the same index again, after its backoff.
    const t0 = Date.parse(run.created_at || 0), t1 = run.finished_at ? Date.parse(run.finished_at) : Date.now();
    const charts = [];
    for (const [i, s] of (run.steps || []).entries()) {
      if (s.total === undefined || s.total === null || !s.started_at) continue;
      let bs;
      try { bs = (await api(`/api/v1/runs/${encodeURIComponent(id)}/steps/${i + 1}/batches?` + q({}))).batches; } catch (e) { continue; }
      if (!bs.length) continue;
      const shown = bs.slice(0, 400), span = Math.max(t1 - t0, 1), rowH = 5, w = 1000;
      const g = svg("svg", { class: "batches", viewBox: `0 0 ${w} ${shown.length * rowH}`, height: Math.min(shown.length * rowH, 400), preserveAspectRatio: "none" });
      shown.forEach((b, k) => {
        const x = (v) => ((v - t0) / span * w).toFixed(2);
        g.append(svg("rect", { class: "queued", x: x(b.queued), y: k * rowH, width: Math.max(x(b.started) - x(b.queued), 0.5), height: rowH - 1 }));
        g.append(svg("rect", { class: b.failed ? "ran failed" : "ran", x: x(b.started), y: k * rowH, width: Math.max(x(b.finished) - x(b.started), 0.5), height: rowH - 1 },
          svg("title", {}, `calls ${b.index}–${b.index + b.calls - 1}, attempt ${b.attempt + 1}: queued ${b.started - b.queued} ms, ran ${b.finished - b.started} ms`)));
      });
      charts.push(el("div", { class: "batchchart", "data-step": s.name },
        el("div", { class: "muted" }, `${s.name}: ${bs.length} batches${bs.length > shown.length ? " (the first " + shown.length + ")" : ""} — light: waiting in the queue, dark: running`), g));
    }
    batchCharts.replaceChildren(...charts);
  }
  function render() {
    loadBatches();
    const ended = ["succeeded", "failed", "cancelled"].includes(run.status);
    const cancel = el("button", { id: "cancel", class: "danger", onclick: async () => {
      cancel.disabled = true;
      try { await api("/api/v1/runs/" + id + "/cancel?" + q({}), { method: "POST" }); } catch (e) { alert(e.message); }
      refresh();
    } }, "Cancel");
    cancel.disabled = ended;
    const rerun = el("button", { id: "rerun", onclick: async () => {
      try { const r = await api("/api/v1/runs/" + id + "/rerun?" + q({}), { method: "POST" }); location.hash = "#/runs/" + r.run_id; }
      catch (e) { alert(e.message); }
    } }, "Rerun");
    view.replaceChildren(...[
      el("h1", {}, run.name || "run", " ", badge(run.status)),
      el("p", { class: "meta" },
        el("span", { class: "mono" }, run.run_id),
        el("span", {}, "tenant " + (run.tenant || tenant())),
        el("span", {}, "created " + when(run.created_at)),
        el("span", {}, "took " + ms(since(run.created_at, run.finished_at))),
        run.rerun_of ? el("span", {}, "re-runs ", el("a", { href: "#/runs/" + run.rerun_of, class: "mono" }, run.rerun_of)) : null,
        run.parent ? el("span", { id: "parent" }, "sub-flow of ", el("a", { href: "#/runs/" + run.parent, class: "mono" }, run.parent), ", step " + run.parent_step) : null,
        run.schedule ? el("span", {}, "schedule " + run.schedule + (run.scheduled_for ? " (tick " + when(run.scheduled_for) + ")" : "")) : null),
      el("div", { class: "actions" }, cancel, rerun),
      run.error ? el("div", { class: "errorbox", id: "run-error" }, run.error) : null,
      el("h2", {}, "Graph"), graph(run.steps || []),
      el("h2", {}, "Timeline"), timeline(run), batchCharts,
      el("h2", {}, "Steps"), stepsTable(run.steps || [])].filter(Boolean));
  }
  await refresh();
  source = new EventSource("/api/v1/runs/" + encodeURIComponent(id) + "/events?" + q({}));
  // A step's progress is one line, rewritten as it advances: a map of
  // 100,000 elements sends hundreds of them.
  const progress = new Map();
  source.onmessage = (m) => {
    const e = JSON.parse(m.data);
    const line = [new Date(e.time || Date.now()).toLocaleTimeString(), e.type, e.step || "", e.index !== undefined ? "#" + e.index : "",
      e.done !== undefined ? e.done + "/" + (e.total || "") : "", e.status || "", e.error || ""].filter(Boolean).join("  ");
    if (e.type === "step_progress") {
      let div = progress.get(e.step);
      if (!div) { div = el("div", { class: "progress" }); progress.set(e.step, div); events.append(div); }
      div.textContent = line;
    } else {
      progress.delete(e.step);
      events.append(el("div", {}, line));
    }
    events.scrollTop = events.scrollHeight;
    later();
  };
  source.addEventListener("end", () => { source.close(); refresh(); });
}

function graph(steps) {
  // A dataflow run's nodes in layers (a node one right of its deepest
  // producer), edges from each producer; a sequential run's steps in a row.
  const w = 170, h = 44, gapX = 44, gapY = 14, pad = 12;
  const layer = [], row = [], rows = [];
  steps.forEach((s, i) => {
    const deps = s.deps || (i > 0 && !steps.some((t) => t.deps) ? [i] : []);
    layer[i] = deps.length ? Math.max(...deps.map((d) => (layer[d - 1] ?? 0) + 1)) : 0;
    row[i] = rows[layer[i]] = (rows[layer[i]] ?? -1) + 1;
  });
  const width = Math.max(pad * 2 + (Math.max(0, ...layer) + 1) * (w + gapX) - gapX, 300);
  const height = pad * 2 + Math.max(1, ...rows.map((r) => r + 1)) * (h + gapY) - gapY;
  const g = svg("svg", { class: "graph", viewBox: `0 0 ${width} ${height}`, height: Math.min(height, 600), id: "graph" });
  const pos = (i) => [pad + layer[i] * (w + gapX), pad + row[i] * (h + gapY)];
  steps.forEach((s, i) => {
    const deps = s.deps || (i > 0 && !steps.some((t) => t.deps) ? [i] : []);
    for (const d of deps) {
      if (d < 1 || d > steps.length) continue;
      const [x0, y0] = pos(d - 1), [x1, y1] = pos(i);
      g.append(svg("path", { class: "edge", d: `M${x0 + w} ${y0 + h / 2} C${x0 + w + gapX / 2} ${y0 + h / 2}, ${x1 - gapX / 2} ${y1 + h / 2}, ${x1} ${y1 + h / 2}` }));
    }
  });
  steps.forEach((s, i) => {
    const [x, y] = pos(i);
    const color = getComputedStyle(document.documentElement).getPropertyValue("--" + (s.status || "pending")).trim() || "#9aa3ae";
    const label = s.name.length > 24 ? s.name.slice(0, 23) + "…" : s.name;
    const done = s.total !== undefined && s.total !== null ? ` ${s.done}/${s.total}` : "";
    g.append(svg("g", { class: "node", "data-step": s.name, "data-status": s.status },
      svg("rect", { x, y, width: w, height: h, fill: color, stroke: color }),
      svg("title", {}, `${s.name}: ${s.status}${done}`),
      svg("text", { x: x + 10, y: y + 18 }, label),
      svg("text", { x: x + 10, y: y + 34 }, s.status + done)));
  });
  return g;
}

function timeline(run) {
  const t0 = Date.parse(run.created_at || 0);
  const t1 = run.finished_at ? Date.parse(run.finished_at) : Date.now();
  const span = Math.max(t1 - t0, 1);
  const rows = (run.steps || []).map((s) => {
    const a = s.started_at ? Date.parse(s.started_at) : null;
    const b = s.finished_at ? Date.parse(s.finished_at) : (a ? t1 : null);
    const track = el("div", { class: "track" });
    if (a) {
      // Waiting from the run's start (queue, earlier steps), then running.
      track.append(el("div", { class: "bar " + (s.status || "pending"), title: `${s.name}: ${ms(b - a)}`,
        style: `left:${((a - t0) / span * 100).toFixed(2)}%;width:${Math.max((b - a) / span * 100, 0.3).toFixed(2)}%` }));
    }
    return el("tr", {}, el("td", {}, s.name), el("td", { style: "width:70%" }, track), el("td", { class: "num" }, ms(s.duration_ms)));
  });
  return el("table", { class: "timeline" }, el("tbody", {}, rows));
}

function stepsTable(steps) {
  return el("table", { id: "steps" },
    el("thead", {}, el("tr", {}, ["Step", "Status", "Calls", "Failed", "Cached", "Attempts", "Time", "Fuel", "Peak memory", "Worker", "Error"].map((h) => el("th", {}, h)))),
    el("tbody", {}, steps.map((s) => el("tr", { "data-step": s.name },
      el("td", {}, s.name, s.child ? el("span", { class: "case" }, " run ", el("a", { href: "#/runs/" + s.child, class: "mono child" }, s.child)) : ""),
      el("td", {}, badge(s.status), s.case ? el("span", { class: "case" }, " case " + s.case) : ""),
      el("td", { class: "num" }, s.total !== undefined && s.total !== null ? `${s.done}/${s.total}` : (s.status === "skipped" || s.case ? "0" : "1")),
      el("td", { class: "num" }, s.failed || 0), el("td", { class: "num" }, s.cached || 0),
      el("td", { class: "num" }, s.attempts || 0), el("td", { class: "num" }, ms(s.duration_ms)),
      el("td", { class: "num", "data-fuel": s.fuel || 0 }, (s.fuel || 0).toLocaleString()), el("td", { class: "num" }, bytes(s.peak_memory)),
      el("td", { class: "mono" }, s.worker || "–"), el("td", { class: "error" }, s.error || "")))));
}

// ------------------------------------------------------------- tenants

async function tenantsPage() {
  const list = await api("/api/v1/tenants");
  main.replaceChildren(el("h1", {}, "Tenants"),
    el("table", { id: "tenants" },
      el("thead", {}, el("tr", {}, ["Tenant", "Waiting", "Running", "Retrying", "Stream entries", "Quotas (by worker)"].map((h) => el("th", {}, h)))),
      el("tbody", {}, list.map((t) => el("tr", {},
        el("td", {}, el("a", { href: "#/runs", onclick: () => { $("#tenant").value = t.name; } }, t.name)),
        el("td", { class: "num" }, t.lag), el("td", { class: "num" }, t.running), el("td", { class: "num" }, t.delayed),
        el("td", { class: "num" }, t.depth),
        el("td", { class: "quotas" }, Object.entries(t.quotas || {}).map(([w, q]) =>
          `${w}: ${[q.max_concurrent ? q.max_concurrent + " at once" : "", q.timeout_ms ? ms(q.timeout_ms) : "", q.memory ? bytes(q.memory) : "",
            q.fuel ? q.fuel.toLocaleString() + " fuel" : ""].filter(Boolean).join(", ") || "no maxima"}`).join("; ") || "–"))))));
  timer = setTimeout(() => route(), 3000);
}

// ------------------------------------------------------------- workers

async function workersPage() {
  const list = await api("/api/v1/workers");
  main.replaceChildren(el("h1", {}, "Workers"),
    el("table", { id: "workers" },
      el("thead", {}, el("tr", {}, ["Worker", "Running", "Slots", "Tenants", "Started", "Last seen"].map((h) => el("th", {}, h)))),
      el("tbody", {}, list.length === 0 ? el("tr", {}, el("td", { colspan: 6, class: "empty" }, "No worker is alive.")) :
        list.map((w) => el("tr", { "data-worker": w.name },
          el("td", { class: "mono" }, w.name), el("td", { class: "num" }, w.running), el("td", { class: "num" }, w.concurrency),
          el("td", {}, (w.tenants || []).join(", ") || "–"), el("td", {}, when(w.started_at)), el("td", {}, when(w.last_seen)))))));
  timer = setTimeout(() => route(), 3000);
}

// ------------------------------------------------------- session, route

function showSignIn() { $("#signin").hidden = false; }

$("#signin").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    session = await api("/api/v1/session", { method: "POST", body: JSON.stringify({ token: $("#token").value }), headers: { "Content-Type": "application/json" } });
    $("#signin").hidden = true;
    $("#token").value = "";
    await start();
  } catch (e) { $("#signin-error").textContent = e.message; }
});

$("#signout").addEventListener("click", async () => {
  await fetch("/api/v1/session", { method: "DELETE", headers: { "X-Flowhost": "1" } });
  location.reload();
});

async function route() {
  stop();
  const hash = location.hash || "#/runs";
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", hash.startsWith("#/" + a.dataset.nav)));
  try {
    const m = hash.match(/^#\/runs\/([A-Za-z0-9_-]+)/);
    if (m) await runPage(m[1]);
    else if (hash.startsWith("#/tenants")) await tenantsPage();
    else if (hash.startsWith("#/workers")) await workersPage();
    else await runsPage();
  } catch (e) {
    main.replaceChildren(el("p", { class: "error" }, e.message));
  }
}

async function start() {
  session = await api("/api/v1/session");
  const sel = $("#tenant");
  sel.replaceChildren();
  if (session.tenant === "*") {
    let names = ["default"];
    try { names = (await api("/api/v1/tenants")).map((t) => t.name); } catch (e) { /* the registry may be empty */ }
    if (!names.includes("default")) names.unshift("default");
    names.forEach((n) => sel.append(el("option", { value: n }, n)));
  } else {
    sel.append(el("option", { value: session.tenant }, session.tenant));
    sel.disabled = true;
  }
  const want = new URLSearchParams(location.search).get("tenant");
  if (want) sel.value = want;
  $("#who").textContent = session.tokens ? (session.tenant === "*" ? "operator" : "tenant " + session.tenant) : "";
  $("#signout").hidden = !session.tokens;
  sel.onchange = () => route();
  window.onhashchange = () => route();
  await route();
}

start().catch(() => {});
