// Charts for self-contained HTML reports: pure functions that return SVG
// markup as strings. No DOM, no dependencies, no script in the output; a
// Node script writes the page (see page.js) and a browser shows it offline.
//
//   const charts = require("./charts");
//   const svg = charts.lineChart({ title: "Connections per instance", xLabel: "time (s)",
//     yLabel: "connections", series: [{ name: "a", points: [[0, 0], [1, 480]] }],
//     markers: [{ x: 30, label: "a killed" }] });
//
// Every chart's root is
//   <svg class="chart" data-chart="SLUG" data-points="N" viewBox="0 0 W H" width="100%" ...>
// where SLUG is the title's slug (or the `slug` option) and N the number of
// data marks drawn (points, bars, histogram bins). Each data mark has class
// "mark" and a <title> child (a tooltip with its values); a chart with no data
// draws a visible "no data" note and says data-points="0". All text is
// escaped. Charts use attributes only (no <style>), so that several inline
// SVGs on one page cannot restyle each other.
"use strict";

/** Okabe and Ito's colour-blind-safe palette, reordered for contrast on white
    (their yellow is left out: it is unreadable as a thin line on white). */
const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];
/** Line dash patterns: series that share a colour once the palette wraps
    still differ, and print in grey stays readable. */
const DASHES = ["", "6 3", "2 3", "8 3 2 3"];

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"';
const WIDTH = 720;
const CHAR_W = 6.6; // average advance of a 12 px sans-serif character, for layout estimates

/** Escapes text for HTML and SVG content and attribute values. */
function escapeHtml(value) {
  return String(value === undefined || value === null ? "" : value)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** Lower-case ASCII slug of a title: "Delivered (%)" -> "delivered". */
function slug(text) {
  const s = String(text === undefined || text === null ? "" : text)
    .normalize("NFKD")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return s || "chart";
}

function colour(i) {
  return PALETTE[i % PALETTE.length];
}

function dash(i) {
  return DASHES[Math.floor(i / PALETTE.length) % DASHES.length];
}

function isNum(v) {
  return typeof v === "number" && Number.isFinite(v);
}

/** Rounds away binary noise (0.1 + 0.2) so that labels and tests see 0.3. */
function clean(v) {
  return Number.parseFloat(v.toPrecision(12));
}

function group(intString) {
  return intString.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Formats a number for labels and tooltips: integers in full with thousands
    separators (12,345), others with about three significant digits. */
function formatNumber(v) {
  if (!isNum(v)) return String(v);
  if (Number.isInteger(v)) return (v < 0 ? "-" : "") + group(String(Math.abs(v)));
  const a = Math.abs(v);
  let s;
  if (a >= 100) s = a.toFixed(1);
  else if (a >= 1) s = a.toFixed(2);
  else s = String(Number(a.toPrecision(3)));
  if (s.includes(".") && !s.includes("e")) s = s.replace(/0+$/, "").replace(/\.$/, "");
  const [int, frac] = s.split(".");
  return (v < 0 ? "-" : "") + group(int) + (frac ? "." + frac : "");
}

/** A fraction as a percentage: formatPercent(0.987) -> "98.7%". */
function formatPercent(v, decimals = 1) {
  if (!isNum(v)) return String(v);
  return clean(v * 100).toFixed(decimals).replace(/\.0+$/, "") + "%";
}

/** The 1-2-5 step (1, 2 or 5 times a power of ten) closest above span / count. */
function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / power;
  const e = 1 + 1e-9; /* log10 and the division are not exact */
  const m = f <= e ? 1 : f <= 2 * e ? 2 : f <= 5 * e ? 5 : 10;
  return clean(m * power);
}

/** Axis ticks on a 1-2-5 step covering [min, max], at most about `count` + 1 of
    them: { min, max, step, ticks }. The returned min and max are the first and
    last tick (the data range rounded out to whole steps). */
function niceTicks(min, max, count = 5) {
  if (!isNum(min) || !isNum(max)) return { min: 0, max: 1, step: 0.2, ticks: [0, 0.2, 0.4, 0.6, 0.8, 1] };
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    /* One value: a range around it (or 0..1 for zero), so the mark is visible. */
    if (min === 0) max = 1;
    else if (min > 0) min = 0;
    else max = 0;
  }
  const step = niceStep(max - min, count);
  /* Whole steps, with a little slack for division noise (0.3 / 0.1). */
  const kLo = Math.floor(min / step + 1e-9);
  const kHi = Math.ceil(max / step - 1e-9);
  const ticks = [];
  for (let k = kLo; k <= kHi && ticks.length < 1000; ++k) ticks.push(onStep(k, step));
  return { min: ticks[0], max: ticks[ticks.length - 1], step, ticks };
}

/** k * step without binary noise: 3 * 0.1 is 0.3, not 0.30000000000000004. */
function onStep(k, step) {
  const decimals = Math.min(100, Math.max(0, Math.ceil(-Math.log10(step)) + 1));
  return Number((k * step).toFixed(decimals));
}

/** Tick label: as many decimals as the step needs; thousands as k and
    millions as M once the axis reaches 100,000. */
function tickFormatter(step, maxAbs) {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  if (maxAbs >= 1e5) {
    const [div, suffix] = maxAbs >= 1e6 ? [1e6, "M"] : [1e3, "k"];
    const d = Math.max(0, -Math.floor(Math.log10(step / div) + 1e-9));
    return (v) => (v === 0 ? "0" : formatFixed(v / div, d) + suffix);
  }
  return (v) => formatFixed(v, decimals);
}

function formatFixed(v, decimals) {
  const s = clean(v).toFixed(decimals);
  const neg = s.startsWith("-") && Number(s) !== 0;
  const [int, frac] = s.replace("-", "").split(".");
  return (neg ? "-" : "") + group(int) + (frac ? "." + frac : "");
}

/** Percentile by the nearest-rank method: the smallest value such that at
    least p percent of the values are less than or equal to it (always one of
    the values). p in (0, 100]; p = 0 gives the minimum. NaN for no values. */
function percentile(values, p) {
  const sorted = values.filter(isNum).sort((a, b) => a - b);
  return percentileOfSorted(sorted, p);
}

function percentileOfSorted(sorted, p) {
  if (sorted.length === 0) return NaN;
  if (!(p > 0)) return sorted[0];
  const rank = Math.ceil(clean((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** { p: value } for each p of `ps`, sorting once. */
function percentiles(values, ps) {
  const sorted = values.filter(isNum).sort((a, b) => a - b);
  const out = {};
  for (const p of ps) out[p] = percentileOfSorted(sorted, p);
  return out;
}

/** Equal-width bins over the values: { edges, counts }. `bins` is a number
    (exactly that many bins from the least to the greatest value), an array of
    ascending edges, or absent (about sqrt(n) bins, between 5 and 40, on a
    1-2-5 width with edges on multiples of it). A value equal to the last edge
    falls in the last bin; values outside explicit edges are not counted. */
function histogram(values, bins) {
  const data = values.filter(isNum);
  if (data.length === 0) return { edges: [], counts: [] };
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  let edges;
  if (Array.isArray(bins)) {
    edges = bins.filter(isNum).slice().sort((a, b) => a - b);
    if (edges.length < 2) throw new Error("histogram: bins needs at least two edges");
  } else if (isNum(bins) && bins >= 1) {
    const n = Math.floor(bins);
    if (lo === hi) hi = lo + 1;
    edges = [];
    for (let i = 0; i <= n; ++i) edges.push(clean(lo + ((hi - lo) * i) / n));
  } else {
    const target = Math.min(40, Math.max(5, Math.ceil(Math.sqrt(data.length))));
    const width = niceStep(hi - lo || Math.abs(lo) || 1, target);
    const first = clean(Math.floor(clean(lo / width)) * width);
    let last = clean(Math.ceil(clean(hi / width)) * width);
    if (last === first) last = clean(first + width);
    edges = [];
    for (let i = 0, e = first; e <= last + width / 2; ++i, e = clean(first + i * width)) edges.push(e);
  }
  const counts = new Array(edges.length - 1).fill(0);
  const n = counts.length;
  for (const v of data) {
    if (v < edges[0] || v > edges[n]) continue;
    /* Binary search: the last edge <= v, the final bin closed on the right. */
    let a = 0;
    let b = n;
    while (b - a > 1) {
      const m = (a + b) >> 1;
      if (edges[m] <= v) a = m;
      else b = m;
    }
    ++counts[a];
  }
  return { edges, counts };
}

// ---------------------------------------------------------------------------
// Drawing helpers

function r(v) {
  return Math.round(v * 100) / 100;
}

function text(x, y, content, attrs = "") {
  return `<text x="${r(x)}" y="${r(y)}" ${attrs}>${escapeHtml(content)}</text>`;
}

function textWidth(s, size = 12) {
  return String(s).length * CHAR_W * (size / 12);
}

/** A stable id for clip paths: from the chart's slug and a hash of its
    options, so that the output is a pure function of the input. */
function clipId(name, options) {
  let h = 5381;
  const s = JSON.stringify(options, (k, v) => (typeof v === "function" ? String(v) : v)) || "";
  for (let i = 0; i < s.length; ++i) h = ((h * 33) ^ s.charCodeAt(i)) >>> 0;
  return `clip-${name}-${h.toString(36)}`;
}

/** The legend: items laid out in rows under the title. Returns its markup
    and its height. `kind` draws a line (with the series' dash) or a square. */
function legend(items, top, left, width) {
  if (items.length === 0) return { svg: "", height: 0 };
  const rowH = 18;
  let x = left;
  let y = top;
  const parts = [];
  for (const it of items) {
    const w = 22 + textWidth(it.label) + 16;
    if (x + w > left + width && x > left) {
      x = left;
      y += rowH;
    }
    let swatch;
    if (it.kind === "line") {
      swatch = `<line x1="${r(x)}" y1="${r(y + 6)}" x2="${r(x + 18)}" y2="${r(y + 6)}" stroke="${it.colour}" stroke-width="${it.width || 2.5}"${it.dash ? ` stroke-dasharray="${it.dash}"` : ""}/>`;
    } else {
      swatch = `<rect x="${r(x + 3)}" y="${r(y)}" width="12" height="12" rx="2" fill="${it.colour}"/>`;
    }
    parts.push(`<g class="legend-item">${swatch}${text(x + 22, y + 10, it.label, 'font-size="12" fill="#222"')}</g>`);
    x += w;
  }
  return { svg: `<g class="legend">${parts.join("")}</g>`, height: y - top + rowH };
}

/** Opens the root element. `points` is the number of data marks. */
function open(name, title, height, points, extra = "") {
  return (
    `<svg class="chart" data-chart="${escapeHtml(name)}" data-points="${points}" ${extra}` +
    `xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${r(height)}" width="100%" ` +
    `preserveAspectRatio="xMidYMid meet" role="img" aria-label="${escapeHtml(title || name)}" ${FONT}>` +
    `<rect class="background" x="0" y="0" width="${WIDTH}" height="${r(height)}" fill="#ffffff"/>`
  );
}

function titleText(title) {
  return title ? text(WIDTH / 2, 22, title, 'class="chart-title" text-anchor="middle" font-size="15" font-weight="600" fill="#111"') : "";
}

/** A chart with nothing to draw: the title and a note, data-points="0". */
function noData(name, title, note = "no data") {
  const h = 200;
  return (
    open(name, title, h, 0) +
    titleText(title) +
    `<rect x="40" y="40" width="${WIDTH - 80}" height="${h - 70}" fill="#f6f6f6" stroke="#bbb" stroke-dasharray="4 3"/>` +
    text(WIDTH / 2, h / 2 + 10, note, 'class="no-data" text-anchor="middle" font-size="16" fill="#555"') +
    "</svg>"
  );
}

/** The frame both axes share: computes the plot area from the labels and
    draws the grid, ticks and axis titles. */
function axes({ top, height, yTicks, yFormat, yLabel, xLabel, xTicks, xFormat, xScale, bottomExtra = 0 }) {
  const yTickW = Math.max(...yTicks.ticks.map((t) => textWidth(yFormat(t))), 10);
  const left = Math.ceil(yTickW + 14 + (yLabel ? 22 : 0));
  const right = WIDTH - 20;
  const bottom = height - 34 - (xLabel ? 18 : 0) - bottomExtra;
  const y = (v) => bottom - ((v - yTicks.min) / (yTicks.max - yTicks.min)) * (bottom - top);
  const parts = ['<g class="axes">'];
  for (const t of yTicks.ticks) {
    const ty = r(y(t));
    parts.push(`<line class="grid" x1="${left}" y1="${ty}" x2="${right}" y2="${ty}" stroke="${t === 0 ? "#888" : "#e3e3e3"}" stroke-width="1"/>`);
    parts.push(text(left - 6, ty + 4, yFormat(t), 'class="tick y-tick" text-anchor="end" font-size="12" fill="#444"'));
  }
  if (yLabel) {
    const cy = (top + bottom) / 2;
    parts.push(text(14, cy, yLabel, `class="axis-label" text-anchor="middle" font-size="12" fill="#222" transform="rotate(-90 14 ${r(cy)})"`));
  }
  parts.push(`<line x1="${left}" y1="${r(bottom)}" x2="${right}" y2="${r(bottom)}" stroke="#888"/>`);
  if (xTicks) {
    const x = xScale(left, right);
    for (const t of xTicks.ticks) {
      const tx = r(x(t));
      parts.push(`<line x1="${tx}" y1="${r(bottom)}" x2="${tx}" y2="${r(bottom + 5)}" stroke="#888"/>`);
      parts.push(text(tx, bottom + 18, xFormat(t), 'class="tick x-tick" text-anchor="middle" font-size="12" fill="#444"'));
    }
  }
  if (xLabel) parts.push(text((left + right) / 2, height - 10, xLabel, 'class="axis-label" text-anchor="middle" font-size="12" fill="#222"'));
  parts.push("</g>");
  return { svg: parts.join(""), left, right, top, bottom, y };
}

function clip(id, a) {
  return `<clipPath id="${id}"><rect x="${a.left}" y="${r(a.top - 1)}" width="${a.right - a.left}" height="${r(a.bottom - a.top + 2)}"/></clipPath>`;
}

// ---------------------------------------------------------------------------
// Charts

/**
 * A time series chart: one line per series, a dot with a tooltip per point,
 * and optional vertical event markers (a crash, a rolling update).
 *
 * @param {object} o
 * @param {string} o.title
 * @param {string} [o.xLabel]
 * @param {string} [o.yLabel]
 * @param {{name: string, points: Array<[number, number|null]>}[]} o.series
 *        points in x order, x a number (seconds since the start, say); a null y
 *        breaks the line (a gap in the data)
 * @param {{x: number, label: string}[]} [o.markers]
 * @param {number} [o.yMin] default 0, or the data's minimum when below 0
 * @param {number} [o.yMax] default the data's maximum, rounded up to a tick
 * @param {(v: number) => string} [o.xFormat] tooltip format of x (default formatNumber)
 * @param {(v: number) => string} [o.valueFormat] tooltip format of y (default formatNumber)
 * @param {(v: number) => string} [o.tickFormat] y tick labels (default: 1-2-5 labels, k and M from 100,000)
 * @param {string} [o.slug] data-chart value (default: the title's slug)
 * @param {number} [o.height] default 380
 * @returns {string} SVG markup
 */
function lineChart(o) {
  const title = o.title || "";
  const name = o.slug || slug(title);
  const series = (o.series || []).map((s, i) => ({
    name: s.name === undefined ? `series ${i + 1}` : String(s.name),
    points: (s.points || []).filter((p) => Array.isArray(p) && isNum(p[0])),
    i,
  }));
  const markers = (o.markers || []).filter((m) => m && isNum(m.x));
  const points = series.reduce((n, s) => n + s.points.filter((p) => isNum(p[1])).length, 0);
  if (points === 0) return noData(name, title);
  const fx = o.xFormat || formatNumber;
  const fy = o.valueFormat || formatNumber;

  let xMin = Infinity, xMax = -Infinity, yLo = Infinity, yHi = -Infinity;
  for (const s of series) {
    for (const [x, y] of s.points) {
      xMin = Math.min(xMin, x);
      xMax = Math.max(xMax, x);
      if (isNum(y)) {
        yLo = Math.min(yLo, y);
        yHi = Math.max(yHi, y);
      }
    }
  }
  for (const m of markers) {
    xMin = Math.min(xMin, m.x);
    xMax = Math.max(xMax, m.x);
  }
  const yMin = isNum(o.yMin) ? o.yMin : Math.min(0, yLo);
  const yMax = isNum(o.yMax) ? o.yMax : yHi;
  let yTicks = niceTicks(yMin, yMax, 5);
  /* An explicit bound is kept as is (a fraction chart ends at 1, not 1.2). */
  if (isNum(o.yMin) || isNum(o.yMax)) {
    const lo = isNum(o.yMin) ? o.yMin : yTicks.min;
    const hi = isNum(o.yMax) ? o.yMax : yTicks.max;
    yTicks = { ...yTicks, min: lo, max: hi, ticks: yTicks.ticks.filter((t) => t >= lo - 1e-12 && t <= hi + 1e-12) };
  }
  const xTicks = niceTicks(xMin, xMax, 8);
  /* The x axis spans the data exactly; ticks are those inside it. */
  const xDomain = xMin === xMax ? [xTicks.min, xTicks.max] : [xMin, xMax];
  xTicks.ticks = xTicks.ticks.filter((t) => t >= xDomain[0] - 1e-12 && t <= xDomain[1] + 1e-12);
  const xAxisFormat = tickFormatter(xTicks.step, Math.max(Math.abs(xDomain[0]), Math.abs(xDomain[1])));
  const yAxisFormat = o.tickFormat || tickFormatter(yTicks.step, Math.max(Math.abs(yTicks.min), Math.abs(yTicks.max)));
  const xScale = (left, right) => (v) => left + ((v - xDomain[0]) / (xDomain[1] - xDomain[0])) * (right - left);

  const height = o.height || 380;
  const leg = legend(
    series.map((s) => ({ label: s.name, colour: colour(s.i), dash: dash(s.i), kind: "line" })),
    34, 20, WIDTH - 40);
  /* Marker labels take one or two rows above the plot (staggered when close). */
  const markerRows = markers.length ? (markers.length > 1 ? 2 : 1) : 0;
  const top = 34 + leg.height + 6 + markerRows * 14;
  const a = axes({ top, height, yTicks, yFormat: yAxisFormat, yLabel: o.yLabel, xLabel: o.xLabel, xTicks,
                   xFormat: xAxisFormat, xScale });
  const x = xScale(a.left, a.right);
  const cid = clipId(name, o);

  const parts = [open(name, title, height, points), titleText(title), leg.svg, a.svg, `<defs>${clip(cid, a)}</defs>`];
  /* Markers under the data, labels above the plot. */
  const sortedMarkers = markers.slice().sort((p, q) => p.x - q.x);
  let lastEnd = [-Infinity, -Infinity];
  sortedMarkers.forEach((m) => {
    const mx = r(x(m.x));
    const label = String(m.label === undefined ? "" : m.label);
    const w = textWidth(label, 11);
    /* The row whose previous label ends before this one starts. */
    const row = markerRows === 2 && lastEnd[0] > mx - w / 2 - 4 ? 1 : 0;
    lastEnd[row] = mx + w / 2;
    const ly = a.top - 6 - (markerRows - 1 - row) * 14;
    const anchor = mx - w / 2 < a.left ? "start" : mx + w / 2 > WIDTH - 4 ? "end" : "middle";
    parts.push(
      `<g class="marker"><title>${escapeHtml(`${label} (x = ${fx(m.x)})`)}</title>` +
        `<line x1="${mx}" y1="${r(ly + 3)}" x2="${mx}" y2="${r(a.bottom)}" stroke="#555" stroke-width="1.2" stroke-dasharray="4 3"/>` +
        text(mx, ly, label, `text-anchor="${anchor}" font-size="11" fill="#333"`) +
        "</g>");
  });
  for (const s of series) {
    const c = colour(s.i);
    const d = dash(s.i);
    let path = "";
    let pen = false;
    for (const [px, py] of s.points) {
      if (!isNum(py)) {
        pen = false;
        continue;
      }
      path += `${pen ? "L" : "M"}${r(x(px))} ${r(a.y(py))}`;
      pen = true;
    }
    /* Smaller dots where there are many: the line stays readable. */
    const dotR = s.points.length > 80 ? 1.6 : s.points.length > 30 ? 2.2 : 3;
    const dots = s.points
      .filter((p) => isNum(p[1]))
      .map(([px, py]) =>
        `<circle class="mark" cx="${r(x(px))}" cy="${r(a.y(py))}" r="${dotR}" fill="${c}">` +
        `<title>${escapeHtml(`${s.name}: ${fx(px)}, ${fy(py)}`)}</title></circle>`)
      .join("");
    parts.push(
      `<g class="series" data-series="${escapeHtml(s.name)}" clip-path="url(#${cid})">` +
        `<path d="${path}" fill="none" stroke="${c}" stroke-width="2"${d ? ` stroke-dasharray="${d}"` : ""} stroke-linejoin="round"/>` +
        dots + "</g>");
  }
  parts.push("</svg>");
  return parts.join("");
}

/**
 * Bars by category: grouped (one bar per series side by side) or stacked.
 * A value of null or undefined draws no bar.
 *
 * @param {object} o
 * @param {string} o.title
 * @param {string} [o.yLabel]
 * @param {string} [o.xLabel]
 * @param {string[]} o.categories
 * @param {{name: string, values: Array<number|null>}[]} o.series values by category
 * @param {boolean} [o.stacked] stack the series of a category (positive values up, negative down)
 * @param {number} [o.yMax] top of the axis (default: the greatest bar, rounded up to a tick)
 * @param {(v: number) => string} [o.valueFormat] format of values in tooltips, value labels and
 *        axis ticks (formatPercent for fractions); default formatNumber and 1-2-5 tick labels
 * @param {(v: number) => string} [o.tickFormat] y tick labels, when they should differ from valueFormat
 * @param {boolean} [o.valueLabels] write each value above its bar (default: grouped bars whose labels fit)
 * @param {string} [o.slug]
 * @param {number} [o.height] default 380
 * @returns {string} SVG markup
 */
function barChart(o) {
  const title = o.title || "";
  const name = o.slug || slug(title);
  const categories = (o.categories || []).map((c) => String(c));
  const series = (o.series || []).map((s, i) => ({
    name: s.name === undefined ? `series ${i + 1}` : String(s.name),
    values: categories.map((_, k) => (s.values && isNum(s.values[k]) ? s.values[k] : null)),
    i,
  }));
  const points = series.reduce((n, s) => n + s.values.filter(isNum).length, 0);
  if (points === 0 || categories.length === 0) return noData(name, title);
  const fv = o.valueFormat || formatNumber;
  const stacked = !!o.stacked;

  let lo = 0, hi = 0;
  categories.forEach((_, k) => {
    if (stacked) {
      let pos = 0, neg = 0;
      for (const s of series) {
        const v = s.values[k];
        if (!isNum(v)) continue;
        if (v >= 0) pos += v;
        else neg += v;
      }
      hi = Math.max(hi, pos);
      lo = Math.min(lo, neg);
    } else {
      for (const s of series) {
        const v = s.values[k];
        if (isNum(v)) {
          hi = Math.max(hi, v);
          lo = Math.min(lo, v);
        }
      }
    }
  });
  let yTicks = niceTicks(lo, isNum(o.yMax) ? o.yMax : hi, 5);
  if (isNum(o.yMax)) yTicks = { ...yTicks, max: o.yMax, ticks: yTicks.ticks.filter((t) => t <= o.yMax + 1e-12) };
  const yAxisFormat = o.tickFormat || (o.valueFormat ? fv : tickFormatter(yTicks.step, Math.max(Math.abs(yTicks.min), Math.abs(yTicks.max))));

  /* Category labels: rotated when they do not fit their band. */
  const band0 = (WIDTH - 100) / categories.length;
  const longest = Math.max(...categories.map((c) => textWidth(c)));
  const rotate = longest > band0 - 6;
  const labelDepth = rotate ? Math.min(120, longest * 0.72 + 8) : 0;

  const height = (o.height || 380) + labelDepth;
  /* Value labels by default only where each fits over its bar. */
  const perGroup = stacked ? 1 : series.length;
  const widest = Math.max(...series.flatMap((s) => s.values.filter(isNum).map((v) => textWidth(fv(v), 11))));
  const labels = o.valueLabels !== undefined ? !!o.valueLabels : !stacked && widest + 2 <= (band0 * 0.78) / perGroup;

  const cid = clipId(name, o);
  /* Past the palette, bars repeat a colour: stripes tell them apart. */
  const fill = (i) => (i < PALETTE.length ? colour(i) : `url(#${cid}-p${i})`);
  const patterns = series
    .filter((s) => s.i >= PALETTE.length)
    .map((s) =>
      `<pattern id="${cid}-p${s.i}" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(${s.i % 2 ? 45 : -45})">` +
        `<rect width="6" height="6" fill="#ffffff"/><rect width="3.5" height="6" fill="${colour(s.i)}"/></pattern>`)
    .join("");
  const showLegend = series.length > 1 || (o.series[0] && o.series[0].name !== undefined);
  const leg = showLegend
    ? legend(series.map((s) => ({ label: s.name, colour: fill(s.i), kind: "box" })), 34, 20, WIDTH - 40)
    : { svg: "", height: 0 };
  const top = 34 + leg.height + (labels ? 22 : 14);
  const a = axes({ top, height, yTicks, yFormat: yAxisFormat, yLabel: o.yLabel, xLabel: o.xLabel,
                   xTicks: null, bottomExtra: labelDepth });
  const band = (a.right - a.left) / categories.length;
  const groupW = band * 0.78;
  const barW = groupW / perGroup;
  const zero = a.y(Math.max(yTicks.min, Math.min(0, yTicks.max)));

  const parts = [open(name, title, height, points), titleText(title), `<defs>${clip(cid, a)}${patterns}</defs>`, leg.svg, a.svg];
  const bars = [];
  const valueTexts = [];
  categories.forEach((cat, k) => {
    const gx = a.left + band * k + (band - groupW) / 2;
    let pos = 0, neg = 0;
    series.forEach((s, j) => {
      const v = s.values[k];
      if (!isNum(v)) return;
      let y0, y1;
      if (stacked) {
        if (v >= 0) { y0 = pos; y1 = pos + v; pos = y1; }
        else { y0 = neg; y1 = neg + v; neg = y1; }
      } else {
        y0 = 0;
        y1 = v;
      }
      const bx = stacked ? gx : gx + barW * j;
      const ya = a.y(Math.max(y0, y1));
      const yb = a.y(Math.min(y0, y1));
      const tip = `${cat}${series.length > 1 || showLegend ? ` — ${s.name}` : ""}: ${fv(v)}`;
      bars.push(
        `<rect class="mark" x="${r(bx + 0.5)}" y="${r(ya)}" width="${r(Math.max(1, barW - 1))}" height="${r(Math.max(0, yb - ya))}" fill="${fill(s.i)}"${stacked ? ' stroke="#ffffff" stroke-width="0.75"' : ""}>` +
          `<title>${escapeHtml(tip)}</title></rect>`);
      if (labels) {
        const above = v >= 0;
        const ty = Math.max(a.top - 4, above ? ya - 4 : yb + 12);
        valueTexts.push(text(bx + barW / 2, ty, fv(v), 'class="value" text-anchor="middle" font-size="11" fill="#222"'));
      }
    });
    const cx = a.left + band * k + band / 2;
    if (rotate) {
      parts.push(text(cx, a.bottom + 14, cat, `class="tick x-tick" text-anchor="end" font-size="12" fill="#444" transform="rotate(-35 ${r(cx)} ${r(a.bottom + 14)})"`));
    } else {
      parts.push(text(cx, a.bottom + 18, cat, 'class="tick x-tick" text-anchor="middle" font-size="12" fill="#444"'));
    }
  });
  parts.push(`<g class="bars" clip-path="url(#${cid})">${bars.join("")}</g>`);
  if (valueTexts.length) parts.push(`<g class="values">${valueTexts.join("")}</g>`);
  parts.push(`<line x1="${a.left}" y1="${r(zero)}" x2="${a.right}" y2="${r(zero)}" stroke="#666"/>`);
  parts.push("</svg>");
  return parts.join("");
}

/**
 * A histogram of raw values with a vertical line at each percentile; the
 * legend gives each percentile's value (nearest rank, see `percentile`).
 * Data marks are the bins that hold at least one value.
 *
 * @param {object} o
 * @param {string} o.title
 * @param {string} [o.xLabel]
 * @param {string} [o.yLabel] default "count"
 * @param {number[]} o.values raw values (non-numbers are ignored)
 * @param {number|number[]} [o.bins] see `histogram`
 * @param {number[]} [o.percentiles] default [50, 90, 99]
 * @param {(v: number) => string} [o.valueFormat] format of values (default formatNumber)
 * @param {string} [o.slug]
 * @param {number} [o.height] default 360
 * @returns {string} SVG markup; the root also says data-values="N" (the number of values)
 */
function distributionChart(o) {
  const title = o.title || "";
  const name = o.slug || slug(title);
  const values = (o.values || []).filter(isNum);
  if (values.length === 0) return noData(name, title);
  const fv = o.valueFormat || formatNumber;
  const ps = (o.percentiles || [50, 90, 99]).filter(isNum);
  const pv = percentiles(values, ps);
  const { edges, counts } = histogram(values, o.bins);
  const marks = counts.filter((c) => c > 0).length;
  const counted = counts.reduce((s, c) => s + c, 0);

  const maxCount = Math.max(...counts);
  const yTicks = niceTicks(0, maxCount, 5);
  if (yTicks.step < 1) {
    /* Counts are whole numbers: no tick at 0.5. */
    Object.assign(yTicks, niceTicks(0, Math.max(maxCount, 1), Math.max(1, Math.min(5, maxCount))));
  }
  const lo = edges[0];
  const hi = edges[edges.length - 1];
  const xTicks = niceTicks(lo, hi, 8);
  xTicks.ticks = xTicks.ticks.filter((t) => t >= lo - 1e-12 && t <= hi + 1e-12);
  const xAxisFormat = tickFormatter(xTicks.step, Math.max(Math.abs(lo), Math.abs(hi)));
  const xScale = (left, right) => (v) => left + ((v - lo) / (hi - lo)) * (right - left);

  const height = o.height || 360;
  const legendItems = [{ label: `${formatNumber(values.length)} values`, colour: colour(0), kind: "box" }].concat(
    ps.map((p, k) => ({ label: `p${p} = ${fv(pv[p])}`, colour: colour(k + 1), dash: "5 3", kind: "line", width: 2 })));
  const leg = legend(legendItems, 34, 20, WIDTH - 40);
  const top = 34 + leg.height + 14;
  const a = axes({ top, height, yTicks, yFormat: tickFormatter(yTicks.step, yTicks.max), yLabel: o.yLabel || "count",
                   xLabel: o.xLabel, xTicks, xFormat: xAxisFormat, xScale });
  const x = xScale(a.left, a.right);

  const parts = [
    open(name, title, height, marks, `data-values="${values.length}" `),
    titleText(title), leg.svg, a.svg];
  const rects = [];
  counts.forEach((c, i) => {
    if (c === 0) return;
    const x0 = x(edges[i]);
    const x1 = x(edges[i + 1]);
    const yTop = a.y(c);
    const closing = i === counts.length - 1 ? "]" : ")";
    const share = formatPercent(c / counted, 1);
    rects.push(
      `<rect class="mark" x="${r(x0 + 0.5)}" y="${r(yTop)}" width="${r(Math.max(1, x1 - x0 - 1))}" height="${r(a.bottom - yTop)}" fill="${colour(0)}" fill-opacity="0.85">` +
        `<title>${escapeHtml(`[${fv(edges[i])}, ${fv(edges[i + 1])}${closing}: ${formatNumber(c)} (${share})`)}</title></rect>`);
  });
  parts.push(`<g class="bins">${rects.join("")}</g>`);
  ps.forEach((p, k) => {
    const v = pv[p];
    const px = r(x(v));
    parts.push(
      `<g class="percentile" data-percentile="${p}" data-value="${v}"><title>${escapeHtml(`p${p} = ${fv(v)}`)}</title>` +
        `<line x1="${px}" y1="${r(a.top - 4)}" x2="${px}" y2="${r(a.bottom)}" stroke="${colour(k + 1)}" stroke-width="2" stroke-dasharray="5 3"/>` +
        /* Labels one under the other: close percentiles do not overprint. */
        text(px + 4, a.top + 8 + k * 13, `p${p}`, `font-size="11" font-weight="600" fill="${colour(k + 1)}"`) +
        "</g>");
  });
  parts.push("</svg>");
  return parts.join("");
}

/**
 * An HTML table. Columns are labels, or { label, align: "left"|"right",
 * format: (value) => string }; rows are arrays of cells in column order.
 * Text is escaped; a cell { html } is inserted as is (for links or charts).
 * Numbers are right-aligned and formatted with formatNumber unless the column
 * says otherwise.
 *
 * @returns {string} `<table class="data">...</table>`
 */
function table({ columns = [], rows = [], caption } = {}) {
  const cols = columns.map((c) => (typeof c === "object" && c !== null ? c : { label: c }));
  const numeric = cols.map((c, k) => c.align ? c.align === "right" : rows.length > 0 && rows.every((row) => row[k] === null || row[k] === undefined || isNum(row[k])));
  const cell = (v, k) => {
    if (v && typeof v === "object" && typeof v.html === "string") return v.html;
    if (v === null || v === undefined) return "";
    const f = cols[k] && cols[k].format;
    return escapeHtml(f ? f(v) : isNum(v) ? formatNumber(v) : v);
  };
  const cls = (k) => (numeric[k] ? ' class="num"' : "");
  const head = cols.map((c, k) => `<th scope="col"${cls(k)}>${escapeHtml(c.label)}</th>`).join("");
  const body = rows.map((row) => `<tr>${cols.map((_, k) => `<td${cls(k)}>${cell(row[k], k)}</td>`).join("")}</tr>`).join("\n");
  return (
    `<table class="data">${caption ? `<caption>${escapeHtml(caption)}</caption>` : ""}` +
    `<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`
  );
}

module.exports = {
  PALETTE,
  lineChart,
  barChart,
  distributionChart,
  table,
  escapeHtml,
  slug,
  niceTicks,
  niceStep,
  percentile,
  percentiles,
  histogram,
  formatNumber,
  formatPercent,
};
