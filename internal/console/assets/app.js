// Seamless console: plain modern JavaScript, no build step. Every string from the
// server reaches the page through textContent (el() below), never as markup. The API
// token lives in sessionStorage and travels only in the Authorization header.
"use strict";

// The console asks for at most MAX_POINTS bars at a time: until /v1/bars can answer
// with a coarser derived interval (max_points), a wider range is cut to its newest
// MAX_POINTS bars and older ones are loaded as the chart is panned left.
const MAX_POINTS = 10000;
const TOKEN_KEY = "seamless.token";

// ---- DOM helpers ---------------------------------------------------------------

// el builds an element; children are nodes or strings (always text, never HTML).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function table(headers, rows, opts) {
  opts = opts || {};
  const thead = el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", {
    class: [h.num ? "num" : "", opts.onSort ? "sortable" : ""].join(" ").trim() || null,
    onclick: opts.onSort ? () => opts.onSort(i) : null,
  }, h.label || h))));
  return el("table", { id: opts.id }, thead, el("tbody", {}, rows));
}

function setStatus(msg) { document.getElementById("status").textContent = msg || ""; }

const fmtInt = (n) => (n === null || n === undefined) ? "—" : Number(n).toLocaleString("en-US");
const fmtTime = (s) => new Date(s * 1000).toISOString().replace(".000Z", "Z");
const fmtPct = (r) => (r === null || r === undefined || isNaN(r)) ? "—" : (100 * r).toFixed(1) + "%";
function fmtAge(sec) {
  if (sec < 120) return Math.round(sec) + " s";
  if (sec < 7200) return Math.round(sec / 60) + " min";
  if (sec < 172800) return Math.round(sec / 3600) + " h";
  return Math.round(sec / 86400) + " d";
}
const nowSec = () => Math.floor(Date.now() / 1000);

// ---- API -----------------------------------------------------------------------

class APIError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || ("HTTP " + status));
    this.status = status;
    this.code = body && body.error && body.error.code;
  }
}

async function api(path, params, init) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null) u.searchParams.set(k, String(v));
  }
  const headers = new Headers((init && init.headers) || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.set("Authorization", "Bearer " + token);
  const resp = await fetch(u, Object.assign({}, init, { headers, credentials: "omit", cache: "no-store" }));
  const text = await resp.text();
  if (!resp.ok) {
    let body = null;
    try { body = JSON.parse(text); } catch (_) { /* not JSON */ }
    if (resp.status === 401) setStatus("This server requires an API token: enter it above.");
    throw new APIError(resp.status, body);
  }
  const ct = resp.headers.get("Content-Type") || "";
  return ct.includes("json") ? JSON.parse(text) : text;
}

// ---- grid arithmetic (half-open [start, end) ranges, as the server) -------------

// subtract returns the parts of [start, end) outside the sorted, disjoint ranges.
function subtract(start, end, ranges) {
  const out = [];
  let cur = start;
  for (const r of ranges) {
    if (r.end <= cur) continue;
    if (r.start >= end) break;
    if (r.start > cur) out.push({ start: cur, end: Math.min(r.start, end) });
    cur = Math.max(cur, r.end);
    if (cur >= end) break;
  }
  if (cur < end) out.push({ start: cur, end });
  return out;
}

function overlap(ranges, start, end) {
  let n = 0;
  for (const r of ranges) n += Math.max(0, Math.min(r.end, end) - Math.max(r.start, start));
  return n;
}

// emptyRuns returns the covered ranges of [start, end) that hold no bar: runs of grid
// points inside coverage with no ts in the sorted tsList.
function emptyRuns(ranges, tsList, interval, start, end) {
  const out = [];
  let i = 0;
  for (const r of ranges) {
    const a = Math.max(r.start, start), b = Math.min(r.end, end);
    if (a >= b) continue;
    let t = a;
    while (i < tsList.length && tsList[i] < a) i++;
    while (t < b) {
      const next = (i < tsList.length && tsList[i] < b) ? tsList[i] : b;
      if (next > t) out.push({ start: t, end: next });
      if (next >= b) break;
      t = next + interval;
      i++;
    }
  }
  return out;
}

// ---- routing and polling -------------------------------------------------------

// The hash carries the tab and its state: #series, #detail?node_id=…&interval=…&start=…&end=…,
// #jobs, #cluster, #schemas, #health.
function route() {
  const h = location.hash.replace(/^#/, "");
  const [tab, query] = h.split("?");
  return { tab: tab || "series", params: new URLSearchParams(query || "") };
}

function link(tab, params) {
  const q = new URLSearchParams(params || {}).toString();
  return "#" + tab + (q ? "?" + q : "");
}

let generation = 0;

// poll calls fn now and then every base ms while the page stays, doubling the delay
// after each failure (up to 30 s) and going back to base after a success.
function poll(fn, base) {
  const gen = generation;
  let delay = base;
  const tick = async () => {
    if (gen !== generation) return;
    try {
      await fn();
      delay = base;
    } catch (e) {
      if (gen !== generation) return;
      setStatus(e.message);
      delay = Math.min(delay * 2, 30000);
    }
    if (gen === generation) setTimeout(tick, delay);
  };
  tick();
}

async function render() {
  generation++;
  setStatus("");
  const { tab, params } = route();
  for (const a of document.querySelectorAll("#tabs a")) {
    a.classList.toggle("active", a.dataset.tab === tab || (tab === "detail" && a.dataset.tab === "series"));
  }
  const main = document.getElementById("main");
  main.replaceChildren();
  const pages = { series: seriesPage, detail: detailPage, jobs: jobsPage, cluster: clusterPage, schemas: schemasPage, health: healthPage };
  const page = pages[tab] || seriesPage;
  try {
    await page(main, params);
  } catch (e) {
    setStatus(e.message);
  }
  document.body.dataset.rendered = tab;
}

// ---- Series --------------------------------------------------------------------

const WINDOWS = { life: "whole life", "1d": "last day", "7d": "last 7 days", "30d": "last 30 days" };
const WINDOW_SEC = { "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };

async function seriesPage(main, params) {
  const win = WINDOWS[params.get("window")] ? params.get("window") : "life";
  let sortCol = Number(params.get("sort") || 0), filter = params.get("q") || "";
  const filterBox = el("input", { id: "series-filter", type: "search", placeholder: "filter node ids", value: filter });
  const winSel = el("select", { id: "series-window" }, Object.entries(WINDOWS).map(([k, v]) => el("option", { value: k, selected: k === win }, v)));
  const holder = el("div", { id: "series-table" });
  main.append(el("h2", {}, "Series"), el("div", { class: "toolbar" }, filterBox, "coverage over", winSel), holder);

  const list = (await api("/v1/series")).series;
  const rows = await Promise.all(list.map(async (s) => {
    const [cov, rep] = await Promise.all([
      api("/v1/coverage", { node_id: s.node_id, interval: s.interval }),
      api("/v1/reports", { node_id: s.node_id, interval: s.interval, limit: 1 }).catch(() => null),
    ]);
    const covered = overlap(cov.ranges, -Infinity, Infinity) / s.interval;
    const now = nowSec();
    const [ws, we] = win === "life" ? [s.bounds.start, s.bounds.end] : [now - WINDOW_SEC[win], now];
    const ratio = we > ws ? overlap(cov.ranges, ws, we) / (we - ws) : null;
    const lag = now - s.bounds.end;
    const last = rep && rep.reports && rep.reports[0];
    return { s, covered, ratio, lag, last };
  }));

  const draw = () => {
    const f = filter.toLowerCase();
    const keyed = [
      (r) => r.s.node_id, (r) => r.s.interval, (r) => r.covered, (r) => r.ratio, (r) => r.lag,
      (r) => (r.last ? Object.keys(r.last.report.flags_counts || {}).length : -1),
    ];
    const shown = rows.filter((r) => r.s.node_id.toLowerCase().includes(f));
    shown.sort((a, b) => {
      const ka = keyed[sortCol](a), kb = keyed[sortCol](b);
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    const trs = shown.map((r) => {
      const fresh = r.lag <= 2 * r.s.interval;
      let conf = el("span", { class: "muted" }, "no report");
      if (r.last) {
        const flags = Object.entries(r.last.report.flags_counts || {});
        conf = flags.length === 0
          ? el("span", { class: "ok" }, "clean")
          : el("span", { class: "warn" }, flags.map(([k, v]) => k + " " + v).join(", "));
      }
      return el("tr", { "data-node-id": r.s.node_id },
        el("td", {}, el("a", { class: "node", href: link("detail", { node_id: r.s.node_id, interval: r.s.interval }) }, r.s.node_id)),
        el("td", { class: "num" }, r.s.interval + " s"),
        el("td", { class: "num bars" }, fmtInt(r.covered)),
        el("td", { class: "num ratio" }, fmtPct(r.ratio)),
        el("td", { class: fresh ? "ok" : "warn" }, (fresh ? "fresh" : "stale") + ", last bar " + fmtAge(Math.max(0, r.lag)) + " ago"),
        el("td", {}, conf));
    });
    holder.replaceChildren(table(
      [{ label: "node id" }, { label: "interval", num: true }, { label: "bars covered", num: true },
        { label: "coverage", num: true }, { label: "freshness" }, { label: "last conformance" }],
      trs.length ? trs : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no stored series"))],
      { id: "series-list", onSort: (i) => { sortCol = i; draw(); } }));
  };
  filterBox.addEventListener("input", () => { filter = filterBox.value; draw(); });
  winSel.addEventListener("change", () => { location.hash = link("series", { window: winSel.value }); });
  draw();
}

// ---- Series detail ---------------------------------------------------------------

async function detailPage(main, params) {
  const nodeID = params.get("node_id");
  const interval = Number(params.get("interval"));
  if (!nodeID || !(interval > 0)) throw new Error("detail: the link needs node_id and interval");
  const title = el("h2", { id: "detail-title" }, nodeID, el("span", { class: "muted" }, " · " + interval + " s"));
  const info = el("div", { id: "detail-info", class: "muted" });
  const chartBox = el("div", { id: "chart" });
  const timeline = el("div", { id: "timeline", class: "timeline" });
  const legend = el("div", { class: "legend muted" },
    el("span", {}, el("i", { class: "swatch covered" }), "covered"),
    el("span", {}, el("i", { class: "swatch empty" }), "covered, no bars (market gap; in the loaded range)"),
    el("span", {}, el("i", { class: "swatch missing" }), "missing (click to select)"));
  const selected = el("span", { id: "selection", class: "muted" }, "no range selected");
  const backfillBtn = el("button", { id: "backfill-selected", disabled: true }, "Backfill selected range");
  const jobLine = el("span", { id: "backfill-state" });
  const gapsBox = el("div", { id: "gaps" });
  const reportsBox = el("div", { id: "reports" });
  main.append(title, info, chartBox, el("h2", {}, "Coverage"), timeline, legend,
    el("div", { class: "toolbar" }, selected, backfillBtn, jobLine), gapsBox, el("h2", {}, "Conformance reports"), reportsBox);

  let cov = await api("/v1/coverage", { node_id: nodeID, interval });
  const lifeStart = () => (cov.ranges.length ? cov.ranges[0].start : nowSec() - 1000 * interval);
  const lifeEnd = () => (cov.ranges.length ? cov.ranges[cov.ranges.length - 1].end : nowSec());
  let end = params.has("end") ? Number(params.get("end")) : lifeEnd();
  let start = params.has("start") ? Number(params.get("start")) : end - 1000 * interval;
  end -= ((end % interval) + interval) % interval;
  start -= ((start % interval) + interval) % interval;
  const requestedStart = start;
  let capped = false;
  if ((end - start) / interval > MAX_POINTS) { start = end - MAX_POINTS * interval; capped = true; }

  const chart = LightweightCharts.createChart(chartBox, {
    autoSize: true,
    layout: { attributionLogo: true },
    timeScale: { timeVisible: true, secondsVisible: interval < 60 },
  });
  const candles = chart.addSeries(LightweightCharts.CandlestickSeries, {});
  const volume = chart.addSeries(LightweightCharts.HistogramSeries, { priceScaleId: "", priceFormat: { type: "volume" }, color: "#94a3b8" });
  volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  const markers = LightweightCharts.createSeriesMarkers(candles, []);

  let bars = { ts: [], open: [], high: [], low: [], close: [], volume: [] };
  let loadedStart = start, loadedEnd = end, loading = false;
  let reports = [];

  const load = async (a, b) => {
    const doc = await api("/v1/bars", { node_id: nodeID, interval, start: a, end: b, strategy: "fail_fast", partial_ok: true });
    return doc;
  };
  const setChart = () => {
    const c = [], v = [];
    for (let i = 0; i < bars.ts.length; i++) {
      if (bars.open[i] === null || bars.close[i] === null) continue;
      c.push({ time: bars.ts[i], open: bars.open[i], high: bars.high[i], low: bars.low[i], close: bars.close[i] });
      v.push({ time: bars.ts[i], value: bars.volume[i] || 0 });
    }
    candles.setData(c);
    volume.setData(v);
    chartBox.dataset.candles = String(candles.data().length);
    chartBox.dataset.start = String(loadedStart);
    chartBox.dataset.end = String(loadedEnd);
  };
  const prepend = (d) => {
    for (const k of Object.keys(bars)) bars[k] = (d[k] || []).concat(bars[k]);
  };

  const drawTimeline = () => {
    const a = lifeStart(), b = Math.max(lifeEnd(), a + interval);
    const span = b - a;
    const empty = emptyRuns(cov.ranges, bars.ts, interval, loadedStart, loadedEnd);
    const missing = subtract(a, b, cov.ranges);
    const segs = [];
    const add = (r, kind) => {
      const s = el("div", { class: "seg " + kind, "data-kind": kind, "data-start": r.start, "data-end": r.end,
        title: kind + " [" + fmtTime(r.start) + ", " + fmtTime(r.end) + ")" });
      s.style.left = (100 * (r.start - a) / span) + "%";
      s.style.width = (100 * (r.end - r.start) / span) + "%";
      if (kind === "missing") s.addEventListener("click", () => select(r, s));
      segs.push(s);
    };
    cov.ranges.forEach((r) => add(r, "covered"));
    empty.forEach((r) => add(r, "empty"));
    missing.forEach((r) => add(r, "missing"));
    timeline.replaceChildren(...segs);
    timeline.dataset.start = String(a);
    timeline.dataset.end = String(b);
    const rows = missing.map((r) => el("tr", { class: "gap" }, el("td", {}, "missing"), el("td", {}, fmtTime(r.start)), el("td", {}, fmtTime(r.end)), el("td", { class: "num" }, fmtInt((r.end - r.start) / interval))))
      .concat(empty.slice(0, 200).map((r) => el("tr", {}, el("td", {}, "covered, no bars"), el("td", {}, fmtTime(r.start)), el("td", {}, fmtTime(r.end)), el("td", { class: "num" }, fmtInt((r.end - r.start) / interval)))));
    gapsBox.replaceChildren(rows.length ? table([{ label: "kind" }, { label: "from" }, { label: "to (excl.)" }, { label: "bars", num: true }], rows)
      : el("p", { class: "muted" }, "no gaps"));
    // Gaps and conformance findings are marked on the chart.
    const ms = [];
    for (const r of missing.concat(empty)) {
      if (r.start >= loadedStart && r.start < loadedEnd) ms.push({ time: r.start - interval, position: "aboveBar", shape: "arrowDown", color: "#dc2626", text: "gap" });
    }
    for (const rec of reports) {
      for (const [flag, tss] of Object.entries(rec.report.samples || {})) {
        for (const t of tss) if (t >= loadedStart && t < loadedEnd) ms.push({ time: t, position: "belowBar", shape: "arrowUp", color: "#d97706", text: flag });
      }
    }
    const have = new Set(bars.ts);
    markers.setMarkers(ms.filter((m) => have.has(m.time)).sort((x, y) => x.time - y.time).slice(0, 500));
  };

  let sel = null;
  const select = (r, seg) => {
    for (const s of timeline.querySelectorAll(".seg.selected")) s.classList.remove("selected");
    seg.classList.add("selected");
    sel = r;
    selected.textContent = "selected [" + fmtTime(r.start) + ", " + fmtTime(r.end) + ") · " + fmtInt((r.end - r.start) / interval) + " bars";
    backfillBtn.disabled = false;
  };
  backfillBtn.addEventListener("click", async () => {
    if (!sel) return;
    backfillBtn.disabled = true;
    const gen = generation;
    try {
      const acc = await api("/v1/backfill", null, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ node_id: nodeID, interval, start: sel.start, end: sel.end }),
      });
      jobLine.dataset.jobId = acc.job_id;
      let delay = 250;
      for (;;) {
        if (gen !== generation) return;
        const job = await api("/v1/backfill/" + encodeURIComponent(acc.job_id));
        jobLine.textContent = "job " + job.state + " · " + job.chunks_done + "/" + (job.chunks_total || "?") + " chunks · " + fmtInt(job.bars) + " bars";
        jobLine.dataset.state = job.state;
        if (["succeeded", "failed", "cancelled"].includes(job.state)) {
          if (job.error) jobLine.textContent += " · " + job.error.message;
          break;
        }
        await new Promise((res) => setTimeout(res, delay));
        delay = Math.min(delay * 2, 5000);
      }
      sel = null;
      selected.textContent = "no range selected";
      await refresh();
    } catch (e) {
      setStatus(e.message);
      backfillBtn.disabled = false;
    }
  });

  const refresh = async () => {
    cov = await api("/v1/coverage", { node_id: nodeID, interval });
    const doc = await load(loadedStart, loadedEnd);
    bars = doc.data;
    setChart();
    drawTimeline();
  };

  const began = performance.now();
  const [doc, rep] = await Promise.all([
    load(start, end),
    api("/v1/reports", { node_id: nodeID, interval, limit: 20 }).catch(() => ({ reports: [] })),
  ]);
  bars = doc.data;
  reports = rep.reports || [];
  setChart();
  chart.timeScale().fitContent();
  drawTimeline();
  requestAnimationFrame(() => requestAnimationFrame(() => {
    chartBox.dataset.paintMs = String(Math.round(performance.now() - began));
  }));
  info.textContent = "[" + fmtTime(requestedStart) + ", " + fmtTime(end) + ") · " + fmtInt(doc.metadata.rows) + " bars loaded · coverage " + fmtPct(doc.metadata.coverage_ratio) +
    (capped ? " · range capped to the newest " + fmtInt(MAX_POINTS) + " bars; pan left for older ones" : "");

  // Panning near the left edge loads up to MAX_POINTS older bars, down to the start of
  // the requested range (or the series' life when none was asked).
  const floor = params.has("start") ? requestedStart : lifeStart();
  chart.timeScale().subscribeVisibleLogicalRangeChange((lr) => {
    if (!lr || lr.from > 10 || loading || loadedStart <= floor) return;
    loading = true;
    const b = loadedStart, a = Math.max(floor, b - MAX_POINTS * interval);
    load(a, b).then((d) => {
      loadedStart = a;
      prepend(d.data);
      setChart();
      drawTimeline();
    }).catch((e) => setStatus(e.message)).finally(() => { loading = false; });
  });

  const rrows = reports.map((r) => el("tr", {},
    el("td", {}, r.time),
    el("td", {}, "[" + fmtTime(r.range.start) + ", " + fmtTime(r.range.end) + ")"),
    el("td", {}, Object.entries(r.report.flags_counts || {}).map(([k, v]) => k + " " + v).join(", ") || "clean"),
    el("td", {}, (r.digest.new_flags || []).join(", ")),
    el("td", {}, Object.entries(r.digest.increased || {}).map(([k, v]) => k + " " + JSON.stringify(v)).join(", ")),
    el("td", {}, (r.report.warnings || []).join("; "))));
  reportsBox.replaceChildren(rrows.length ? table([{ label: "archived" }, { label: "range" }, { label: "flags" }, { label: "new flags" }, { label: "increased" }, { label: "warnings" }], rrows)
    : el("p", { class: "muted" }, "no archived reports"));
}

// ---- Backfill jobs ---------------------------------------------------------------

async function jobsPage(main) {
  const box = el("div", { id: "jobs-list" });
  main.append(el("h2", {}, "Backfill jobs"), box);
  poll(async () => {
    const doc = await api("/v1/backfill");
    const rows = doc.jobs.map((j) => {
      const pct = j.chunks_total ? j.chunks_done / j.chunks_total : (j.state === "succeeded" ? 1 : 0);
      const bar = el("span", { class: "bar" }, el("span"));
      bar.firstChild.style.width = (100 * pct) + "%";
      return el("tr", { "data-job-id": j.job_id, "data-state": j.state },
        el("td", {}, j.job_id.slice(0, 8)),
        el("td", { class: j.state === "failed" ? "bad" : j.state === "succeeded" ? "ok" : "" }, j.state),
        el("td", {}, el("a", { href: link("detail", { node_id: j.node_id, interval: j.interval, start: j.start, end: j.end }) }, j.node_id)),
        el("td", {}, "[" + fmtTime(j.start) + ", " + fmtTime(j.end) + ")"),
        el("td", {}, bar, " " + j.chunks_done + "/" + (j.chunks_total || "?")),
        el("td", { class: "num" }, fmtInt(j.bars)),
        el("td", {}, j.created_at),
        el("td", { class: "bad" }, j.error ? j.error.code + ": " + j.error.message : ""));
    });
    box.replaceChildren(rows.length
      ? table(["job", "state", "series", "range", "progress", { label: "bars", num: true }, "created", "error"], rows)
      : el("p", { class: "muted" }, "no running or recent jobs"));
  }, 1000);
}

// ---- Cluster ---------------------------------------------------------------------

async function clusterPage(main) {
  const nodes = el("div", { id: "cluster-nodes" }), leases = el("div", { id: "leases" }), coord = el("div", { id: "coordinator" });
  main.append(el("h2", {}, "Servers"), nodes, el("h2", {}, "Coordinator"), coord, el("h2", {}, "Leases"), leases);
  poll(async () => {
    // There is no GET /v1/cluster/nodes yet: this server alone is shown.
    const [health, ready] = await Promise.all([
      api("/healthz"),
      api("/readyz").then(() => "ready").catch((e) => "not ready: " + e.message),
    ]);
    nodes.replaceChildren(table(["server", "api version", "readiness"],
      [el("tr", {}, el("td", {}, location.host + " (this server)"), el("td", {}, health.api_version), el("td", { class: ready === "ready" ? "ok" : "bad" }, ready))]));
    const m = parseMetrics(await api("/metrics"));
    coord.replaceChildren(table(["measure", { label: "value", num: true }], [
      ["stale leases reclaimed", sum(m, "seamless_backfill_stale_claims_total")],
      ["coordinator fallbacks (unreachable)", sum(m, "seamless_coordinator_fallback_total")],
      ["backfill runs in progress", sum(m, "backfill_jobs_in_progress")],
      ["chunks failed after retries", sum(m, "backfill_failure_total")],
    ].map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: "num" }, fmtInt(v))))));
    const doc = await api("/v1/leases");
    const now = Date.now();
    const rows = doc.leases.map((l) => el("tr", {},
      el("td", {}, l.key), el("td", {}, l.holder),
      el("td", { class: l.lease_until_ms < now ? "bad" : "ok" }, l.lease_until_ms < now ? "expired" : "held"),
      el("td", {}, new Date(l.lease_until_ms).toISOString()),
      el("td", { class: "num" }, fmtPct(l.progress))));
    leases.replaceChildren(rows.length ? table(["key", "holder", "state", "until", { label: "completion", num: true }], rows)
      : el("p", { class: "muted" }, "no leases held"));
  }, 2000);
}

// ---- Schemas ---------------------------------------------------------------------

async function schemasPage(main) {
  const subjects = await api("/subjects");
  const rows = await Promise.all(subjects.map(async (s) => {
    const enc = encodeURIComponent(s);
    const [versions, mode] = await Promise.all([
      api("/subjects/" + enc + "/versions"),
      api("/v1/schema/mode/" + enc).catch(() => null),
    ]);
    return el("tr", {}, el("td", {}, s), el("td", {}, versions.join(", ")),
      el("td", {}, mode ? mode.mode : "—"), el("td", {}, mode ? mode.compatibility : "—"),
      el("td", {}, mode && mode.since ? mode.since : "—"));
  }));
  const audit = await api("/v1/schema/audit", { limit: 100 });
  const arows = (audit.records || []).slice().reverse().map((r) => el("tr", {},
    el("td", { class: "num" }, r.seq), el("td", {}, r.time), el("td", {}, r.actor), el("td", {}, r.action),
    el("td", {}, r.subject), el("td", {}, r.version || r.mode || r.compatibility || ""), el("td", {}, r.reason || "")));
  main.append(el("h2", {}, "Schema registry"),
    rows.length ? table(["subject", "versions", "mode", "compatibility", "since"], rows, { id: "subjects" }) : el("p", { class: "muted" }, "no subjects registered"),
    el("h2", {}, "Audit log"),
    arows.length ? table([{ label: "seq", num: true }, "time", "actor", "action", "subject", "detail", "reason"], arows, { id: "audit" }) : el("p", { class: "muted" }, "no audit records"));
}

// ---- Health (the server's own /metrics; no Prometheus needed) ---------------------

// parseMetrics reads the Prometheus text format into [{name, labels, value}].
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const lm of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

function sum(ms, name, pred) {
  return ms.filter((x) => x.name === name && (!pred || pred(x.labels))).reduce((a, x) => a + x.value, 0);
}

function groupBy(ms, name, label) {
  const g = {};
  for (const x of ms) if (x.name === name) g[x.labels[label]] = (g[x.labels[label]] || 0) + x.value;
  return g;
}

async function healthPage(main) {
  const box = el("div", { id: "health" });
  main.append(el("h2", {}, "Health"), box);
  poll(async () => {
    const m = parseMetrics(await api("/metrics"));
    const sums = groupBy(m, "seamless_sla_deadline_seconds_sum", "phase");
    const counts = groupBy(m, "seamless_sla_deadline_seconds_count", "phase");
    const viol = groupBy(m, "seamless_sla_violations_total", "phase");
    const phases = Object.keys(counts).sort();
    const prow = phases.map((p) => el("tr", { "data-phase": p }, el("td", {}, p), el("td", { class: "num" }, fmtInt(counts[p])),
      el("td", { class: "num" }, counts[p] ? (1000 * sums[p] / counts[p]).toFixed(1) + " ms" : "—"),
      el("td", { class: "num" }, fmtInt(viol[p] || 0))));
    const req = groupBy(m, "seamless_requests_total", "code");
    const total = Object.values(req).reduce((a, b) => a + b, 0);
    const rrow = Object.entries(req).sort().map(([code, n]) => el("tr", {}, el("td", { class: code === "ok" ? "ok" : "bad" }, code),
      el("td", { class: "num" }, fmtInt(n)), el("td", { class: "num" }, fmtPct(total ? n / total : null))));
    const http = groupBy(m, "seamless_http_requests_total", "status");
    const hrow = Object.entries(http).sort().map(([st, n]) => el("tr", {}, el("td", { class: st >= "500" ? "bad" : "" }, st), el("td", { class: "num" }, fmtInt(n))));
    const up = groupBy(m, "seamless_upstream_requests_total", "outcome");
    const urow = Object.entries(up).sort().map(([o, n]) => el("tr", {}, el("td", {}, o), el("td", { class: "num" }, fmtInt(n))));
    box.replaceChildren(
      el("h2", {}, "SLA phases"),
      prow.length ? table(["phase", { label: "requests", num: true }, { label: "mean", num: true }, { label: "violations", num: true }], prow, { id: "sla-phases" }) : el("p", { class: "muted" }, "no requests yet"),
      el("p", { class: "muted" }, "Phase budgets are those of each request's SLA policy (seamless presets); violations count the requests that ran out of one."),
      el("h2", {}, "Fetch outcomes"),
      rrow.length ? table(["code", { label: "requests", num: true }, { label: "share", num: true }], rrow) : el("p", { class: "muted" }, "no fetches yet"),
      el("h2", {}, "HTTP responses"), table(["status", { label: "responses", num: true }], hrow),
      el("h2", {}, "Upstream attempts"), urow.length ? table(["outcome", { label: "attempts", num: true }], urow) : el("p", { class: "muted" }, "no upstream calls yet"));
  }, 5000);
}

// ---- start -----------------------------------------------------------------------

function initToken() {
  const form = document.getElementById("token-form"), input = document.getElementById("token");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value);
    input.value = "";
    input.placeholder = "token set for this tab";
    render();
  });
  document.getElementById("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    input.placeholder = "API token (kept in this tab only)";
    render();
  });
  if (sessionStorage.getItem(TOKEN_KEY)) input.placeholder = "token set for this tab";
}

initToken();
window.addEventListener("hashchange", render);
render();
