"use strict";
// The streamgauge dashboard: polls the read API every few seconds and draws its charts as SVG
// itself (no library, no CDN). Every figure shown comes with the freshness the API gives it.

const KEY_ITEM = "streamgauge.apiKey";
const DEVICE_ITEM = "streamgauge.device";
const POLL_MS = 5000;
const REQUEST_TIMEOUT_MS = 10000;
const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#4f7cac", "#d1495b", "#2e933c", "#edae49", "#8e6c8a", "#00798c",
  "#c06c3e", "#5c6f7d", "#a23b72", "#3c8d2f", "#e07a5f", "#3d405b"];

const $ = (id) => document.getElementById(id);
const state = { device: null, metric: null, waitingForKey: false, timer: null };

class Unauthorized extends Error {}

// ---- the API ------------------------------------------------------------------------------

function takeKeyFromFragment() {
  const match = location.hash.match(/(?:^#|&)key=([^&]+)/);
  if (match) {
    sessionStorage.setItem(KEY_ITEM, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

async function getJSON(path) {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY_ITEM);
  if (key) headers.Authorization = `Bearer ${key}`;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch(path, { headers, cache: "no-store", signal: controller.signal });
    const body = await response.json().catch(() => null);
    if (response.status === 401 || response.status === 403) {
      askForKey(body && body.error ? body.error.message : "This API needs a key.");
      throw new Unauthorized();
    }
    return { status: response.status, body };
  } finally {
    clearTimeout(timer);
  }
}

function askForKey(reason) {
  state.waitingForKey = true;
  $("key-reason").textContent = reason;
  const dialog = $("key-dialog");
  if (!dialog.open) dialog.showModal();
}

// ---- formatting ---------------------------------------------------------------------------

function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s / 60} min`;
  const minutes = Math.floor((s % 3600) / 60);
  return minutes ? `${Math.floor(s / 3600)} h ${minutes} min` : `${Math.floor(s / 3600)} h`;
}

function number(value) {
  if (value === null || value === undefined) return "–";
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude >= 1e6 || magnitude < 1e-3)) return value.toExponential(2);
  return Number(value.toFixed(magnitude >= 100 ? 1 : 3)).toString();
}

function clock(date, withSeconds) {
  return date.toTimeString().slice(0, withSeconds ? 8 : 5);
}

function ago(iso) {
  return `${duration(Math.max(0, (Date.now() - Date.parse(iso)) / 1000))} ago`;
}

// How late an answer's data may be, as the API says: {cls, text, detail}.
function freshnessOf(f) {
  if (!f) return { cls: "unknown", text: "Freshness unknown", detail: "" };
  const problems = [];
  if (f.clickhouse !== "ok") problems.push(`ClickHouse ${f.clickhouse}`);
  if (f.detail) problems.push(f.detail);
  if (f.partitions && f.partitions.length) problems.push(`partitions ${f.partitions.join(", ")}`);
  if (f.stale === null) {
    return { cls: "unknown", text: "Freshness unknown", detail: problems.join(" · ") };
  }
  const delay = f.lag_seconds + f.age_seconds;
  if (f.stale) {
    return {
      cls: "stale",
      text: `Delayed by ${duration(delay)}`,
      detail: [`values may be ${duration(delay)} behind (SLO ${duration(f.slo_seconds)})`,
        ...problems].join(" · "),
    };
  }
  return { cls: "ok", text: `Up to date · lag ${number(f.lag_seconds)} s`, detail: problems.join(" · ") };
}

function showFreshness(element, freshness, prefix) {
  const view = freshnessOf(freshness);
  element.className = `${element.classList.contains("pill") ? "pill" : "banner"} ${view.cls}`;
  element.replaceChildren(document.createTextNode(prefix ? `${prefix}: ${view.text}` : view.text));
  if (view.detail && element.classList.contains("banner")) {
    const small = document.createElement("small");
    small.textContent = view.detail;
    element.append(small);
  }
  element.title = view.detail || "";
}

// ---- charts -------------------------------------------------------------------------------

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((f) => f * power).find((step) => raw <= step);
}

// [low, high, step]: round bounds around [min, max], about four steps apart.
function niceScale(min, max) {
  if (min === max) { min -= 1; max += 1; }
  const step = niceStep((max - min) / 4);
  return [Math.floor(min / step) * step, Math.ceil(max / step) * step, step];
}

// series: [{color, points: [[ms, value|null], ...]}]; options: bars (bucket ms), threshold,
// xDomain, zero (y axis from 0, default true), markers, empty (text when there is no data).
function drawChart(node, series, options = {}) {
  const [, , width, height] = node.getAttribute("viewBox").split(" ").map(Number);
  const margin = { left: 52, right: 16, top: 10, bottom: 24 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const points = series.flatMap((s) => s.points.filter((p) => p[1] !== null));
  node.replaceChildren();
  node.dataset.points = String(points.length);
  if (points.length === 0) {
    node.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" },
      options.empty || "no data"));
    return;
  }
  const times = points.map((p) => p[0]);
  const half = (options.bars || 0) / 2;
  const [x0, x1] = options.xDomain || [Math.min(...times) - half, Math.max(...times) + half];
  const values = points.map((p) => p[1]);
  if (options.threshold) values.push(options.threshold);
  if (options.zero !== false) values.push(0);
  const [low, high, step] = niceScale(Math.min(...values), Math.max(...values));
  const x = (t) => margin.left + (x1 === x0 ? plotW / 2 : ((t - x0) / (x1 - x0)) * plotW);
  const y = (v) => margin.top + plotH - ((v - low) / (high - low)) * plotH;

  for (let value = low; value <= high + step / 2; value += step) {
    node.append(svg("line", { x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value), class: "grid" }));
    node.append(svg("text", { x: margin.left - 6, y: y(value) + 4, "text-anchor": "end", class: "axis-label" }, number(value)));
  }
  const withSeconds = x1 - x0 < 10 * 60 * 1000;
  for (let i = 0; i <= 4; i += 1) {
    const t = x0 + ((x1 - x0) * i) / 4;
    const anchor = i === 0 ? "start" : i === 4 ? "end" : "middle";
    node.append(svg("text", { x: x(t), y: height - 6, "text-anchor": anchor, class: "axis-label" },
      clock(new Date(t), withSeconds)));
  }
  if (options.threshold) {
    node.append(svg("line", { x1: margin.left, x2: width - margin.right, y1: y(options.threshold), y2: y(options.threshold), class: "slo" }));
  }
  for (const s of series) {
    if (options.bars) {
      const slot = (options.bars / (x1 - x0)) * plotW;
      for (const [t, v] of s.points) {
        if (v === null) continue;
        node.append(svg("rect", { x: x(t) - slot * 0.4, y: y(v), width: slot * 0.8, height: Math.max(0, y(low) - y(v)), class: "bar" }));
      }
      continue;
    }
    let d = "";
    let pen = "M";
    for (const [t, v] of s.points) {
      if (v === null) { pen = "M"; continue; }
      d += `${pen}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = "L";
    }
    node.append(svg("path", { d, stroke: s.color, class: "series" }));
    if (options.markers && s.points.length <= 120) {
      for (const [t, v] of s.points) {
        if (v !== null) node.append(svg("circle", { cx: x(t), cy: y(v), r: 2.5, fill: s.color }));
      }
    }
  }
}

// ---- panels -------------------------------------------------------------------------------

async function refreshFleet() {
  const { status, body } = await getJSON("/v1/fleet?minutes=15");
  if (status !== 200) {
    $("fleet-status").textContent = body && body.error ? body.error.message : `HTTP ${status}`;
    return;
  }
  showFreshness($("fleet-status"), body.freshness, "Pipeline");
  const ingest = body.ingest || [];
  drawChart($("ingest-chart"), [{ color: PALETTE[0], points: ingest.map((m) => [Date.parse(m.minute), m.readings_per_second]) }],
    { bars: 60000, empty: body.ingest === null ? "ClickHouse unavailable" : "no readings yet" });
  const partitions = Math.max(0, ...body.lag_history.map((h) => h.lag_seconds.length));
  const lines = [];
  for (let p = 0; p < partitions; p += 1) {
    lines.push({
      color: PALETTE[p % PALETTE.length],
      points: body.lag_history.map((h) => [Date.parse(h.time), h.lag_seconds[p] ?? null]),
    });
  }
  drawChart($("lag-chart"), lines, {
    threshold: body.freshness.slo_seconds,
    empty: body.freshness.source === "unavailable" ? "lag exporter unavailable" : "no lag yet",
  });
  $("lag-legend").replaceChildren(...body.partitions.map((p) => {
    const item = document.createElement("span");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = PALETTE[p.partition % PALETTE.length];
    item.append(swatch, `p${p.partition} ${p.lag_seconds === null ? "?" : number(p.lag_seconds)} s ${p.status}`);
    return item;
  }));
}

async function loadDevices() {
  const prefix = $("device-filter").value.trim();
  const query = prefix ? `&prefix=${encodeURIComponent(prefix)}` : "";
  const { status, body } = await getJSON(`/v1/devices?limit=200${query}`);
  if (status !== 200) return;
  const ids = body.devices.map((d) => d.device_id);
  $("device-select").replaceChildren(...ids.map((id) => new Option(id, id)));
  const wanted = [state.device, sessionStorage.getItem(DEVICE_ITEM)].find((id) => id && ids.includes(id));
  selectDevice(wanted || ids[0] || null);
}

function selectDevice(id) {
  if (id !== state.device) state.metric = null;
  state.device = id;
  if (id) {
    $("device-select").value = id;
    sessionStorage.setItem(DEVICE_ITEM, id);
  }
}

async function refreshDevice() {
  if (!state.device) return;
  const id = encodeURIComponent(state.device);
  const { status, body } = await getJSON(`/v1/devices/${id}/latest`);
  const banner = $("device-freshness");
  showFreshness(banner, body && body.freshness, state.device);
  if (status !== 200) {
    const note = document.createElement("small");
    note.textContent = body && body.error ? body.error.message : `HTTP ${status}`;
    banner.append(note);
    return;
  }
  const rows = body.metrics.map((m) => {
    const row = document.createElement("tr");
    const cells = [m.metric, number(m.value), ago(m.event_time), ago(m.stored_at)];
    for (const [i, text] of cells.entries()) {
      const cell = document.createElement("td");
      cell.textContent = text;
      if (i === 1) cell.className = "value";
      if (i >= 2) cell.title = i === 2 ? m.event_time : m.stored_at;
      row.append(cell);
    }
    if (body.freshness.stale) row.className = "old";
    return row;
  });
  $("latest-table").tBodies[0].replaceChildren(...rows);
  const metrics = body.metrics.map((m) => m.metric);
  const select = $("metric-select");
  if ([...select.options].map((o) => o.value).join() !== metrics.join()) {
    select.replaceChildren(...metrics.map((m) => new Option(m, m)));
  }
  if (!metrics.includes(state.metric)) state.metric = metrics[0] || null;
  select.value = state.metric || "";
}

function stepFor(rangeSeconds) {
  if (rangeSeconds <= 900) return 15;
  if (rangeSeconds <= 3600) return 60;
  if (rangeSeconds <= 21600) return 300;
  return 900;
}

async function refreshSeries() {
  if (!state.device || !state.metric) return;
  const range = Number($("range-select").value);
  const agg = $("agg-select").value;
  const to = Math.ceil(Date.now() / 1000);
  const step = stepFor(range);
  const query = new URLSearchParams({ metric: state.metric, from: to - range, to, step, agg });
  const { status, body } = await getJSON(`/v1/devices/${encodeURIComponent(state.device)}/series?${query}`);
  const caption = $("series-caption");
  if (status !== 200) {
    caption.textContent = body && body.error ? body.error.message : `HTTP ${status}`;
    return;
  }
  const view = freshnessOf(body.freshness);
  caption.textContent = `${body.device_id} · ${body.metric} · ${body.agg} per ${duration(body.step_seconds)} `
    + `(${body.points.length} points from ${body.source}) · ${view.text}`;
  drawChart($("series-chart"),
    [{ color: PALETTE[0], points: body.points.map((p) => [Date.parse(p.time), p.value]) }],
    { xDomain: [Date.parse(body.from), Date.parse(body.to)], zero: false, markers: true,
      empty: "no readings in this range" });
}

// ---- the loop -----------------------------------------------------------------------------

async function tick() {
  clearTimeout(state.timer);
  if (state.waitingForKey) return;
  try {
    if (!state.device) await loadDevices();
    await Promise.all([refreshFleet(), refreshDevice().then(refreshSeries)]);
  } catch (error) {
    if (!(error instanceof Unauthorized)) console.warn("refresh failed", error);
  }
  if (!state.waitingForKey) state.timer = setTimeout(tick, POLL_MS);
}

function start() {
  takeKeyFromFragment();
  $("key-form").addEventListener("submit", () => {
    sessionStorage.setItem(KEY_ITEM, $("key-input").value.trim());
    $("key-input").value = "";
    state.waitingForKey = false;
    tick();
  });
  $("change-key").addEventListener("click", () => askForKey("Enter an API key with the read scope."));
  let filterTimer = null;
  $("device-filter").addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => loadDevices().then(tick).catch(() => {}), 300);
  });
  $("device-select").addEventListener("change", (event) => { selectDevice(event.target.value); tick(); });
  $("metric-select").addEventListener("change", (event) => { state.metric = event.target.value; refreshSeries(); });
  $("range-select").addEventListener("change", () => refreshSeries());
  $("agg-select").addEventListener("change", () => refreshSeries());
  tick();
}

start();
