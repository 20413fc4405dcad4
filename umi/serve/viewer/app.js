// The trace viewer: the run list (#/) and one run's steps (#/runs/ID), live from the run's event stream.
// Plain DOM code, no build step. Model output is shown as text (textContent), never as HTML.
"use strict";

const ROLE_ORDER = ["planner", "caller", "tool", "summarizer", "agent"];
const FOLD_CHARS = 360;
let stream = null; // the AbortController of the open event stream
let listTimer = null;

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function headers() {
  const key = localStorage.getItem("umi-key");
  return key ? { Authorization: "Bearer " + key } : {};
}

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (res.status === 401) {
    $("#keybar").classList.remove("hidden");
    throw new Error("API key needed");
  }
  const body = await res.json();
  if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
  return body;
}

const fmtInt = (n) => Math.round(n || 0).toLocaleString("en-US");
const fmtSec = (s) => (s || 0) < 10 ? (s || 0).toFixed(2) : (s || 0).toFixed(1);

function totals(costs) {
  let tokens = 0, seconds = 0;
  for (const c of Object.values(costs || {})) {
    tokens += (c.prompt_tokens || 0) + (c.new_tokens || 0);
    seconds += c.seconds || 0;
  }
  return { tokens, seconds };
}

function ago(ts) {
  const d = Date.now() / 1000 - ts;
  if (d < 60) return Math.max(0, Math.round(d)) + " s ago";
  if (d < 3600) return Math.round(d / 60) + " min ago";
  if (d < 86400) return Math.round(d / 3600) + " h ago";
  return new Date(ts * 1000).toISOString().slice(0, 10);
}

function statusPill(status) {
  return el("span", { class: "pill s-" + status.replace(/\s/g, "_"), "data-status": status }, status.replace("_", " "));
}

// ---- the run list --------------------------------------------------------------------------------------
async function showRuns() {
  const main = $("#main");
  main.replaceChildren($("#tpl-runs").content.cloneNode(true));
  const form = $("#new-run");
  form.kind.addEventListener("change", () => form.source.classList.toggle("hidden", form.kind.value !== "mcp"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const kind = form.kind.value;
    const source = kind === "mcp" ? { mcp: form.source.value } : { demo: kind.split(":")[1] };
    try {
      const run = await api("/v1/runs", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ query: form.query.value, tool_source: source }),
      });
      location.hash = "#/runs/" + run.id;
    } catch (e) {
      alert(e.message);
    }
  });
  await refreshRuns();
  listTimer = setInterval(refreshRuns, 1500);
}

async function refreshRuns() {
  const tbody = $("#run-rows");
  if (!tbody) return;
  let runs;
  try {
    runs = (await api("/v1/runs")).data;
  } catch (e) {
    return;
  }
  $("#run-count").textContent = runs.length + (runs.length === 1 ? " run" : " runs");
  $("#no-runs").classList.toggle("hidden", runs.length > 0);
  tbody.replaceChildren(
    ...runs.map((r) => {
      const t = totals(r.costs);
      return el(
        "tr",
        { class: "run-row", "data-run": r.id, onclick: () => (location.hash = "#/runs/" + r.id) },
        el("td", {}, statusPill(r.status)),
        el("td", { class: "task" }, el("a", { href: "#/runs/" + r.id, text: r.query })),
        el("td", { class: "source", text: r.source, title: r.source }),
        el("td", { class: "num", text: fmtInt(r.records) }),
        el("td", { class: "num", text: r.done ? fmtInt(t.tokens) : "…" }),
        el("td", { class: "num", text: r.done ? fmtSec(t.seconds) : "…" }),
        el("td", { class: "num muted", text: ago(r.created) }),
      );
    }),
  );
}

// ---- one run -------------------------------------------------------------------------------------------
function folded(text, cls) {
  text = text || "";
  if (text.length <= FOLD_CHARS) return el("pre", { class: cls, text });
  return el(
    "details",
    { class: "fold" },
    el("summary", {}, el("span", { class: "preview", text: text.slice(0, 160) + "…" }),
      el("span", { class: "muted", text: " " + fmtInt(text.length) + " chars · show all" })),
    el("pre", { class: cls, text }),
  );
}

function costBadge(r) {
  if (r.role === "tool") return el("span", { class: "cost", text: fmtSec(r.seconds) + " s" });
  return el("span", { class: "cost", text: `${fmtInt(r.prompt_tokens)} → ${fmtInt(r.new_tokens)} tok · ${fmtSec(r.seconds)} s` });
}

function recordRow(r) {
  const head = (label, extra) => el("div", { class: "rec-head" }, el("span", { class: "role r-" + r.role, text: label }), extra, costBadge(r));
  let body;
  if (r.role === "planner") {
    const route = (r.parsed && r.parsed.route) || "none";
    body = [head("planner", el("span", { class: "route", text: "→ " + route })), el("pre", { class: "thought", text: r.output.trim() || "(empty output)" })];
  } else if (r.role === "caller") {
    const p = r.parsed || {};
    // The agent's loop steering: APIs the grammar left out because the episode looped on them.
    const leftOut = p.left_out && p.left_out.length ? el("span", { class: "tag-left-out", title: "the episode made this exact call repeat_limit times, so the caller's grammar left the API out", text: "left out (looped): " + p.left_out.join(", ") }) : null;
    body = [head("caller", [p.action ? el("code", { class: "action", text: p.action }) : null, leftOut]),
      p.arguments ? el("pre", { class: "args", text: JSON.stringify(p.arguments, null, 2) }) : el("pre", { class: "raw", text: r.output.trim() || "(empty output)" })];
  } else if (r.role === "tool") {
    const call = r.tool_call || {};
    const tags = [el("code", { class: "action", text: call.name || "" }), r.error ? el("span", { class: "tag-error", text: "failed" }) : null];
    body = [head("observation", tags), folded(r.observation, r.error ? "obs error-text" : "obs")];
  } else if (r.role === "summarizer") {
    body = [head("summarizer"), el("div", { class: "answer-text", text: (r.parsed && r.parsed.answer) || r.output.trim() })];
  } else {
    body = [head(r.role), el("pre", { class: "raw", text: r.output || "" })];
  }
  const err = r.error && r.role !== "tool" ? el("div", { class: "rec-error", text: r.error }) : null;
  return el("div", { class: "rec rec-" + r.role, "data-seq": r.seq }, ...body, err);
}

function addRecord(view, r) {
  let card = view.steps.get(r.step);
  if (!card) {
    card = el("article", { class: "step", "data-step": r.step }, el("div", { class: "step-num", text: "step " + (r.step + 1) }), el("div", { class: "recs" }));
    view.steps.set(r.step, card);
    const after = [...view.steps.keys()].filter((k) => k > r.step).sort((a, b) => a - b)[0];
    view.list.insertBefore(card, after === undefined ? null : view.steps.get(after));
  }
  $(".recs", card).append(recordRow(r));
  view.records.push(r);
  renderCosts(view);
  $("#step-count").textContent = view.steps.size + (view.steps.size === 1 ? " step" : " steps");
}

function renderCosts(view, costs) {
  if (!costs) {
    costs = {};
    for (const r of view.records) {
      if (r.role === "tool" || r.role === "agent") continue;
      const c = (costs[r.role] = costs[r.role] || { calls: 0, prompt_tokens: 0, new_tokens: 0, seconds: 0 });
      c.calls += 1; c.prompt_tokens += r.prompt_tokens; c.new_tokens += r.new_tokens; c.seconds += r.seconds;
    }
  }
  const roles = Object.keys(costs).sort((a, b) => ROLE_ORDER.indexOf(a) - ROLE_ORDER.indexOf(b));
  $("#costs").replaceChildren(
    ...roles.map((role) => {
      const c = costs[role];
      return el("div", { class: "cost-card" }, el("div", { class: "role r-" + role, text: role }),
        el("div", { class: "big", text: fmtInt(c.prompt_tokens + c.new_tokens) }), el("div", { class: "muted", text: `tokens · ${fmtInt(c.calls)} calls · ${fmtSec(c.seconds)} s` }));
    }),
  );
}

function renderHeader(run) {
  $("#run-status").replaceChildren(statusPill(run.status));
  $("#run-source").textContent = run.source;
  const box = $("#answer");
  const text = run.answer || run.reason;
  box.classList.toggle("hidden", !text);
  box.classList.toggle("gave-up", !run.answer);
  $("#answer-label").textContent = run.answer ? "answer" : run.done ? "how it ended" : "";
  $("#answer-text").textContent = text || "";
}

async function showRun(id) {
  const main = $("#main");
  main.replaceChildren(
    el("a", { href: "#/", class: "back", text: "← all runs" }),
    el("section", { class: "panel run" },
      el("div", { class: "run-head" }, el("div", { id: "run-status" }), el("h1", { id: "run-query" }), el("span", { class: "muted", id: "step-count" })),
      el("div", { class: "muted source-line", id: "run-source" }),
      el("div", { class: "answer hidden", id: "answer" }, el("div", { class: "answer-label", id: "answer-label" }), el("div", { id: "answer-text" })),
      el("div", { class: "costs", id: "costs" }),
      el("div", { class: "timeline", id: "steps" })),
  );
  let run;
  try {
    run = await api("/v1/runs/" + encodeURIComponent(id) + "?");
  } catch (e) {
    main.append(el("p", { class: "rec-error", text: e.message }));
    return;
  }
  $("#run-query").textContent = run.query;
  renderHeader(run);
  const view = { steps: new Map(), list: $("#steps"), records: [] };
  let last = -1;
  for (const r of run.steps) { addRecord(view, r); last = r.seq; }
  if (run.done) { renderCosts(view, Object.keys(run.costs).length ? run.costs : null); return; }
  follow(id, last, view);
}

async function follow(id, last, view) {
  stream = new AbortController();
  const res = await fetch("/v1/runs/" + encodeURIComponent(id) + "/events", {
    headers: { ...headers(), "Last-Event-ID": String(last) },
    signal: stream.signal,
  });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trimStart();
      }
      if (!data) continue;
      const payload = JSON.parse(data);
      if (event === "step" && payload.seq > last) { last = payload.seq; addRecord(view, payload); }
      if (event === "end" && payload) { renderHeader(payload); if (Object.keys(payload.costs || {}).length) renderCosts(view, payload.costs); }
    }
  }
}

// ---- routing -------------------------------------------------------------------------------------------
function route() {
  if (stream) { stream.abort(); stream = null; }
  if (listTimer) { clearInterval(listTimer); listTimer = null; }
  const m = location.hash.match(/^#\/runs\/(.+)$/);
  if (m) showRun(decodeURIComponent(m[1]));
  else showRuns();
}

async function showModel() {
  try {
    const m = (await api("/v1/models")).data[0];
    const roles = Object.entries(m.roles).map(([r, b]) => `${r}: ${b.engine}${b.adapter ? "#" + b.adapter : ""}`).join("\n");
    $("#model").textContent = m.id;
    $("#model").title = roles + (m.source ? "\n" + m.source : "");
  } catch (e) { /* the key bar says why */ }
}

$("#key-save").addEventListener("click", () => {
  localStorage.setItem("umi-key", $("#key").value);
  $("#keybar").classList.add("hidden");
  showModel();
  route();
});
window.addEventListener("hashchange", route);
showModel();
route();
