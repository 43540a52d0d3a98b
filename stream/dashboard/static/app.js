// finstream dashboard: plain JavaScript + SVG, no library. Updates arrive as server-sent events.
"use strict";
const MAX_POINTS = 160, MAX_ALERTS = 14, MAX_RECS = 12;
const series = new Map();          // symbol -> [forecast items]
const alerts = [];                 // newest first
const recs = new Map();            // user -> latest recommendation
let counts = {}, dirty = true;

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const fmt = (x, d = 2) => (x == null || !isFinite(x) ? "–" : Number(x).toFixed(d));
const ms = (s) => (s == null ? "–" : s < 1 ? (s * 1000).toFixed(0) + " ms" : s.toFixed(2) + " s");
const day = (t) => new Date(t).toISOString().slice(0, 10);

function onUpdate(msg) {
  for (const [kind, item] of msg.items) {
    if (kind === "forecast") {
      let s = series.get(item.symbol);
      if (!s) { s = []; series.set(item.symbol, s); }
      s.push(item);
      if (s.length > MAX_POINTS) s.splice(0, s.length - MAX_POINTS);
    } else if (kind === "alert") {
      alerts.unshift(item);
      if (alerts.length > MAX_ALERTS) alerts.length = MAX_ALERTS;
    } else if (kind === "recommendation") {
      recs.delete(item.user_id);
      recs.set(item.user_id, item);
      if (recs.size > MAX_RECS) recs.delete(recs.keys().next().value);
    }
  }
  counts = msg.counts || counts;
  dirty = true;
}

function step(points) {           // typical spacing of the price series: where "next tick" lands
  const d = [];
  for (let i = 1; i < points.length; i++) d.push(points[i].ts - points[i - 1].ts);
  d.sort((a, b) => a - b);
  return d.length ? d[Math.floor(d.length / 2)] : 60000;
}

function chart(symbol, pts) {
  const W = 400, H = 170, L = 46, R = 8, T = 8, B = 18;
  const dt = step(pts);
  const target = (p) => p.ts + (p.horizon_ms || dt);
  const xs = pts.map((p) => p.ts).concat(pts.map(target));
  const ys = pts.flatMap((p) => [p.price, p.lo, p.hi]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => L + ((x - x0) / Math.max(x1 - x0, 1)) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / Math.max(y1 - y0, 1e-9)) * (H - T - B);
  const line = (arr) => arr.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
  const price = line(pts.map((p) => [p.ts, p.price]));
  const pred = line(pts.map((p) => [target(p), p.predicted]));
  const band = line(pts.map((p) => [target(p), p.hi]).concat(pts.map((p) => [target(p), p.lo]).reverse()));
  const last = pts[pts.length - 1];
  const grid = [y0, (y0 + y1) / 2, y1].map((y) =>
    `<line class="grid" x1="${L}" x2="${W - R}" y1="${sy(y)}" y2="${sy(y)}"/><text class="axis" x="2" y="${sy(y) + 3}">${fmt(y)}</text>`).join("");
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" data-symbol="${esc(symbol)}" data-points="${pts.length}">
    ${grid}<polygon class="band" points="${band}"/><polyline class="price" points="${price}"/>
    <polyline class="pred" points="${pred}"/>
    <line class="bar" x1="${sx(target(last))}" x2="${sx(target(last))}" y1="${sy(last.hi)}" y2="${sy(last.lo)}"/>
    <circle class="now" cx="${sx(target(last))}" cy="${sy(last.predicted)}" r="3"/>
    <text class="axis" x="${L}" y="${H - 4}">${day(x0)}</text>
    <text class="axis" x="${W - R}" y="${H - 4}" text-anchor="end">${day(x1)}</text></svg>`;
}

function renderCharts() {
  const box = $("#charts");
  for (const [symbol, pts] of [...series.entries()].sort()) {
    if (!pts.length) continue;
    let el = box.querySelector(`[data-box="${CSS.escape(symbol)}"]`);
    if (!el) {
      el = document.createElement("div");
      el.className = "chart-box";
      el.dataset.box = symbol;
      box.appendChild(el);
    }
    const p = pts[pts.length - 1];
    const sign = p.ret >= 0 ? "+" : "";
    el.innerHTML = `<div class="title"><b>${esc(symbol)}</b><span>${fmt(p.price)} → ${fmt(p.predicted)}
      (${sign}${fmt(100 * p.ret, 3)}%, 95% ${fmt(p.lo)}–${fmt(p.hi)}) · ${esc(p.horizon)} · ${esc(p.model)} v${esc(p.version)}</span></div>` +
      chart(symbol, pts);
  }
}

function renderTables() {
  $("#alerts tbody").innerHTML = alerts.map((a) => `<tr><td>${esc(a.account_id)}</td>
    <td>${fmt(a.amount)} ${esc(a.currency)}</td><td><span class="score">${fmt(a.score, 3)}</span>
    <span class="dim">/ ${fmt(a.threshold, 3)}</span></td><td>${a.reasons.map((r) => `<div>${esc(r)}</div>`).join("")}</td></tr>`).join("");
  $("#recs tbody").innerHTML = [...recs.values()].reverse().map((r) => `<tr><td>${esc(r.user_id)}</td>
    <td>${r.holdings.map((h) => `<span class="tag">${esc(h)}</span>`).join("") || '<span class="dim">nothing yet</span>'}</td>
    <td>${r.items.slice(0, 3).map((i) => `<span class="tag">${esc(i.product_id)} ${fmt(i.score, 2)}</span>`).join("")}
    ${r.reason ? `<div class="dim">${esc(r.reason)}</div>` : ""}</td></tr>`).join("");
  $("#forecast-count").textContent = counts.forecast || 0;
  $("#alert-count").textContent = counts.alert || 0;
  $("#rec-count").textContent = counts.recommendation || 0;
  $("#dead-count").textContent = counts.dead_letter || 0;
}

function onMetrics(m) {
  const st = $("#status");
  if (m.worker !== "up") { st.className = "pill wait"; st.textContent = "worker: " + m.worker; return; }
  const down = Object.entries(m.components || {}).filter(([, ok]) => !ok).map(([c]) => c);
  st.className = "pill " + (m.ready ? "ok" : "bad");
  st.textContent = m.ready ? "worker ready" : "not ready: " + down.join(", ");
  $("#jobs tbody").innerHTML = Object.entries(m.jobs || {}).map(([job, j]) => `<tr data-job="${esc(job)}">
    <td>${esc(job)}</td><td class="rate">${fmt(j.events_per_s, 1)}</td><td class="total">${j.events_total}</td>
    <td>${ms(j.latency_s.p50)} / ${ms(j.latency_s.p95)} / ${ms(j.latency_s.p99)}</td></tr>`).join("");
  const lag = Object.entries(m.lag || {}).map(([t, v]) => `${esc(t)} <b>${v}</b>`).join(" · ") || "–";
  const models = (m.models || []).map((x) => `<span class="tag">${esc(x.slot)}: ${esc(x.model)} v${esc(x.version)}</span>`).join("");
  const dead = Object.entries(m.dead_letters || {}).map(([r, n]) => `<span class="tag">${esc(r)}: ${n}</span>`).join("") || "none";
  $("#ops").innerHTML = `<div class="ops-row">lag: ${lag}</div><div class="ops-row">${models}</div>
    <div class="ops-row">dead letters: ${dead}</div><div class="ops-row dim">in flight: ${m.inflight ?? "–"}</div>`;
}

function frame() {                // a timer, not requestAnimationFrame: it also runs in a background tab
  if (dirty) { dirty = false; renderCharts(); renderTables(); }
}

const source = new EventSource("/events");
source.addEventListener("update", (e) => onUpdate(JSON.parse(e.data)));
source.addEventListener("metrics", (e) => onMetrics(JSON.parse(e.data)));
source.onerror = () => { const st = $("#status"); st.className = "pill bad"; st.textContent = "dashboard connection lost, retrying…"; };
setInterval(frame, 250);
