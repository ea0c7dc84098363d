// Tests of charts.js and page.js on known data: counts of marks, data-points,
// ticks, escaping, empty data, percentiles.
//
//   node --test lb/report/
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const charts = require("./charts");
const { page } = require("./page");

const count = (s, re) => (s.match(re) || []).length;
const root = (svg) => svg.slice(0, svg.indexOf(">") + 1);
const attr = (svg, name) => (root(svg).match(new RegExp(` ${name}="([^"]*)"`)) || [])[1];
const ticks = (svg, axis) =>
  [...svg.matchAll(new RegExp(`<text [^>]*class="tick ${axis}-tick"[^>]*>([^<]*)</text>`, "g"))].map((m) => m[1]);

/** Checks that every tag is closed in order: the markup is well-formed XML
    as far as elements go (attribute values hold no raw < or >). */
function assertBalanced(markup) {
  const stack = [];
  for (const m of markup.matchAll(/<(\/?)([a-zA-Z][\w:-]*)([^>]*?)(\/?)>/g)) {
    const [, closing, name, , selfClosing] = m;
    if (selfClosing) continue;
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    else stack.push(name);
  }
  assert.deepEqual(stack, [], "unclosed elements");
}

/** The data marks: elements with class "mark", each with a <title> child. */
function marks(svg) {
  return [...svg.matchAll(/<(circle|rect) class="mark"[^>]*><title>([^<]*)<\/title><\/\1>/g)].map((m) => m[2]);
}

function assertRoot(svg, slug, points) {
  assert.match(svg, /^<svg class="chart" data-chart="[^"]*" data-points="\d+"/);
  assert.equal(attr(svg, "data-chart"), slug);
  assert.equal(attr(svg, "data-points"), String(points));
  assert.match(attr(svg, "viewBox"), /^0 0 \d+ [\d.]+$/);
  assert.equal(attr(svg, "width"), "100%");
  assert.equal(count(svg, /class="mark"/g), points, "data-points is the number of marks");
  assert.equal(marks(svg).length, points, "every mark has a <title>");
  assertBalanced(svg);
}

test("niceTicks: 1-2-5 steps covering the data", () => {
  assert.deepEqual(charts.niceTicks(0, 480, 5), { min: 0, max: 500, step: 100, ticks: [0, 100, 200, 300, 400, 500] });
  assert.deepEqual(charts.niceTicks(0, 0.93, 5).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(charts.niceTicks(3, 97, 5).ticks, [0, 20, 40, 60, 80, 100]);
  assert.deepEqual(charts.niceTicks(-12, 48, 5).ticks, [-20, 0, 20, 40, 60]);
  assert.deepEqual(charts.niceTicks(0, 20000, 5).ticks, [0, 5000, 10000, 15000, 20000]);
  assert.deepEqual(charts.niceTicks(0.1, 0.3, 4).ticks, [0.1, 0.15, 0.2, 0.25, 0.3]);
  assert.deepEqual(charts.niceTicks(7, 7, 5).ticks, [0, 2, 4, 6, 8], "one value: a range from 0");
  assert.deepEqual(charts.niceTicks(0, 0, 5).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  let seed = 12345; // a fixed sequence: the same ranges on every run
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let i = 0; i < 2000; ++i) {
    const a = (random() - 0.3) * Math.pow(10, Math.floor(random() * 12) - 4);
    const b = a + random() * Math.pow(10, Math.floor(random() * 12) - 4);
    const t = charts.niceTicks(a, b, 5);
    const mantissa = t.step / Math.pow(10, Math.floor(Math.log10(t.step) + 1e-9));
    assert.ok([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-9), `step ${t.step} for ${a}..${b}`);
    const slack = t.step * 1e-6;
    assert.ok(t.min <= a + slack && t.max >= b - slack, `ticks ${t.min}..${t.max} cover ${a}..${b}`);
    assert.ok(t.ticks.length >= 2 && t.ticks.length <= 12, `${t.ticks.length} ticks for ${a}..${b}`);
  }
});

test("percentile: nearest rank on known values", () => {
  const oneToTen = [7, 3, 10, 1, 5, 2, 9, 4, 8, 6]; // unsorted on purpose
  assert.equal(charts.percentile(oneToTen, 50), 5);
  assert.equal(charts.percentile(oneToTen, 90), 9);
  assert.equal(charts.percentile(oneToTen, 99), 10);
  assert.equal(charts.percentile(oneToTen, 100), 10);
  assert.equal(charts.percentile(oneToTen, 0), 1);
  assert.deepEqual(oneToTen, [7, 3, 10, 1, 5, 2, 9, 4, 8, 6], "the input is not sorted in place");
  // The classic example of the method.
  const five = [15, 20, 35, 40, 50];
  assert.deepEqual(charts.percentiles(five, [5, 30, 40, 50, 100]), { 5: 15, 30: 20, 40: 20, 50: 35, 100: 50 });
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.deepEqual(charts.percentiles(hundred, [50, 90, 99]), { 50: 50, 90: 90, 99: 99 });
  const thousand = Array.from({ length: 1000 }, (_, i) => (i + 1) / 10);
  assert.deepEqual(charts.percentiles(thousand, [50, 90, 99, 99.9]), { 50: 50, 90: 90, 99: 99, 99.9: 99.9 });
  assert.ok(Number.isNaN(charts.percentile([], 50)));
  assert.equal(charts.percentile([NaN, 4, null, "x"], 50), 4, "non-numbers are ignored");
});

test("histogram: bins and counts", () => {
  const zeroToTen = Array.from({ length: 11 }, (_, i) => i);
  assert.deepEqual(charts.histogram(zeroToTen, 5), { edges: [0, 2, 4, 6, 8, 10], counts: [2, 2, 2, 2, 3] });
  assert.deepEqual(charts.histogram([1, 2, 3, 100], [0, 10, 20]).counts, [3, 0], "outside the edges: not counted");
  const auto = charts.histogram(Array.from({ length: 100 }, (_, i) => i + 0.5), undefined);
  assert.equal(auto.counts.reduce((a, b) => a + b, 0), 100);
  assert.deepEqual([auto.edges[0], auto.edges[auto.edges.length - 1]], [0, 100]);
  assert.equal(auto.counts.length, 10, "sqrt(100) bins of width 10");
  assert.deepEqual(charts.histogram([], 5), { edges: [], counts: [] });
});

test("lineChart: one mark per point, gaps, markers, ticks", () => {
  const svg = charts.lineChart({
    title: "Connections per instance",
    xLabel: "time (s)",
    yLabel: "connections",
    series: [
      { name: "a", points: [[0, 0], [10, 240], [20, 480]] },
      { name: "b", points: [[0, 0], [10, null], [20, 310]] },
    ],
    markers: [{ x: 5, label: "a killed" }, { x: 15, label: "scale-out" }],
  });
  assertRoot(svg, "connections-per-instance", 5);
  assert.equal(count(svg, /<g class="series"/g), 2);
  assert.equal(count(svg, /<g class="marker">/g), 2);
  assert.equal(count(svg, /<g class="legend-item">/g), 2);
  assert.deepEqual(ticks(svg, "y"), ["0", "100", "200", "300", "400", "500"]);
  assert.deepEqual(ticks(svg, "x"), ["0", "5", "10", "15", "20"]);
  assert.ok(marks(svg).includes("a: 10, 240"));
  assert.ok(marks(svg).includes("b: 20, 310"));
  assert.match(svg, />time \(s\)</);
  assert.match(svg, />connections</);
  // The gap: series b's path starts anew after the null.
  const bPath = svg.match(/data-series="b"[^>]*><path d="([^"]*)"/)[1];
  assert.equal(count(bPath, /M/g), 2);
});

test("lineChart: yMin and yMax are kept as given", () => {
  const svg = charts.lineChart({
    title: "Delivered", yMin: 0, yMax: 1, valueFormat: (v) => charts.formatPercent(v),
    series: [{ name: "with backplane", points: [[0, 0.5], [1, 0.93]] }],
  });
  assertRoot(svg, "delivered", 2);
  assert.deepEqual(ticks(svg, "y"), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
  assert.ok(marks(svg).includes("with backplane: 1, 93%"));
});

test("barChart: grouped and stacked bars, nulls, value format", () => {
  const o = {
    title: "Per-balancer per-instance connections",
    yLabel: "connections",
    categories: ["nginx", "ClientIP", "stateless"],
    series: [
      { name: "a", values: [500, 1000, 333] },
      { name: "b", values: [500, null, 333] },
    ],
  };
  const grouped = charts.barChart(o);
  assertRoot(grouped, "per-balancer-per-instance-connections", 5);
  assert.deepEqual(ticks(grouped, "x"), ["nginx", "ClientIP", "stateless"]);
  assert.deepEqual(ticks(grouped, "y"), ["0", "200", "400", "600", "800", "1,000"]);
  assert.ok(marks(grouped).includes("ClientIP — a: 1,000"));
  const stacked = charts.barChart({ ...o, stacked: true });
  assertRoot(stacked, "per-balancer-per-instance-connections", 5);
  assert.deepEqual(ticks(stacked, "y"), ["0", "200", "400", "600", "800", "1,000"]);
  const nginxHeights = [...stacked.matchAll(/<rect class="mark"[^>]*height="([\d.]+)"[^>]*><title>nginx/g)].map((m) => +m[1]);
  assert.equal(nginxHeights.length, 2);
  assert.ok(Math.abs(nginxHeights[0] - nginxHeights[1]) < 0.02, "equal values, equal segments");

  const fraction = charts.barChart({
    title: "Delivered fraction", categories: ["no backplane", "Redis"], yMax: 1,
    series: [{ name: "sticky", values: [0.5, 1] }, { name: "stateless", values: [0.33, 1] }],
    valueFormat: (v) => charts.formatPercent(v),
  });
  assertRoot(fraction, "delivered-fraction", 4);
  assert.deepEqual(ticks(fraction, "y"), ["0%", "20%", "40%", "60%", "80%", "100%"]);
  assert.ok(marks(fraction).includes("no backplane — stateless: 33%"));
  assert.equal(count(fraction, /class="value"/g), 4, "value labels that fit are written");
});

test("barChart: more series than colours get stripes", () => {
  const series = Array.from({ length: 9 }, (_, i) => ({ name: `i${i}`, values: [i + 1] }));
  const svg = charts.barChart({ title: "Many", categories: ["x"], series, stacked: true });
  assertRoot(svg, "many", 9);
  assert.equal(count(svg, /<pattern /g), 9 - charts.PALETTE.length);
  assert.equal(count(svg, /<g class="legend-item">/g), 9);
});

test("distributionChart: bins, percentile lines and legend", () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  const svg = charts.distributionChart({ title: "Reconnect time", xLabel: "ms", values, bins: 10 });
  assertRoot(svg, "reconnect-time", 10);
  assert.equal(attr(svg, "data-values"), "100");
  assert.equal(count(svg, /<g class="percentile"/g), 3);
  for (const [p, v] of [[50, 50], [90, 90], [99, 99]]) {
    assert.match(svg, new RegExp(`data-percentile="${p}" data-value="${v}"`));
    assert.match(svg, new RegExp(`<text [^>]*>p${p} = ${v}</text>`), `p${p} in the legend`);
  }
  assert.ok(marks(svg).includes("[1, 10.9): 10 (10%)"));
  assert.ok(marks(svg).includes("[90.1, 100]: 10 (10%)"));

  const skewed = charts.distributionChart({
    title: "Skewed", values: [1, 1, 1, 2, 50], percentiles: [50, 99], valueFormat: (v) => `${v} ms`,
  });
  assert.match(skewed, /<text [^>]*>p50 = 1 ms<\/text>/);
  assert.match(skewed, /<text [^>]*>p99 = 50 ms<\/text>/);
  assert.equal(count(skewed, /<g class="percentile"/g), 2);
  const bins = marks(skewed);
  assert.ok(bins.length >= 2 && bins.length === +attr(skewed, "data-points"), "empty bins draw no mark");
  assert.equal(bins.map((t) => +t.match(/: (\d+) \(/)[1]).reduce((a, b) => a + b, 0), 5);
  assert.deepEqual(ticks(skewed, "y").slice(0, 2), ["0", "1"], "counts: whole-number ticks");
});

test("escaping: <&\" in titles, names, labels and categories", () => {
  const evil = `<b>&"x"`;
  const line = charts.lineChart({
    title: evil, xLabel: evil, yLabel: evil,
    series: [{ name: evil, points: [[1, 2]] }], markers: [{ x: 1, label: evil }],
  });
  const bar = charts.barChart({ title: evil, yLabel: evil, categories: [evil], series: [{ name: evil, values: [1] }] });
  const dist = charts.distributionChart({ title: evil, xLabel: evil, values: [1, 2, 3] });
  for (const svg of [line, bar, dist]) {
    assert.ok(!svg.includes("<b>"), "no raw markup from the data");
    assert.ok(!svg.includes(`"x"`), "no raw quotes from the data");
    assert.ok(svg.includes("&lt;b&gt;&amp;&quot;x&quot;"));
    assert.equal(attr(svg, "data-chart"), "b-x");
    assert.equal(attr(svg, "aria-label"), "&lt;b&gt;&amp;&quot;x&quot;");
    assertBalanced(svg);
  }
  assert.ok(marks(line)[0].startsWith("&lt;b&gt;&amp;&quot;x&quot;: 1, 2"));
  assert.equal(charts.escapeHtml(`<a href="x">&'`), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  assert.equal(charts.escapeHtml(null), "");
  assert.equal(charts.slug("Delivered (%) — with Redis!"), "delivered-with-redis");
});

test("empty data: a visible note and data-points=0", () => {
  const empties = [
    charts.lineChart({ title: "Empty line", series: [] }),
    charts.lineChart({ title: "Empty line", series: [{ name: "a", points: [] }, { name: "b", points: [[0, null]] }] }),
    charts.lineChart({ title: "Empty line" }),
    charts.barChart({ title: "Empty line", categories: ["x"], series: [{ name: "a", values: [null] }] }),
    charts.barChart({ title: "Empty line", categories: [], series: [] }),
    charts.distributionChart({ title: "Empty line", values: [] }),
    charts.distributionChart({ title: "Empty line", values: [NaN, "x"] }),
  ];
  for (const svg of empties) {
    assertRoot(svg, "empty-line", 0);
    assert.match(svg, /<text [^>]*class="no-data"[^>]*>no data<\/text>/);
  }
});

test("table: escaped cells, numbers right-aligned and formatted, raw html on request", () => {
  const html = charts.table({
    columns: ["policy", "p99 (ms)", { label: "<note>", align: "left" }],
    rows: [["sticky & <b>", 12345.678, { html: "<em>ok</em>" }], ["stateless", 7, null]],
  });
  assert.match(html, /^<table class="data">/);
  assert.equal(count(html, /<tr>/g), 3);
  assert.equal(count(html, /<th scope="col"/g), 3);
  assert.ok(html.includes("<td>sticky &amp; &lt;b&gt;</td>"));
  assert.ok(html.includes('<td class="num">12,345.7</td>'));
  assert.ok(html.includes('<th scope="col" class="num">p99 (ms)</th>'));
  assert.ok(html.includes("<th scope=\"col\">&lt;note&gt;</th>"));
  assert.ok(html.includes("<td><em>ok</em></td>"));
  assertBalanced(html);
});

test("formatNumber and formatPercent", () => {
  assert.equal(charts.formatNumber(999271), "999,271");
  assert.equal(charts.formatNumber(-1234), "-1,234");
  assert.equal(charts.formatNumber(4.6449), "4.64");
  assert.equal(charts.formatNumber(1234.56), "1,234.6");
  assert.equal(charts.formatNumber(0.012345), "0.0123");
  assert.equal(charts.formatNumber(0.1 + 0.2), "0.3");
  assert.equal(charts.formatPercent(0.987), "98.7%");
  assert.equal(charts.formatPercent(1), "100%");
});

test("page: one self-contained document with a table of contents", () => {
  const html = page({
    title: "Sticky & stateless <demo>",
    intro: "First.\n\nSecond <p>.",
    sections: [
      { id: "crash", title: "An instance crashes", html: charts.lineChart({ title: "c", series: [{ name: "a", points: [[0, 1]] }] }) },
      { title: "Delivered <fraction>", html: "<p>text</p>" },
      { title: "Delivered <fraction>", html: "" },
    ],
  });
  assert.match(html, /^<!DOCTYPE html>\n<html lang="en">/);
  assert.ok(html.includes("<title>Sticky &amp; stateless &lt;demo&gt;</title>"));
  assert.ok(html.includes("<p class=\"intro\">Second &lt;p&gt;.</p>"));
  assert.deepEqual([...html.matchAll(/<li><a href="#([^"]+)">/g)].map((m) => m[1]),
    ["crash", "delivered-fraction", "delivered-fraction-2"]);
  assert.deepEqual([...html.matchAll(/<section id="([^"]+)">/g)].map((m) => m[1]),
    ["crash", "delivered-fraction", "delivered-fraction-2"]);
  assert.equal(count(html, /<svg class="chart"/g), 1);
  // Nothing external: no script, no stylesheet link, no src, links only within the page.
  assert.ok(!/<script|<link|<img|<iframe|@import|url\((?!#)/i.test(html));
  assert.ok(!/\ssrc=/i.test(html));
  for (const m of html.matchAll(/href="([^"]*)"/g)) assert.ok(m[1].startsWith("#"), m[1]);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  assertBalanced(html.replace(/<!DOCTYPE html>|<meta [^>]*>/g, ""));
});
