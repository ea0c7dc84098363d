// One self-contained HTML report page: inline CSS, a table of contents, the
// sections' HTML (charts from charts.js, tables). Nothing external is loaded
// and no script runs: the Content-Security-Policy forbids both, so the page
// reads the same offline, from a file, years later.
//
//   const { page } = require("./page");
//   fs.writeFileSync("report.html", page({ title: "Sticky or stateless", intro: "What we measured.",
//     sections: [{ id: "crash", title: "An instance crashes", html: charts.lineChart({...}) }] }));
"use strict";
const { escapeHtml, slug } = require("./charts");

const CSS = `
:root { color-scheme: light; --fg: #1b1b1b; --muted: #555; --line: #d7d7d7; --accent: #0072B2; --zebra: #f6f7f9; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 62rem; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.9rem; line-height: 1.2; margin: 0 0 0.75rem; }
h2 { font-size: 1.4rem; line-height: 1.25; margin: 2.5rem 0 0.75rem; padding-top: 0.5rem; border-top: 1px solid var(--line); }
h3 { font-size: 1.1rem; margin: 1.75rem 0 0.5rem; }
p, ul, ol { max-width: 46rem; }
a { color: var(--accent); }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 0.9em; }
pre { background: var(--zebra); padding: 0.75rem 1rem; overflow-x: auto; border-radius: 4px; }
.intro { font-size: 1.05rem; color: #333; }
nav.toc { background: var(--zebra); border: 1px solid var(--line); border-radius: 6px; padding: 0.75rem 1.25rem; margin: 1.5rem 0; }
nav.toc h2 { font-size: 1rem; margin: 0 0 0.25rem; padding: 0; border: 0; }
nav.toc ol { margin: 0; padding-left: 1.4rem; }
nav.toc li { margin: 0.15rem 0; }
section { scroll-margin-top: 1rem; }
svg.chart { display: block; width: 100%; height: auto; max-width: 100%; margin: 1rem 0 1.5rem; border: 1px solid #eee; border-radius: 4px; }
.table-wrap, table.data { max-width: 100%; }
table.data { border-collapse: collapse; margin: 1rem 0 1.5rem; font-size: 0.92rem; display: block; overflow-x: auto; }
table.data caption { text-align: left; font-weight: 600; padding: 0 0 0.4rem; }
table.data th, table.data td { padding: 0.35rem 0.75rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
table.data thead th { border-bottom: 2px solid #999; background: #fff; white-space: nowrap; }
table.data tbody tr:nth-child(even) { background: var(--zebra); }
table.data .num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
footer { margin-top: 3rem; color: var(--muted); font-size: 0.85rem; }
@media print {
  main { max-width: none; padding: 0; }
  nav.toc { break-after: page; }
  svg.chart, table.data { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
`;

/** Paragraphs from plain text: blank lines separate them, text is escaped. */
function paragraphs(text, cls) {
  return String(text)
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => `<p${cls ? ` class="${cls}"` : ""}>${escapeHtml(p)}</p>`)
    .join("\n");
}

/**
 * A complete HTML document.
 *
 * @param {object} o
 * @param {string} o.title  text (escaped): the page's <title> and <h1>
 * @param {string} [o.intro] text (escaped; blank lines make paragraphs)
 * @param {string} [o.introHtml] HTML put after the intro as is
 * @param {{id?: string, title: string, html: string}[]} o.sections
 *        title is text; html is inserted as is (charts, tables, paragraphs).
 *        id is the anchor (default: the title's slug); ids are made unique.
 * @param {string} [o.footer] text (escaped), e.g. when and how it was measured
 * @returns {string}
 */
function page({ title = "Report", intro, introHtml, sections = [], footer } = {}) {
  const used = new Set();
  const secs = sections.map((s) => {
    const base = slug(s.id || s.title || "section");
    let id = base;
    for (let n = 2; used.has(id); ++n) id = `${base}-${n}`;
    used.add(id);
    return { id, title: String(s.title === undefined ? id : s.title), html: s.html || "" };
  });
  const toc = secs.length
    ? `<nav class="toc" aria-label="Contents"><h2>Contents</h2><ol>\n` +
      secs.map((s) => `<li><a href="#${s.id}">${escapeHtml(s.title)}</a></li>`).join("\n") +
      `\n</ol></nav>`
    : "";
  const body = secs
    .map((s) => `<section id="${s.id}">\n<h2>${escapeHtml(s.title)}</h2>\n${s.html}\n</section>`)
    .join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${intro ? paragraphs(intro, "intro") : ""}
${introHtml || ""}
${toc}
${body}
${footer ? `<footer>${paragraphs(footer)}</footer>` : ""}
</main>
</body>
</html>
`;
}

module.exports = { page };
