// The load-balancer report: one self-contained page (no network, no script)
// from the scenarios' results.
//
//   node lb/report.js lb-report/results.json lb-report/index.html
//
// Every figure and every conclusion on the page is computed here from the
// results of the run; nothing is written in advance but the questions.
"use strict";
const fs = require("fs");
const path = require("path");
const charts = require("./report/charts");
const { page } = require("./report/page");

const [input, output] = [process.argv[2] || "lb-report/results.json", process.argv[3] || "lb-report/index.html"];
const results = JSON.parse(fs.readFileSync(input, "utf8"));
const { escapeHtml: esc, table, formatPercent: pct } = charts;
const label = (name) => (results.balancers[name] ? results.balancers[name].label : name);
const kind = (name) => (results.balancers[name] ? results.balancers[name].kind : "");
const p = (text) => `<p>${esc(text)}</p>`;
const ms = (v) => (v === null || v === undefined ? "-" : `${Math.round(v)} ms`);
const ids = (runs) => [...new Set(runs.flatMap((r) => Object.keys(r.per_instance || r.after || {})))].sort();

// The per-instance connections a run's clients saw, as chart series (seconds).
function timelineSeries(run) {
  const t = run.timeline;
  return t.instances.map((id, k) => ({
    name: `instance ${id}`,
    points: t.counts.map((row, i) => [(i * t.interval_ms) / 1000, row[k] || 0]),
  })).sort((a, b) => a.name.localeCompare(b.name));
}

// A chart per balancer, folded away but the first.
function perBalancer(runs, draw) {
  return runs.map((r, i) => `<details${i === 0 ? " open" : ""}><summary>${esc(label(r.balancer))}` +
    `${r.broker ? ` (${esc(r.broker)})` : ""}</summary>${draw(r)}</details>`).join("\n");
}

const sections = [];

// ---- 1. Distribution ------------------------------------------------------------
const dist = results.scenarios.distribution;
if (dist) {
  const instancesSeen = ids(dist.runs);
  const bars = (nat) => {
    const runs = dist.runs.filter((r) => r.nat_share === nat);
    return charts.barChart({
      title: nat ? `Connections per instance, ${Math.round(nat * 100)} % of clients behind one address`
        : "Connections per instance, clients from many addresses",
      yLabel: "connections", categories: runs.map((r) => label(r.balancer)),
      series: instancesSeen.map((id) => ({ name: `instance ${id}`, values: runs.map((r) => r.per_instance[id] || 0) })),
    });
  };
  const spread = (r) => {
    const v = instancesSeen.map((id) => r.per_instance[id] || 0);
    return Math.max(...v) / (r.clients / instancesSeen.length);
  };
  const natRuns = dist.runs.filter((r) => r.nat_share > 0);
  const worst = natRuns.reduce((a, b) => (spread(b) > spread(a) ? b : a), natRuns[0]);
  const calm = natRuns.filter((r) => kind(r.balancer) === "stateless");
  const calmWorst = calm.length ? Math.max(...calm.map(spread)) : null;
  const conclusion = worst
    ? `With ${Math.round(worst.nat_share * 100)} % of the users behind one address, the busiest instance behind ` +
      `${label(worst.balancer)} held ${spread(worst).toFixed(2)} times its fair share` +
      (calmWorst !== null ? `; behind the stateless balancers at most ${calmWorst.toFixed(2)} times.` : ".") +
      " A balancer that hashes the client's address sends everyone behind one NAT to one instance: a hotspot that" +
      " more instances do not relieve."
    : "";
  sections.push({ id: "distribution", title: "Where connections land", html: [
    p(`${dist.runs[0] ? dist.runs[0].clients : ""} WebSocket clients connect through each balancer to 3 instances, ` +
      `from ${dist.runs[0] ? dist.runs[0].sources : ""} source addresses (each its own /24: nginx's ip_hash hashes` +
      " the first three octets); then again with 40 % of them behind the first address, as an office behind one NAT."),
    bars(0), bars(0.4),
    table({ columns: ["balancer", "kind", "behind one NAT", ...instancesSeen.map((id) => `on ${id}`), "busiest / fair share"],
      rows: dist.runs.map((r) => [label(r.balancer), kind(r.balancer), pct(r.nat_share, 0),
        ...instancesSeen.map((id) => r.per_instance[id] || 0), spread(r).toFixed(2)]) }),
    `<p class="conclusion">${esc(conclusion)}</p>`].join("\n") });
}

// ---- 2. Cross-instance delivery -----------------------------------------------
const cross = results.scenarios.cross;
if (cross) {
  const chart = (broker) => {
    const runs = cross.runs.filter((r) => r.broker === broker);
    return charts.barChart({
      title: `Delivered fraction, ${broker === "memory" ? "no backplane (--broker memory)" : `backplane (--broker ${broker})`}`,
      yLabel: "delivered", categories: runs.map((r) => label(r.balancer)), yMax: 1, valueFormat: (v) => pct(v, 0),
      series: [{ name: "broadcasts", values: runs.map((r) => r.broadcast.fraction) },
        { name: "room messages", values: runs.map((r) => r.room.fraction) }],
    });
  };
  const alone = cross.runs.filter((r) => r.broker === "memory");
  const backed = cross.runs.filter((r) => r.broker !== "memory");
  const rooms = alone.filter((r) => r.room.fraction > 0.999).map((r) => label(r.balancer));
  const maxBroadcast = alone.length ? Math.max(...alone.map((r) => r.broadcast.fraction)) : null;
  const minBacked = backed.length ? Math.min(...backed.flatMap((r) => [r.broadcast.fraction, r.room.fraction])) : null;
  sections.push({ id: "cross", title: "Delivery across instances, with and without a backplane", html: [
    p("Every client joins one of the rooms (and says it in its URL, for the balancers that hash it); each room has " +
      "a sender among its members, who sends half of its messages to everyone and half to its room. Without a " +
      "backplane each instance is alone: a message reaches only the clients of the sender's instance."),
    chart("memory"), chart(backed[0] ? backed[0].broker : "redis-pubsub"),
    table({ columns: ["balancer", "broker", "broadcasts delivered", "room messages delivered"],
      rows: cross.runs.map((r) => [label(r.balancer), r.broker, pct(r.broadcast.fraction), pct(r.room.fraction)]) }),
    `<p class="conclusion">${esc(
      `Without a backplane no balancer delivered more than ${pct(maxBroadcast)} of the broadcasts. ` +
      (rooms.length ? `Room messages reached every member only behind ${rooms.join(" and ")}, which put each room's ` +
        "members on one instance: sticky balancing needs no backplane as long as nothing crosses instances. "
        : "No balancer put a room's members on one instance. ") +
      (minBacked !== null ? `With the backplane every balancer delivered ${pct(minBacked)} or more of both.` : ""))}</p>`,
  ].join("\n") });
}

// ---- 3. Crash ---------------------------------------------------------------------
function disruptionTable(runs, extra = []) {
  return table({ columns: ["balancer", "broker", "clients dropped", "late", "back p50", "back p99", "back max",
    "never back", "lost (stayed connected)", "lost (dropped)", "recovered:false", ...extra.map((e) => e[0])],
  rows: runs.map((r) => [label(r.balancer), r.broker || "redis-pubsub", r.dropped, r.late || 0, ms(r.back_p50_ms),
    ms(r.back_p99_ms), ms(r.back_max_ms), r.never_back, r.lost_undisturbed, r.lost_dropped, r.unrecovered,
    ...extra.map((e) => e[1](r))]) });
}
const crash = results.scenarios.crash;
if (crash) {
  const streams = crash.runs.filter((r) => r.broker === "redis-streams");
  const pubsub = crash.runs.filter((r) => r.broker === "redis-pubsub");
  const worstBack = crash.runs.reduce((a, b) => ((b.back_max_ms || 0) > (a.back_max_ms || 0) ? b : a), crash.runs[0]);
  const lostStayed = crash.runs.reduce((n, r) => n + r.lost_undisturbed, 0);
  const lostStreams = streams.reduce((n, r) => n + r.lost_dropped, 0);
  const lostPubsub = pubsub.reduce((n, r) => n + r.lost_dropped, 0);
  sections.push({ id: "crash", title: "An instance crashes", html: [
    p("Three instances under load; 3 s in, one that hosts no sender is killed (SIGKILL). Its clients see their " +
      "connection cut and reconnect through the balancer with jittered exponential backoff (a random wait in " +
      "[0, 250 ms], doubling); with the streams broker they resume from the last ids they received."),
    perBalancer(crash.runs, (r) => charts.lineChart({ title: `Connections per instance through a crash, ${label(r.balancer)}` +
      ` (${r.broker})`, xLabel: "time since sending began (s)", yLabel: "connections", series: timelineSeries(r),
    markers: r.disruption_window ? [{ x: r.disruption_window.first_close_ms / 1000, label: `${r.killed} killed` }] : [] })),
    charts.distributionChart({ title: "Time until each dropped client was back, all balancers", xLabel: "ms",
      values: crash.runs.flatMap((r) => r.back_ms) }),
    disruptionTable(crash.runs, [["landed on", (r) => Object.entries(r.landed).map(([k, v]) => `${k}: ${v}`).join(", ")]]),
    `<p class="conclusion">${esc(
      `The clients that stayed connected lost ${lostStayed} messages in all. ` +
      (streams.length ? `Of the dropped ones, with streams and their last ids, ${lostStreams} messages were missing. ` : "") +
      (pubsub.length ? `With Pub/Sub, which keeps nothing, the dropped clients missed ${lostPubsub}: what was sent ` +
        "while they were away. " : "") +
      (worstBack ? `The slowest client was back ${ms(worstBack.back_max_ms)} after its connection was cut ` +
        `(${label(worstBack.balancer)}).` : ""))}</p>`,
  ].join("\n") });
}

// ---- 4. Rolling update ------------------------------------------------------------
const rolling = results.scenarios.rolling;
if (rolling) {
  const instancesSeen = ids(rolling.runs);
  const emptiest = (r) => Math.min(...instancesSeen.map((id) => r.after[id] || 0));
  const stateless = rolling.runs.filter((r) => kind(r.balancer) === "stateless");
  const lost = rolling.runs.reduce((n, r) => n + r.lost_dropped + r.lost_undisturbed, 0);
  sections.push({ id: "rolling", title: "A rolling update", html: [
    p("Each instance in turn is drained (SIGTERM: its clients are closed with 1001 and reconnect), restarted on its " +
      "port, and back in service before the next; the streams broker lets every client resume."),
    perBalancer(rolling.runs, (r) => charts.lineChart({ title: `Connections per instance through a rolling update, ` +
      label(r.balancer), xLabel: "time since sending began (s)", yLabel: "connections", series: timelineSeries(r),
    markers: r.events.map((e) => ({ x: e.t_ms / 1000, label: e.label })) })),
    charts.barChart({ title: "Connections per instance after the rolling update", yLabel: "connections",
      categories: rolling.runs.map((r) => label(r.balancer)),
      series: instancesSeen.map((id) => ({ name: `instance ${id}`, values: rolling.runs.map((r) => r.after[id] || 0) })) }),
    disruptionTable(rolling.runs, [["disconnections", (r) => r.disconnections],
      ...instancesSeen.map((id) => [`after: ${id}`, (r) => r.after[id] || 0])]),
    `<p class="conclusion">${esc(
      `Across the balancers ${lost} messages were lost. After the update the emptiest instance held ` +
      rolling.runs.map((r) => `${emptiest(r)} (${label(r.balancer)})`).join(", ") + ". " +
      (stateless.length ? "A client reconnects only when its instance goes away, so the instance restarted last gets " +
        "only what newcomers and the drained instances' clients bring it: balance comes back only as clients come " +
        "and go, or by closing some of the busiest instances' connections on purpose." : ""))}</p>`,
  ].join("\n") });
}

// ---- 5. Scale out --------------------------------------------------------------------
const scale = results.scenarios.scale;
if (scale) {
  const remap = (r) => r.remapped_fraction;
  sections.push({ id: "scale", title: "Scaling out from 2 to 3 instances", html: [
    p("Clients connected to 2 instances; a third is put in service (nginx reloads its configuration, HAProxy enables " +
      "the server). Then new users connect, and then the first users connect again from the same addresses: " +
      "where do they land now?"),
    perBalancer(scale.runs, (r) => charts.lineChart({ title: `Connections per instance through a scale-out, ${label(r.balancer)}`,
      xLabel: "time (s)", yLabel: "connections",
      series: ["a", "b", "c"].map((id) => ({ name: `instance ${id}`, points: r.timeline.map((row) => [row.t_ms / 1000, row[id]]) })),
      markers: r.events.map((e) => ({ x: e.t_ms / 1000, label: e.label })) })),
    charts.barChart({ title: "Users who would land on another instance after the scale-out", yLabel: "users",
      categories: scale.runs.map((r) => label(r.balancer)), yMax: 1, valueFormat: (v) => pct(v, 0),
      series: [{ name: "remapped", values: scale.runs.map(remap) }] }),
    table({ columns: ["balancer", "kind", "existing clients moved", "users remapped", "new clients on a", "on b", "on c"],
      rows: scale.runs.map((r) => [label(r.balancer), kind(r.balancer), r.existing_moved, pct(remap(r)),
        r.new_per_instance.a || 0, r.new_per_instance.b || 0, r.new_per_instance.c || 0]) }),
    `<p class="conclusion">${esc(
      `No balancer moved a connected client (${scale.runs.reduce((n, r) => n + r.existing_moved, 0)} moved in all): ` +
      "a WebSocket stays where it is until it closes. Of the users who connected again, " +
      scale.runs.map((r) => `${pct(remap(r), 0)} landed elsewhere behind ${label(r.balancer)}`).join("; ") +
      ". A consistent hash moves about the share the new instance takes (a third); a hash taken modulo the " +
      "number of instances moves most users, and with them whatever state sticky balancing kept for them.")}</p>`,
  ].join("\n") });
}

// ---- 6. Reconnect storm ----------------------------------------------------------------
const storm = results.scenarios.storm;
if (storm) {
  const killed = storm.runs.filter((r) => r.kill);
  const calm = (name) => storm.runs.find((r) => !r.kill && r.balancer === name);
  const p99 = (r) => (r ? r.latency.undisturbed_in_window.p99_ms : null);
  const ratio = (r) => (p99(calm(r.balancer)) ? p99(r) / p99(calm(r.balancer)) : null);
  const goals = killed.map((r) => ({ r, back: r.back_max_ms !== null && r.back_max_ms <= 3000 && r.never_back === 0,
    lost: r.lost_undisturbed === 0, calm: ratio(r) !== null && ratio(r) <= 1.5 }));
  sections.push({ id: "storm", title: "A reconnect storm", html: [
    p(`${killed[0] ? killed[0].clients : ""} clients on 3 instances; one instance is killed and its third of the ` +
      "clients comes back at once, through the balancer, onto the other two. The same run without the kill gives " +
      "the latency of the clients that were never disconnected, over the same stretch of time."),
    perBalancer(killed, (r) => charts.distributionChart({ title: `Time until each dropped client was back, ${label(r.balancer)}`,
      xLabel: "ms", values: r.back_ms })),
    charts.barChart({ title: "p99 delivery latency of the never-disconnected clients during the storm", yLabel: "ms",
      categories: killed.map((r) => label(r.balancer)),
      series: [{ name: "with the kill", values: killed.map(p99) }, { name: "without (same window)", values: killed.map((r) => p99(calm(r.balancer))) }] }),
    table({ columns: ["balancer", "dropped", "all back after", "never back", "lost (stayed connected)",
      "p99 with / without the kill", "ratio", "survivors' CPU (cores)", "goals met"],
    rows: goals.map(({ r, back, lost, calm: c }) => [label(r.balancer), r.dropped, ms(r.back_max_ms), r.never_back,
      r.lost_undisturbed, `${p99(r)} / ${p99(calm(r.balancer))} ms`, ratio(r) === null ? "-" : ratio(r).toFixed(2),
      r.survivors_cpu ? r.survivors_cpu.map((x) => x.toFixed(2)).join(", ") : "-",
      [back ? "back ≤ 3 s" : "back > 3 s", lost ? "no loss" : "loss", c ? "p99 ≤ 1.5×" : "p99 > 1.5×"].join(", ")]) }),
    `<p class="conclusion">${esc(goals.map(({ r, back, lost, calm: c }) =>
      `${label(r.balancer)}: ${r.dropped} clients back within ${ms(r.back_max_ms)} (${back ? "within" : "not within"} ` +
      `3 s), ${r.lost_undisturbed} messages lost by the others, their p99 ${ratio(r) === null ? "-" : ratio(r).toFixed(2)}` +
      ` times that of the calm run (${c ? "within" : "above"} 1.5).`).join(" "))}</p>`,
  ].join("\n") });
}

// ---- The configurations ---------------------------------------------------------------
sections.push({ id: "configs", title: "The configurations used", html: Object.entries(results.balancers).map(([name, b]) =>
  `<details><summary>${esc(b.label)} (${esc(b.kind)})</summary>` +
  Object.entries(b.config).map(([file, text]) => `<h3>${esc(file)}</h3><pre>${esc(text)}</pre>`).join("") +
  "</details>").join("\n") });

const m = results.machine;
fs.mkdirSync(path.dirname(output), { recursive: true });
fs.writeFileSync(output, page({
  title: "Sticky or stateless: load balancing WebSocket instances, measured",
  intro: "The seed design's table says: sticky sessions are simple and need no backplane unless messages cross " +
    "instances, but an instance's death takes all its pinned users with it and failover is complex; stateless " +
    "balancing spreads load better and makes rolling updates easy, but needs a backplane. Each claim is measured " +
    "below with real processes on loopback: redis-server, backplane-instance processes, nginx and HAProxy, and " +
    "real WebSocket clients from many source addresses (backplane-loadgen). " +
    (results.quick ? "This is the short run (QUICK=1): few clients, two balancers." : ""),
  sections,
  footer: `Measured ${m.date} on ${m.cores} cores, Linux ${m.kernel}; ${m.nginx}; ${m.haproxy}; ${m.redis}. ` +
    "Everything shares the machine, the load generator included. Produced by bash lb/run.sh; the raw results are " +
    "in results.json beside this page.",
}));
console.log(`report: ${output}`);
