// rushhour dashboard: fills the page shells from the JSON API. No external resources.
"use strict";
const app = document.getElementById("app");
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const token = () => localStorage.getItem("rushhour-token") || "";

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  const res = await fetch(path, Object.assign({}, opts, { headers }));
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
  if (!res.ok) {
    const e = (body && body.error) || { type: "Error", message: res.statusText, hint: "" };
    const err = new Error(e.message); err.status = res.status; err.hint = e.hint; throw err;
  }
  return body;
}
const fail = (e) => `<p class="error">${esc(e.message)}</p>${e.hint ? `<p class="muted">${esc(e.hint)}</p>` : ""}`;
const fmtTime = (iso) => iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "";
function why(a) {
  const parts = [];
  if (a.expected != null && a.expected > 0) {
    const pct = Math.round((a.value - a.expected) / a.expected * 100);
    parts.push(`${pct > 0 ? "+" : ""}${pct}% vs expected ${Math.round(a.expected)}`);
  }
  if (a.score != null) parts.push(`${a.score.toFixed(1)} deviations out (deviation ${a.deviation == null ? "?" : Math.round(a.deviation)})`);
  if (a.explanation) for (const [k, v] of Object.entries(a.explanation)) parts.push(`${k}: ${v}`);
  return parts.join("; ");
}
function alertWhy(a) {
  const first = (a.alerts || [a])[0] || {};
  return first.sentence || (first.explanation && JSON.stringify(first.explanation)) || "";
}
const labelText = (labels) => Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");

function sparkSvg(values) {
  if (!values || values.length < 2) return '<span class="muted">–</span>';
  const w = 160, h = 28, lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
  const pts = values.map((v, i) => `${(i / (values.length - 1) * w).toFixed(1)},${(h - 2 - (v - lo) / span * (h - 4)).toFixed(1)}`);
  return `<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><polyline fill="none" stroke="#2563eb" stroke-width="1.4" points="${pts.join(" ")}"/></svg>`;
}

// -- series list ------------------------------------------------------------------------------
async function seriesList() {
  const params = new URLSearchParams(location.search);
  const offset = +(params.get("offset") || 0), q = params.get("q") || "", limit = 50;
  app.innerHTML = `<h1>Series</h1><form class="bar" method="get"><input name="q" placeholder="filter by key" value="${esc(q)}"><button>Filter</button><span id="count" class="muted"></span></form><div id="list"><p class="muted">loading…</p></div>`;
  try {
    const qs = new URLSearchParams({ limit, offset, sparkline: 48 }); if (q) qs.set("q", q);
    const page = await api("/series?" + qs);
    document.getElementById("count").textContent = `${page.total.toLocaleString()} series`;
    const rows = page.series.map((s) => `<tr><td><a href="/ui/series/${s.id}">${esc(s.name)}</a></td><td class="muted">${esc(labelText(s.labels))}</td>
      <td>${sparkSvg(s.sparkline)}</td><td><span class="badge ${s.status.replace(" ", "")}">${esc(s.status)}</span>${s.anomalies_recent ? ` <span class="muted">${s.anomalies_recent} in the last hour</span>` : ""}</td><td class="muted">${esc(fmtTime(s.last))}</td></tr>`).join("");
    const nav = (o, text) => { const p = new URLSearchParams({ offset: o }); if (q) p.set("q", q); return `<a href="?${p}">${text}</a>`; };
    document.getElementById("list").innerHTML = page.series.length
      ? `<table><thead><tr><th>Series</th><th>Labels</th><th>Last day</th><th>Status</th><th>Last bucket</th></tr></thead><tbody>${rows}</tbody></table>
         <p class="bar">${offset > 0 ? nav(Math.max(0, offset - limit), "← previous") : ""} <span class="muted">${offset + 1}–${offset + page.series.length} of ${page.total}</span> ${offset + limit < page.total ? nav(offset + limit, "next →") : ""}</p>`
      : `<p class="muted">No series yet. Push points with POST /ingest or <a href="/ui/upload">upload a file</a>.</p>`;
  } catch (e) { document.getElementById("list").innerHTML = fail(e); }
}

// -- one series: requests, band, anomalies, score, forecast -----------------------------------
async function chartPage(id) {
  app.innerHTML = `<h1 id="title">Series ${esc(id)}</h1><div class="bar"><label>Range <select id="range"><option value="21600">6 hours</option><option value="86400" selected>1 day</option><option value="604800">1 week</option><option value="2592000">30 days</option></select></label><button id="reset">Reset zoom</button><span class="muted">Drag across the chart to zoom.</span></div>
    <div class="panel"><div id="chart"></div><div id="score"></div><div class="legend-note" id="note"></div></div><h2>Anomalies in view</h2><div id="anoms"></div>`;
  let info;
  try { info = await api(`/series/${id}`); } catch (e) { app.innerHTML = fail(e); return; }
  document.getElementById("title").textContent = info.key;
  const width = Math.max(600, app.clientWidth - 30);
  let plot = null, scorePlot = null, base = null;
  async function load(from, to) {
    const qs = new URLSearchParams({ resolution: Math.round(width) });
    if (from) qs.set("from", new Date(from * 1000).toISOString());
    if (to) qs.set("to", new Date(to * 1000).toISOString());
    const d = await api(`/series/${id}/points?${qs}`);
    let fc = null;
    if (!to || to >= base?.end) { try { fc = await api(`/forecast/${id}?horizon=6h`); } catch (e) { fc = null; } }
    return build(d, fc);
  }
  function build(d, fc) {
    const k = d.k, n = d.t.length;
    const idx = new Map(d.t.map((t, i) => [t, i]));
    const marks = new Array(n).fill(null);
    for (const a of d.anomalies) { const i = idx.get(a.start - (a.start % d.step)); if (i !== undefined) marks[i] = d.max[i]; }
    const upper = d.expected.map((e, i) => e == null || d.deviation[i] == null ? null : e + k * d.deviation[i]);
    const lower = d.expected.map((e, i) => e == null || d.deviation[i] == null ? null : Math.max(0, e - k * d.deviation[i]));
    let t = d.t.slice(), cols = [d.mean, d.expected, upper, lower, marks];
    let fmean = new Array(n).fill(null), fhi = new Array(n).fill(null), flo = new Array(n).fill(null);
    if (fc && fc.t.length) {
      const stride = Math.max(1, Math.round(d.step / (fc.t[1] - fc.t[0] || d.step)));
      for (let i = 0; i < fc.t.length; i += stride) {
        if (fc.t[i] <= t[t.length - 1]) continue;
        t.push(fc.t[i]); for (const c of cols) c.push(null);
        fmean.push(fc.Value[i]); fhi.push(fc["q0.9"] ? fc["q0.9"][i] : null); flo.push(fc["q0.1"] ? fc["q0.1"][i] : null);
      }
    }
    const score = d.score.concat(new Array(t.length - n).fill(null));
    return { d, fc, data: [t, ...cols, fmean, fhi, flo], score: [t, score], anomalies: d.anomalies };
  }
  function draw(b) {
    const opts = {
      width, height: 340, cursor: { sync: { key: "rh" }, drag: { x: true, y: false } },
      scales: { x: { time: true } },
      series: [{},
        { label: "requests", stroke: "#1d4ed8", width: 1.5 },
        { label: "expected", stroke: "#16a34a", width: 1, dash: [4, 3] },
        { label: "band high", stroke: "rgba(22,163,74,0.35)", width: 1 },
        { label: "band low", stroke: "rgba(22,163,74,0.35)", width: 1 },
        { label: "anomaly", stroke: "#dc2626", width: 0, points: { show: true, size: 9, fill: "#dc2626", stroke: "#7f1d1d" }, paths: () => null },
        { label: "forecast", stroke: "#9333ea", width: 1.5, dash: [6, 4] },
        { label: "q0.9", stroke: "rgba(147,51,234,0.35)", width: 1 },
        { label: "q0.1", stroke: "rgba(147,51,234,0.35)", width: 1 }],
      bands: [{ series: [3, 4], fill: "rgba(22,163,74,0.10)" }, { series: [7, 8], fill: "rgba(147,51,234,0.10)" }],
      axes: [{}, { label: "requests / bucket", size: 70 }],
      hooks: { setSelect: [(u) => { if (u.select.width > 5) { const lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x"); u.setSelect({ width: 0 }, false); zoom(lo, hi); } }] },
    };
    const sopts = { width, height: 130, cursor: { sync: { key: "rh" } }, scales: { x: { time: true } },
      series: [{}, { label: "anomaly score (σ)", stroke: "#ea580c", fill: "rgba(234,88,12,0.12)", width: 1 }], axes: [{}, { size: 70 }] };
    document.getElementById("chart").innerHTML = ""; document.getElementById("score").innerHTML = "";
    plot = new uPlot(opts, b.data, document.getElementById("chart"));
    scorePlot = new uPlot(sopts, b.score, document.getElementById("score"));
    document.getElementById("chart").dataset.anomalies = b.anomalies.length;
    document.getElementById("note").textContent = `${b.d.t.length} points, one per ${b.d.step / 60} min (min/max/mean computed by the store); band = expected ± ${b.d.k}·deviation` + (b.fc ? `; forecast: ${b.fc.model.name} v${b.fc.model.version}` : "");
    document.getElementById("anoms").innerHTML = b.anomalies.length
      ? `<table><thead><tr><th>Time</th><th>Value</th><th>Expected</th><th>Score</th><th>Severity</th><th>Why</th></tr></thead><tbody>${b.anomalies.slice(0, 50).map((a) => `<tr><td>${esc(fmtTime(a.time))}</td><td>${a.value.toFixed(0)}</td><td>${a.expected == null ? "" : a.expected.toFixed(0)}</td><td>${a.score == null ? "" : a.score.toFixed(1)}</td><td>${esc(a.severity)} ${esc(a.direction)}</td><td class="muted">${esc(why(a))}</td></tr>`).join("")}</tbody></table>`
      : '<p class="muted">None in this range.</p>';
  }
  async function zoom(lo, hi) { try { draw(await load(Math.floor(lo), Math.ceil(hi))); } catch (e) { document.getElementById("note").innerHTML = fail(e); } }
  const linked = new URLSearchParams(location.search);  // an alert's link: /series/<id>?from=..&to=..
  async function reset() {
    try {
      if (linked.get("from") && linked.get("to")) {
        const lo = Date.parse(linked.get("from")) / 1000, hi = Date.parse(linked.get("to")) / 1000;
        linked.delete("from"); linked.delete("to");
        if (hi > lo) { const b = await load(lo, hi); base = { end: hi }; draw(b); return; }
      }
      const span = +document.getElementById("range").value;
      const first = await load(null, null);
      const end = first.d.t.length ? first.d.t[first.d.t.length - 1] + first.d.step : Date.now() / 1000;
      base = { end };
      draw(span === 86400 ? first : await load(end - span, end));
    } catch (e) { document.getElementById("chart").innerHTML = fail(e); }
  }
  document.getElementById("reset").onclick = reset;
  document.getElementById("range").onchange = reset;
  await reset();
}

// -- alerts: the alert list when the alerts feature backs it, else the stored anomalies ---------
async function alertsPage() {
  app.innerHTML = `<h1>Alerts</h1><div id="alerts"><p class="muted">loading…</p></div><h2>Anomalous buckets</h2><div id="anomalies"><p class="muted">loading…</p></div>`;
  const box = document.getElementById("alerts");
  try {
    const r = await api("/alerts?limit=100");
    box.innerHTML = r.alerts.length ? `<table><thead><tr><th>Time</th><th>Series</th><th>Status</th><th>Explanation</th><th>Deliveries</th></tr></thead><tbody>${r.alerts.map((a) => `<tr><td>${esc(fmtTime(a.created_at || a.time))}</td><td>${esc((a.alerts || [a]).map((x) => x.series).join(", "))}</td><td>${esc(a.status)}</td><td class="muted">${esc(alertWhy(a))}</td><td class="muted">${esc((a.deliveries || []).map((d) => d.channel + ": " + d.state).join(", "))}</td></tr>`).join("")}</tbody></table>` : '<p class="muted">No alerts sent yet.</p>';
  } catch (e) { box.innerHTML = fail(e); }
  const list = document.getElementById("anomalies");
  try {
    const r = await api("/anomalies?limit=100");
    list.innerHTML = r.anomalies.length ? `<table><thead><tr><th>Time</th><th>Series</th><th>Value</th><th>Expected</th><th>Severity</th><th>Why</th></tr></thead><tbody>${r.anomalies.map((a) => `<tr><td>${esc(fmtTime(a.time))}</td><td><a href="/ui/series/${a.series_id}">${esc(a.series)}</a></td><td>${a.value.toFixed(0)}</td><td>${a.expected == null ? "" : a.expected.toFixed(0)}</td><td>${esc(a.severity)} ${esc(a.direction)}</td><td class="muted">${esc(why(a))}</td></tr>`).join("")}</tbody></table>` : '<p class="muted">No anomalies stored.</p>';
  } catch (e) { list.innerHTML = fail(e); }
}

function tokenBar() {
  return `<div class="bar"><label>API token <input id="tok" type="password" size="44" value="${esc(token())}"></label><button id="savetok">Remember</button></div>`;
}
function bindToken() { document.getElementById("savetok").onclick = (ev) => { ev.preventDefault(); localStorage.setItem("rushhour-token", document.getElementById("tok").value.trim()); }; }

async function silencesPage() {
  app.innerHTML = `<h1>Silences</h1>${tokenBar()}<form id="sil" class="panel bar"><input name="series" placeholder="series name" required><input name="labels" placeholder="more matchers: dc=a, region=~eu-.*"><label>for <select name="hours"><option>1</option><option>4</option><option>24</option></select> h</label><input name="comment" placeholder="why"><button class="primary">Silence</button></form><div id="msg"></div><div id="list"></div>`;
  bindToken();
  const list = async () => {
    try {
      const r = await api("/silences");
      document.getElementById("list").innerHTML = r.silences.length ? `<table><thead><tr><th>Matchers</th><th>From</th><th>Until</th><th>Comment</th></tr></thead><tbody>${r.silences.map((s) => `<tr><td>${esc((s.matchers || []).join(", "))}</td><td>${esc(fmtTime(s.starts_at))}</td><td>${esc(fmtTime(s.ends_at))}</td><td>${esc(s.comment)}</td></tr>`).join("")}</tbody></table>` : '<p class="muted">No silences.</p>';
    } catch (e) { document.getElementById("list").innerHTML = fail(e); }
  };
  document.getElementById("sil").onsubmit = async (ev) => {
    ev.preventDefault(); localStorage.setItem("rushhour-token", document.getElementById("tok").value.trim());
    const f = new FormData(ev.target), matchers = ["series=" + f.get("series")];
    for (const m of String(f.get("labels") || "").split(",")) if (m.trim()) matchers.push(m.trim());
    const ends = new Date(Date.now() + (+f.get("hours")) * 3600e3).toISOString();
    try { await api("/silences", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ matchers, ends_at: ends, comment: f.get("comment") || "" }) }); document.getElementById("msg").innerHTML = '<p>Silence created.</p>'; list(); }
    catch (e) { document.getElementById("msg").innerHTML = fail(e); }
  };
  list();
}

async function uploadPage() {
  app.innerHTML = `<h1>Upload</h1>${tokenBar()}<form id="up" class="panel bar"><input type="file" name="file" required accept=".csv,.jsonl,.ndjson,.json"><input name="series" placeholder="series name for CSV" value="requests"><button class="primary">Upload</button></form><p class="muted">CSV with <code>timestamp,value</code> (extra columns become labels) or JSON lines of points. Results appear as the pipeline commits them.</p><div id="result"></div>`;
  bindToken();
  document.getElementById("up").onsubmit = async (ev) => {
    ev.preventDefault(); localStorage.setItem("rushhour-token", document.getElementById("tok").value.trim());
    const f = new FormData(ev.target), series = f.get("series") || "requests";
    const body = new FormData(); body.append("file", f.get("file"));
    const out = document.getElementById("result"); out.innerHTML = '<p class="muted">uploading…</p>';
    try {
      const r = await api("/ingest?series=" + encodeURIComponent(series), { method: "POST", body });
      const rejected = Object.entries(r.rejected).map(([k, v]) => `${v} × ${k}`).join(", ");
      const ids = {};
      for (const key of r.series.slice(0, 20)) {  // look each up by key: works with any number of series
        const found = await api("/series?" + new URLSearchParams({ q: key, limit: 10 }));
        for (const s of found.series) if (s.key === key) ids[key] = s.id;
      }
      out.innerHTML = `<div class="panel"><p><b>${r.accepted.toLocaleString()}</b> points committed${rejected ? `, rejected: ${esc(rejected)}` : ""}.</p>${r.examples.length ? `<pre>${esc(r.examples.join("\n"))}</pre>` : ""}<p>Series: ${r.series.map((k) => ids[k] ? `<a href="/ui/series/${ids[k]}">${esc(k)}</a>` : esc(k)).join(", ")}</p></div>`;
    } catch (e) { out.innerHTML = fail(e); }
  };
}

const pages = { series: seriesList, chart: () => chartPage(app.dataset.id), alerts: alertsPage, silences: silencesPage, upload: uploadPage };
(pages[app.dataset.page] || seriesList)();
