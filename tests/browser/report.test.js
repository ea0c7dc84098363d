// A report page in a real browser (the load-balancer demo's, the
// benchmarks'): headless Chromium (Debian's chromium, driven by
// playwright-core) opens index.html from disk, with the network cut off, and
// every chart must have rendered with data: an <svg class="chart"> per
// section, each with data marks laid out on the page (a width and a height),
// and no "no data" note.
//
//   npm ci && node report.test.js path/to/index.html SECTION...
//
// SECTION: the sections the run had (the load-balancer demo's scenarios:
// distribution cross crash rolling scale storm; the benchmarks': core channels
// end-to-end peers memory); each must have at least one chart and a conclusion.
// Environment: CHROMIUM (default /usr/bin/chromium). Exits 0 on success.
"use strict";
const { chromium } = require("playwright-core");
const fs = require("fs");
const os = require("os");
const path = require("path");

const [report, ...scenarios] = process.argv.slice(2);
if (!report || !scenarios.length) {
  console.error("usage: node report.test.js path/to/index.html SCENARIO...");
  process.exit(2);
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "backplane-report-"));
let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) ++failures;
}

(async () => {
  const context = await chromium.launchPersistentContext(path.join(tmp, "profile"), {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    offline: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await context.newPage();
    const requests = [];
    page.on("request", (r) => { if (!r.url().startsWith("file:")) requests.push(r.url()); });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto(`file://${path.resolve(report)}`);
    // Every section open, so that the folded charts are laid out too.
    await page.evaluate(() => document.querySelectorAll("details").forEach((d) => (d.open = true)));
    const found = await page.evaluate(() => [...document.querySelectorAll("svg.chart")].map((svg) => {
      const box = svg.getBoundingClientRect();
      const marks = [...svg.querySelectorAll(".mark")];
      const laid = marks.filter((m) => { const b = m.getBoundingClientRect(); return b.width > 0 || b.height > 0; });
      return { name: svg.dataset.chart, points: Number(svg.dataset.points), marks: marks.length, laid: laid.length,
        width: box.width, height: box.height, section: svg.closest("section") ? svg.closest("section").id : "",
        noData: svg.textContent.includes("no data") && Number(svg.dataset.points) === 0 };
    }));
    check(found.length > 0, `${found.length} charts on the page`);
    for (const c of found) {
      check(c.points > 0 && !c.noData, `${c.name}: ${c.points} data points`);
      check(c.marks === c.points && c.laid === c.marks, `${c.name}: ${c.laid} of ${c.marks} marks laid out`);
      check(c.width > 200 && c.height > 100, `${c.name}: rendered ${Math.round(c.width)} x ${Math.round(c.height)}`);
    }
    for (const s of scenarios) {
      const charts = found.filter((c) => c.section === s);
      check(charts.length > 0, `section ${s}: ${charts.length} charts`);
      const conclusion = await page.evaluate((id) => {
        const el = document.querySelector(`section#${id} .conclusion`);
        return el ? el.textContent : "";
      }, s);
      check(conclusion.length > 40, `section ${s}: a conclusion (${conclusion.slice(0, 60)}...)`);
    }
    check(requests.length === 0, `no request leaves the page (${requests.join(", ")})`);
    check(errors.length === 0, `no errors (${errors.join("; ")})`);
    await page.screenshot({ path: path.join(path.dirname(path.resolve(report)), "screenshot.png"), fullPage: true });
  } finally {
    await context.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(failures ? 1 : 0);
})().catch((e) => {
  console.error(e);
  fs.rmSync(tmp, { recursive: true, force: true });
  process.exit(1);
});
