// The Infinity daemon's web UI: plain JavaScript, no build step, nothing
// fetched from anywhere but the daemon. Everything it shows comes from the
// same HTTP API as the CLI; text from threads is always set as text, never
// as HTML.
"use strict";

const PAGE = 100;
const $ = (id) => document.getElementById(id);

const state = {
  csrf: "",
  offset: 0,
  total: 0,
  rows: [],          // the list's current page (ThreadView)
  selected: "",      // the thread shown
  root: "",          // its root (the tree shown)
  tree: null,        // Tree of root
  treeIDs: new Set(),
  items: null,       // EventSource of the transcript
  nextIndex: 0,      // the next item index the transcript expects
  calls: {},         // call id -> tool name, for results
  views: {},         // view type -> element
  tab: "transcript",
};

// el builds an element: el("div", {class: "x"}, "text", child, ...).
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) {
    if (k === null || k === undefined) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function toast(msg) {
  const t = $("toast");
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
}

// api calls the daemon; errors carry the API's code and message.
async function api(method, path, body) {
  const headers = {};
  headers["X-Infinity-CSRF"] = state.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  const text = await res.text();
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!res.ok) {
    const e = new Error((data && data.error && data.error.message) || `${method} ${path}: HTTP ${res.status}`);
    e.code = data && data.error && data.error.code;
    e.status = res.status;
    throw e;
  }
  return { data, res };
}

function fmtCost(c) {
  if (c === null || c === undefined) return "—";
  if (c === 0) return "$0";
  return "$" + (c < 0.01 ? c.toFixed(4) : c.toFixed(2));
}

function fmtTokens(t) {
  if (!t) return "";
  return `${t.input.toLocaleString()} in / ${t.output.toLocaleString()} out`;
}

function fmtWhen(iso) {
  const d = new Date(iso);
  const s = Math.round((d - Date.now()) / 1000);
  const abs = Math.abs(s);
  const span = abs < 90 ? `${abs}s` : abs < 5400 ? `${Math.round(abs / 60)}m` : abs < 129600 ? `${Math.round(abs / 3600)}h` : `${Math.round(abs / 86400)}d`;
  return s >= 0 ? `in ${span}` : `${span} ago`;
}

function statusText(v) {
  switch (v.status) {
    case "sleeping": return v.until ? `sleeping until ${new Date(v.until).toLocaleString()} (${fmtWhen(v.until)})` : "sleeping";
    case "waiting": return v.detail ? `waiting for ${v.detail}` : "waiting";
    case "failed": return `failed: ${v.detail || ""}`;
    case "over_budget": return `over budget: ${v.detail || ""}`;
    default: return v.status;
  }
}

function statusEl(v, long) {
  return el("span", { class: `status st-${v.status}`, "data-status": v.status }, long ? statusText(v) : v.status);
}

// ---- the list ----

function listQuery() {
  const q = new URLSearchParams({ order: "newest", offset: String(state.offset), limit: String(PAGE) });
  if ($("roots-only").checked) q.set("roots", "true");
  const s = $("search").value.trim();
  if (s) q.set("q", s);
  const st = $("status-filter").value;
  if (st) q.set("status", st);
  return q;
}

let listSeq = 0;
async function loadList() {
  const seq = ++listSeq;
  const { data, res } = await api("GET", "/v1/threads?" + listQuery());
  if (seq !== listSeq) return; // a newer query answers instead
  state.rows = data;
  state.total = Number(res.headers.get("X-Total-Count") || data.length);
  renderList();
}

function renderList() {
  const body = $("rows");
  body.replaceChildren(...state.rows.map((v) => el("tr", {
    class: v.id === state.selected || v.id === state.root ? "on" : "", "data-thread": v.id,
    onclick: () => select(v.id),
  },
  el("td", { class: "id" }, v.id),
  el("td", {}, v.agent || "demo"),
  el("td", {}, statusEl(v)),
  el("td", { class: "num" }, v.subtree ? v.subtree.threads : 1),
  el("td", { class: "num" }, fmtCost(v.subtree ? v.subtree.cost : v.cost)))));
  const from = state.total === 0 ? 0 : state.offset + 1;
  $("page-info").textContent = `${from}–${state.offset + state.rows.length} of ${state.total.toLocaleString()}`;
  $("prev").disabled = state.offset === 0;
  $("next").disabled = state.offset + state.rows.length >= state.total;
}

async function loadStatus() {
  const { data } = await api("GET", "/v1/status");
  $("daemon").textContent = `${data.threads.toLocaleString()} threads · ${data.active} active · ${data.waiting_messages} waiting messages · ${data.version || "dev"}`;
}

// ---- one thread ----

async function select(id) {
  if (location.hash !== "#/t/" + id) location.hash = "#/t/" + id;
}

async function showThread(id) {
  let v;
  try {
    ({ data: v } = await api("GET", "/v1/threads/" + encodeURIComponent(id)));
  } catch (e) {
    toast(e.message);
    return;
  }
  if (location.hash !== "#/t/" + id) return; // another thread was picked meanwhile
  const changed = id !== state.selected;
  state.selected = id;
  state.root = v.root;
  $("pick").hidden = true;
  $("thread").hidden = false;
  renderList();
  await loadTree();
  if (changed) follow(id);
  if (state.tab === "timeline") loadTimeline();
}

async function loadTree() {
  const root = state.root;
  if (!root) return;
  const { data } = await api("GET", "/v1/threads/" + encodeURIComponent(root) + "/tree");
  if (root !== state.root) return; // another tree is shown now
  state.tree = data;
  state.treeIDs = new Set();
  const walk = (t) => { state.treeIDs.add(t.id); (t.threads || []).forEach(walk); };
  walk(data);
  $("tree").replaceChildren(treeNode(data));
  const v = findNode(data, state.selected);
  if (v) renderHead(v);
}

function findNode(t, id) {
  if (t.id === id) return t;
  for (const k of t.threads || []) {
    const f = findNode(k, id);
    if (f) return f;
  }
  return null;
}

function treeNode(t) {
  const li = el("li", {},
    el("span", { class: "node" + (t.id === state.selected ? " on" : ""), "data-thread": t.id, onclick: () => select(t.id) },
      el("span", { class: "id" }, t.id), " ", statusEl(t),
      el("small", {}, `${t.agent || "demo"} · ${fmtCost(t.cost)}${t.threads ? " · subtree " + fmtCost(t.subtree.cost) : ""}`)));
  if (t.threads && t.threads.length) li.append(el("ul", {}, ...t.threads.map(treeNode)));
  return li;
}

function renderHead(v) {
  $("thread-title").textContent = v.id;
  $("thread-status").replaceWith(Object.assign(statusEl(v, true), { id: "thread-status" }));
  const sub = v.subtree && v.subtree.threads > 1 ? ` · subtree of ${v.subtree.threads}: ${fmtTokens(v.subtree.tokens)}, ${fmtCost(v.subtree.cost)}` : "";
  $("thread-meta").textContent = `${v.agent || "demo"} · ${v.model || "default model"} · ${v.items} items · ${fmtTokens(v.tokens)} · ${fmtCost(v.cost)}${sub}${v.compacted ? " · compacted" : ""}`;
  const closed = v.status === "closed";
  $("close").disabled = closed;
  $("compact").disabled = closed;
  $("input").disabled = closed;
  // An authorization link, when a tool waits for one (http and https only).
  const a = $("authorize");
  if (v.authorize && /^https?:\/\//i.test(v.authorize.url)) {
    a.replaceChildren(`The tool ${v.authorize.tool} asks you to authorize it: `,
      el("a", { href: v.authorize.url, target: "_blank", rel: "noopener noreferrer" }, "open the authorization page"));
    a.hidden = false;
  } else {
    a.hidden = true;
  }
  $("choices").replaceChildren(...(v.choices || []).map((c) => el("div", { class: "choice", "data-choice": c.id },
    el("div", {}, c.prompt),
    ...c.choices.map((label) => el("button", { type: "button", onclick: () => answer(v.id, c.id, label) }, label)))));
}

async function answer(thread, id, label) {
  try {
    await api("POST", `/v1/threads/${encodeURIComponent(thread)}/answer`, { id, choice: label });
    loadTree();
  } catch (e) { toast(e.message); }
}

// follow streams the thread's transcript (server-sent events), reopening
// from the next item after a dropped connection.
function follow(id) {
  if (state.items) state.items.close();
  state.items = null;
  state.nextIndex = 0;
  state.calls = {};
  state.views = {};
  $("transcript").replaceChildren();
  $("views").replaceChildren();
  openItems(id, 0);
}

function streamURL(path) {
  return path + (path.includes("?") ? "&" : "?") + "csrf=" + encodeURIComponent(state.csrf);
}

function openItems(id, delay) {
  const es = new EventSource(streamURL(`/v1/threads/${encodeURIComponent(id)}/items?follow=true&from=${state.nextIndex}`));
  state.items = es;
  es.onopen = () => { delay = 0; };
  es.onmessage = (m) => {
    if (state.selected !== id) return;
    delay = 0;
    const line = JSON.parse(m.data);
    if (line.end) {
      es.close();
      addNote(`— ${line.end}`);
      loadTree();
      return;
    }
    addLine(line);
  };
  // A dropped stream is opened again from the next item, backing off; a
  // thread that is gone, or a session that ended, stops it.
  es.onerror = async () => {
    es.close();
    if (state.items !== es) return;
    try {
      await api("GET", "/v1/threads/" + encodeURIComponent(id));
    } catch (e) {
      if (e.status === 404 || e.status === 401 || e.status === 403) {
        addNote(`— the stream stopped: ${e.message}`);
        return;
      }
    }
    const wait = Math.min(30000, Math.max(1000, (delay || 0) * 2));
    setTimeout(() => { if (state.items === es && state.selected === id) openItems(id, wait); }, wait);
  };
}

function addNote(text) {
  $("transcript").append(el("li", { class: "note" }, text));
}

function segments(display) {
  return (display || []).filter((d) => d.type !== "user_choice").map((d) => {
    if (d.type === "text" && typeof d.content === "string") return el("div", { class: "shown" }, d.content);
    if (d.type === "diff") return el("pre", { class: "shown diff" }, typeof d.content === "string" ? d.content : JSON.stringify(d.content, null, 2));
    return el("pre", { class: "shown" }, `${d.type}: ${JSON.stringify(d.content)}`);
  });
}

function addLine(l) {
  if (l.view) {
    let v = state.views[l.view.type];
    if (!v) {
      v = el("div", { class: "view", "data-view": l.view.type });
      state.views[l.view.type] = v;
      $("views").append(v);
    }
    const c = l.view.content;
    v.replaceChildren(el("strong", {}, l.view.type), el("pre", {}, typeof c === "string" ? c : JSON.stringify(c, null, 2)));
    return;
  }
  if (l.slice) {
    const s = l.slice;
    addNote(`slice: ${s.items} items · ${fmtTokens(s.usage)} · ${fmtCost(s.cost)}`);
    return;
  }
  if (l.compacted) {
    addNote(`history compacted: a summary (${l.compacted.chars} characters) covers the first ${l.compacted.covers} items`);
    return;
  }
  const it = l.item;
  if (!it) return;
  state.nextIndex = l.index + 1;
  // The thread's status moves with its history.
  dirtyTree = true;
  if (!pending) pending = setTimeout(refresh, 300);
  const at = el("time", { datetime: it.at, title: it.at }, new Date(it.at).toLocaleTimeString());
  let li;
  switch (it.kind) {
    case "user":
      li = el("li", { class: "user" }, at, el("span", { class: "who" }, l.index === 0 && state.root !== state.selected ? "task" : "input"), el("pre", {}, it.text));
      break;
    case "assistant":
      li = el("li", { class: "assistant" }, at, el("span", { class: "who" }, "model"), el("pre", {}, it.text));
      break;
    case "tool_call":
      state.calls[it.call.id] = it.call.name;
      li = el("li", { class: "tool_call" }, at, el("span", { class: "who" }, "→ " + it.call.name), el("code", {}, JSON.stringify(it.call.args)));
      break;
    case "tool_result": {
      const r = it.result;
      const name = state.calls[r.call_id] || "result";
      const text = (r.parts || []).filter((p) => p.type === "text").map((p) => p.text).join("\n");
      const tag = r.state && r.state !== "final" ? ` (${r.state})` : "";
      li = el("li", { class: "tool_result" + (r.is_error ? " error" : "") }, at, el("span", { class: "who" }, `← ${name}${tag}`), el("pre", {}, text), ...segments(r.display));
      break;
    }
    default:
      li = el("li", {}, at, el("span", { class: "who" }, it.kind), el("pre", {}, it.text || ""));
  }
  li.dataset.index = l.index;
  li.dataset.kind = it.kind;
  if (it.usage) li.append(el("div", { class: "muted" }, `${it.model || ""} ${fmtTokens(it.usage)} ${l.cost !== undefined ? fmtCost(l.cost) : ""}`));
  const list = $("transcript");
  const pane = $("detail");
  const atBottom = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 40;
  list.append(li);
  if (atBottom) pane.scrollTop = pane.scrollHeight;
}

// ---- the timeline ----

const SVG = "http://www.w3.org/2000/svg";
function sv(tag, attrs, ...kids) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

async function loadTimeline() {
  if (!state.root) return;
  let tl;
  try {
    ({ data: tl } = await api("GET", "/v1/threads/" + encodeURIComponent(state.root) + "/timeline"));
  } catch (e) { toast(e.message); return; }
  const box = $("timeline");
  const width = Math.max(box.clientWidth || 800, 600);
  const left = 170, right = 16, lane = 24, top = 24;
  const t0 = new Date(tl.start).getTime();
  const t1 = Math.max(new Date(tl.end).getTime(), t0 + 1);
  const x = (iso) => left + (new Date(iso).getTime() - t0) / (t1 - t0) * (width - left - right);
  const height = top + tl.lanes.length * lane + 8;
  const svg = sv("svg", { class: "timeline", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "timeline" });
  for (let i = 0; i <= 4; i++) {
    const tx = left + i / 4 * (width - left - right);
    const ms = (t1 - t0) * i / 4;
    svg.append(sv("line", { class: "axis", x1: tx, x2: tx, y1: top - 6, y2: height }),
      sv("text", { x: tx, y: 14, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, "+" + fmtSpan(ms)));
  }
  tl.lanes.forEach((l, i) => {
    const y = top + i * lane;
    const g = sv("g", { class: "lane", "data-thread": l.thread });
    g.append(sv("text", { x: 4 + l.depth * 10, y: y + 15 }, `${l.thread.length > 22 ? l.thread.slice(0, 21) + "…" : l.thread}`));
    for (const s of l.spans) {
      const x0 = x(s.from), w = Math.max(x(s.to) - x0, 1.5);
      g.append(sv("rect", { class: "s-" + s.state, x: x0, y: y + 5, width: w, height: 12, rx: 2, opacity: s.state === "running" ? 1 : 0.45 },
        sv("title", {}, `${l.thread}: ${s.state}${s.open ? " (now)" : ""}, ${fmtSpan(new Date(s.to) - new Date(s.from))}`)));
    }
    for (const m of l.marks) {
      g.append(sv("circle", { class: "mark m-" + m.kind, cx: x(m.at), cy: y + 11, r: 3.5, "data-kind": m.kind },
        sv("title", {}, `${new Date(m.at).toLocaleTimeString()} ${m.kind} ${m.label}${m.detail ? ": " + m.detail : ""}`)));
    }
    svg.append(g);
  });
  const legend = el("div", { class: "legend" }, ...["running", "sleeping", "input", "event", "child", "tool"].map((s) => {
    const k = sv("svg", { width: 10, height: 10 }, sv("rect", { class: "s-" + s, width: 10, height: 10, rx: 2 }));
    return el("span", {}, k, " ", { input: "waiting for input", event: "waiting for an event", child: "waiting for a child", tool: "waiting for a tool" }[s] || s);
  }));
  box.replaceChildren(legend, svg, tl.truncated ? el("p", { class: "muted" }, "The tree is larger than one timeline shows; the first 500 threads are drawn.") : "");
}

function fmtSpan(ms) {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 90000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 5400000) return `${Math.round(ms / 60000)}m`;
  if (ms < 172800000) return `${(ms / 3600000).toFixed(1)}h`;
  return `${(ms / 86400000).toFixed(1)}d`;
}

function setTab(tab) {
  state.tab = tab;
  $("tab-transcript").classList.toggle("on", tab === "transcript");
  $("tab-timeline").classList.toggle("on", tab === "timeline");
  $("transcript-pane").hidden = tab !== "transcript";
  $("timeline-pane").hidden = tab !== "timeline";
  if (tab === "timeline") loadTimeline();
}

// ---- live updates ----

// refresh reads again what the changed threads touch, at most every
// 300 ms.
let pending = null, running = false, dirtyList = false, dirtyTree = false;
function changed(ev) {
  const ids = ev.threads || [];
  if (ev.many || state.offset === 0 || ids.some((id) => state.rows.some((r) => r.id === id))) dirtyList = true;
  if (ev.many || ids.some((id) => state.treeIDs.has(id) || id === state.root)) dirtyTree = true;
  // A new child of the tree is not in it yet: its parent changes too.
  if (!pending && (dirtyList || dirtyTree)) pending = setTimeout(refresh, 300);
}

async function refresh() {
  pending = null;
  if (running) { // one refresh at a time; this one runs again after
    pending = setTimeout(refresh, 300);
    return;
  }
  running = true;
  const list = dirtyList, tree = dirtyTree;
  dirtyList = dirtyTree = false;
  try {
    if (list) { await loadList(); await loadStatus(); }
    if (tree) {
      await loadTree();
      if (state.tab === "timeline") await loadTimeline();
    }
  } catch (e) { toast(e.message); } finally { running = false; }
}

function watch() {
  const es = new EventSource(streamURL("/v1/events"));
  // A new connection may have missed changes: read everything shown again.
  es.onopen = () => changed({ many: true });
  es.onmessage = (m) => changed(JSON.parse(m.data));
  es.onerror = () => { es.close(); setTimeout(watch, 2000); };
}

// ---- actions ----

async function startDialog() {
  const { data: agents } = await api("GET", "/v1/agents");
  $("start-agent").replaceChildren(...agents.map((a) => el("option", { value: a.key }, a.name === a.key ? a.name : `${a.name} (${a.key.slice(0, 8)})`)));
  $("start-dialog").showModal();
  $("start-text").focus();
}

async function start(ev) {
  ev.preventDefault();
  const text = $("start-text").value.trim();
  if (!text) return;
  try {
    const { data } = await api("POST", "/v1/threads", { agent: $("start-agent").value, text });
    $("start-dialog").close();
    $("start-text").value = "";
    state.offset = 0;
    await loadList();
    select(data.thread);
  } catch (e) { toast(e.message); }
}

async function send(ev) {
  ev.preventDefault();
  const text = $("input").value;
  if (!text.trim() || !state.selected) return;
  try {
    await api("POST", `/v1/threads/${encodeURIComponent(state.selected)}/messages`, { text });
    $("input").value = "";
  } catch (e) { toast(e.message); }
}

async function action(name) {
  if (!state.selected) return;
  try {
    await api("POST", `/v1/threads/${encodeURIComponent(state.selected)}/${name}`);
    toast(name === "close" ? "Closing the thread and its subtree." : "Compacting the history.");
  } catch (e) { toast(e.message); }
}

function route() {
  const m = /^#\/t\/([^/]+)/.exec(location.hash);
  if (m) showThread(decodeURIComponent(m[1]));
}

// signIn takes the session's key from the address (the sign-in redirect
// puts it in the fragment) into this origin's storage, and clears the
// address.
function signIn() {
  const m = /^#key=([0-9a-f]+)$/.exec(location.hash);
  if (m) {
    localStorage.setItem("infinity.key", m[1]);
    history.replaceState(null, "", location.pathname);
  }
  state.csrf = localStorage.getItem("infinity.key") || "";
}

async function main() {
  signIn();
  try {
    await api("GET", "/v1/status");
  } catch (e) {
    $("signin").hidden = false;
    $("new-thread").hidden = true;
    $("sign-out").hidden = true;
    return;
  }
  $("app").hidden = false;
  let typing = null;
  $("search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => { state.offset = 0; loadList().catch((e) => toast(e.message)); }, 250); });
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("status-filter").addEventListener("change", () => { state.offset = 0; loadList().catch((e) => toast(e.message)); });
  $("roots-only").addEventListener("change", () => { state.offset = 0; loadList().catch((e) => toast(e.message)); });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadList().catch((e) => toast(e.message)); });
  $("next").addEventListener("click", () => { state.offset += PAGE; loadList().catch((e) => toast(e.message)); });
  $("new-thread").addEventListener("click", () => startDialog().catch((e) => toast(e.message)));
  $("start-form").addEventListener("submit", start);
  $("start-cancel").addEventListener("click", () => $("start-dialog").close());
  $("send").addEventListener("submit", send);
  $("input").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(e); });
  $("close").addEventListener("click", () => action("close"));
  $("compact").addEventListener("click", () => action("compact"));
  $("tab-transcript").addEventListener("click", () => setTab("transcript"));
  $("tab-timeline").addEventListener("click", () => setTab("timeline"));
  $("sign-out").addEventListener("click", async () => {
    try { await api("POST", "/v1/ui/logout"); } catch (_) { /* signed out anyway */ }
    localStorage.removeItem("infinity.key");
    location.reload();
  });
  window.addEventListener("hashchange", route);
  try {
    await Promise.all([loadList(), loadStatus()]);
  } catch (e) { toast(e.message); }
  watch();
  route();
  document.body.dataset.ready = "true";
  document.body.dataset.readyMs = String(Math.round(performance.now()));
}

main();
