// The benchmark report: one self-contained page (no network, no script) and
// results.json from benchmarks/run.sh's raw results, with the tables also
// printed. Charts and page are lb/report's.
//
//   node benchmarks/report.js RAW_DIR OUT_DIR
//
// Every figure is computed here from the raw files of the run: the median of
// the repetitions, with their minimum and maximum beside it.
"use strict";
const fs = require("fs");
const path = require("path");
const charts = require("../lb/report/charts");
const { page } = require("../lb/report/page");

const [rawDir, outDir] = [process.argv[2] || "benchmarks/report/raw", process.argv[3] || "benchmarks/report"];
// Google Benchmark writes NaN and inf where an aggregate has none (the
// spread of a constant counter): not JSON.
const read = (f) => JSON.parse(fs.readFileSync(path.join(rawDir, f), "utf8").replace(/-?\b(NaN|inf)\b/g, "null"));
const files = fs.readdirSync(rawDir);
const machine = read("machine.json");
const { escapeHtml: esc, table, formatNumber: num } = charts;
const p = (text) => `<p>${esc(text)}</p>`;
const code = (text) => `<pre><code>${esc(text)}</code></pre>`;

function spread(values) {
  const v = values.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  return { median: v[Math.floor(v.length / 2)], min: v[0], max: v[v.length - 1], n: v.length };
}
const fixed = (v, d = 1) => (v === null || v === undefined ? "-" : v.toFixed(d));
const range = (s, d = 1) =>
  (s ? (d === 0 ? `${num(Math.round(s.min))} to ${num(Math.round(s.max))}` : `${fixed(s.min, d)} to ${fixed(s.max, d)}`) : "-");
const conclusion = (text) => `<p class="conclusion"><strong>${esc(text)}</strong></p>`;

const command = `${machine.quick ? "QUICK=1 " : ""}bash benchmarks/run.sh`;
const where = `${machine.cores} cores (${machine.cpu}), ${machine.memory_gib} GiB, Linux ${machine.kernel}; ` +
  `commit ${machine.commit}${machine.dirty ? " with local changes" : ""}, ${machine.build || "?"} build; ${machine.date}`;

// ---- core --------------------------------------------------------------------
// Google Benchmark's repetitions: the iteration rows of each benchmark.
function benchRows(file) {
  if (!files.includes(file)) return {};
  const byName = {};
  for (const b of read(file).benchmarks || []) {
    if (b.run_type !== "iteration") continue;
    (byName[b.run_name || b.name] = byName[b.run_name || b.name] || []).push(b);
  }
  return byName;
}
const fanout = benchRows("core_fanout.json");
const redisCore = benchRows("core_redis.json");
const fanoutNames = Object.keys(fanout).filter((n) => n.startsWith("fanout/"));
const fanoutRows = fanoutNames.map((n) => {
  const runs = fanout[n];
  const targets = Number(n.split("/")[1]);
  return {
    targets,
    deliveries: spread(runs.map((r) => r["deliveries/s"])),
    perDelivery: spread(runs.map((r) => (r.real_time * (r.time_unit === "us" ? 1000 : r.time_unit === "ms" ? 1e6 : 1)) / targets)),
    allocMessage: spread(runs.map((r) => r["allocs/message"])),
    allocDelivery: spread(runs.map((r) => r["allocs/delivery"])),
  };
});
const joinRows = Object.keys(fanout).filter((n) => n.startsWith("join_leave/")).map((n) => ({
  rooms: Number(n.split("/")[1]),
  ns: spread(fanout[n].map((r) => r.real_time)),
}));
const redisRows = Object.keys(redisCore).map((n) => ({ name: n, rate: spread(redisCore[n].map((r) => r["publishes/s"])) }));
// "latency/BROKER/N/real_time", "throughput/BROKER/N/real_time" (100 messages an iteration).
const roundtrip = benchRows("core_roundtrip.json");
const usOf = (r) => r.real_time * (r.time_unit === "ns" ? 1e-3 : r.time_unit === "ms" ? 1000 : 1);
const roundtripRows = Object.keys(roundtrip).filter((n) => n.startsWith("latency/")).map((n) => {
  const [, broker, targets] = n.split("/");
  const rt = roundtrip[n], tp = roundtrip[n.replace(/^latency/, "throughput")] || [];
  return {
    broker, targets: Number(targets), latencyUs: spread(rt.map(usOf)), deliveries: spread(tp.map((r) => r["deliveries/s"])),
    allocMessage: spread(rt.map((r) => r["allocs/message"])), allocDelivery: spread(rt.map((r) => r["allocs/delivery"])),
  };
});

// ---- channel design ------------------------------------------------------------
// "rooms/ROUTING/real_time", "direct/ROUTING/USERS/real_time".
const channelRuns = benchRows("core_channels.json");
const channelRow = (n) => {
  const runs = channelRuns[n], [kind, routing, users] = n.split("/");
  const s = (k) => spread(runs.map((r) => r[k]));
  return {
    kind, routing, users: kind === "direct" ? Number(users) : 10000, rate: s("msgs/s"), received: s("received/msg"),
    deliveries: s("deliveries/msg"), redisCpu: s("redis_cpu_us/msg"), channels: s("channels"),
    latency: kind === "direct" ? s("latency_us") : null,
  };
};
const roomRows = Object.keys(channelRuns).filter((n) => n.startsWith("rooms/")).map(channelRow);
const directRows = Object.keys(channelRuns).filter((n) => n.startsWith("direct/")).map(channelRow);
const routingShort = {
  global_channel: "global", per_room_channel: "per room", per_user_channel: "per user",
  shared_channel: "shared (A)", instance_channel: "lookup (B)",
};
const routingLabels = {
  global_channel: "one global channel", per_room_channel: "a channel per room",
  per_user_channel: "a channel per user", shared_channel: "one shared channel (Option A)",
  instance_channel: "host lookup, instance channel (Option B)",
};

// ---- past one Redis ------------------------------------------------------------
// "KIND/SETUP/hubs:N/real_time" in core_cluster.json (a replica per master)
// and core_cluster_masters.json (the masters alone).
const clusterRows = [["core_cluster.json", 1], ["core_cluster_masters.json", 0]].flatMap(([file, replicas]) => {
  const runs = benchRows(file);
  return Object.keys(runs).map((n) => {
    const [kind, setup, hubs] = n.split("/");
    const s = (k) => spread(runs[n].map((r) => r[k]));
    return {
      kind, setup, replicas, hubs: Number(hubs.split(":")[1]), busiest: s("busiest_cpu_us/msg"), total: s("redis_cpu_us/msg"),
      capacity: s("capacity/s"), received: s("received/msg"), masters: s("masters"), rate: s("msgs/s"),
    };
  });
});
const clusterRow = (kind, setup, replicas, hubs) =>
  clusterRows.find((r) => r.kind === kind && r.setup === setup && r.replicas === replicas && r.hubs === hubs);
// The busiest master's limit on the cluster over the one Redis's, in the same
// run: "cluster" against "one_redis", "cluster_streams" against "one_redis_streams".
const oneRedisOf = (setup) => (setup.endsWith("_streams") ? "one_redis_streams" : "one_redis");
const clusterRatio = (kind, setup, replicas, hubs) => {
  const [them, one] = [clusterRow(kind, setup, replicas, hubs), clusterRow(kind, oneRedisOf(setup), replicas, hubs)];
  return them && one ? them.capacity.median / one.capacity.median : null;
};
const clusterHubs = [...new Set(clusterRows.map((r) => r.hubs))].sort((a, b) => a - b);
const setupLabels = {
  one_redis: "one Redis (redis_pubsub)", cluster: "3-master cluster (redis_sharded)",
  cluster_spread: "3-master cluster, 16 global channels",
  one_redis_streams: "one Redis, with history (redis_streams)",
  cluster_streams: "3-master cluster, with history (redis_sharded_streams)",
};

// ---- end to end ----------------------------------------------------------------
const e2e = {};
for (const f of files) {
  const m = /^e2e_(.+)_(\d+)_(\d+)\.json$/.exec(f);
  if (!m) continue;
  const [, name, rate] = m;
  ((e2e[name] = e2e[name] || {})[rate] = e2e[name][rate] || []).push(read(f));
}
const known = ["redis-pubsub", "redis-pubsub-unbatched", "redis-streams", "socketio", "baseline"];
const order = known.filter((n) => e2e[n]).concat(Object.keys(e2e).filter((n) => !known.includes(n)));
const labels = {
  "baseline": "bare broadcaster (no backplane)",
  "redis-pubsub-unbatched": "two instances, redis-pubsub, --batch-writes off",
  "socketio": "Socket.IO 4 + @socket.io/redis-adapter, two Node instances",
};
const label = (n) => labels[n] || `two instances, ${n}`;
// For a chart's axis, where long names do not fit.
const shortLabels = {
  "redis-pubsub": "Redis Pub/Sub", "redis-pubsub-unbatched": "Pub/Sub, unbatched", "redis-streams": "Redis Streams",
  "socketio": "Socket.IO", "baseline": "bare broadcaster",
};
const ladder = {};
for (const name of order) {
  ladder[name] = Object.keys(e2e[name]).map(Number).sort((a, b) => a - b).map((rate) => {
    const runs = e2e[name][rate];
    const lost = runs.reduce((s, r) => s + r.missing, 0);
    const p99 = spread(runs.map((r) => r.latency.all.p99_ms));
    return {
      rate, deliveries: rate * runs[0].clients, measured: spread(runs.map((r) => r.deliveries_per_s)), runs: runs.length, lost,
      p50: spread(runs.map((r) => r.latency.all.p50_ms)), p99,
      holds: lost === 0 && p99 && p99.median < 50,
    };
  });
}
// The measured deliveries/s (median) of the highest rate held.
const best = (name) => ladder[name].filter((r) => r.holds).reduce((a, r) => Math.max(a, Math.round(r.measured.median)), 0);

// ---- memory --------------------------------------------------------------------
const memory = files.filter((f) => /^memory_.+\.json$/.test(f)).map((f) => {
  const m = read(f);
  return { ...m, bytes: ((m.rss_after_kib - m.rss_before_kib) * 1024) / m.connections };
});
// An instance's heap at its peak, by part (benchmarks/memory_parts.js).
const heapParts = files.includes("heap_parts.json") ? read("heap_parts.json") : null;
const memoryLabels = { instance: "an instance", socketio: "a Socket.IO instance", baseline: "the bare broadcaster" };
const memoryOf = (name) => memory.find((m) => m.name === name);

// ---- the goals, against this run ------------------------------------
const instanceMemory = memoryOf("instance");
// The peer: how many times its highest rate held the Redis Pub/Sub broker holds.
const peer = ladder.socketio && ladder["redis-pubsub"] ? {
  ours: best("redis-pubsub"), theirs: best("socketio"),
  ratio: best("socketio") > 0 ? best("redis-pubsub") / best("socketio") : null,
} : null;
const goals = [
  ...["redis-pubsub", "redis-streams"].filter((n) => ladder[n]).map((n) => ({
    goal: `two instances on ${n}: at least 2,500,000 deliveries/s at p99 < 50 ms with no loss`,
    result: `${num(best(n))} deliveries/s held` +
      (ladder[n].every((r) => r.holds) ? " (the highest rate tried)" : ""),
    met: best(n) >= 2500000,
  })),
  ...(peer ? [{
    goal: "at least 10 times the deliveries/s Socket.IO with its Redis adapter holds (the same clients and load, a Redis of its own as each pair has, the same run)",
    result: peer.ratio === null ? "not measurable: Socket.IO held none of the rates tried"
      : `${fixed(peer.ratio, 1)} times (${num(peer.ours)} deliveries/s against ${num(peer.theirs)})`,
    met: peer.ratio !== null && peer.ratio >= 10,
  }] : []),
  ...(instanceMemory ? [{
    goal: "at most 4 KiB RSS per idle connection (an instance)",
    result: `${num(Math.round(instanceMemory.bytes))} bytes at ${num(instanceMemory.connections)} connections`,
    met: instanceMemory.bytes <= 4096,
  }] : []),
];

// ---- results.json and the tables ----------------------------------------------
const results = {
  machine, goals, core: { fanout: fanoutRows, join_leave: joinRows, redis: redisRows, roundtrip: roundtripRows },
  channels: { rooms: roomRows, direct: directRows },
  cluster: clusterRows,
  end_to_end: ladder, held: Object.fromEntries(order.map((n) => [n, best(n)])), peer, memory, heap_parts: heapParts,
};
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, "results.json"), JSON.stringify(results, null, 1));

const print = (title, head, rows) => {
  console.log(`\n${title}`);
  const all = [head, ...rows].map((r) => r.map(String));
  const w = head.map((_, k) => Math.max(...all.map((r) => r[k].length)));
  for (const r of all) console.log("  " + r.map((c, k) => (k ? c.padStart(w[k]) : c.padEnd(w[k]))).join("  "));
};
print("core: one broadcast to N local connections (memory bus), median of " + (fanoutRows[0] ? fanoutRows[0].deliveries.n : 0),
  ["connections", "deliveries/s", "ns/delivery", "allocs/message"],
  fanoutRows.map((r) => [r.targets, num(Math.round(r.deliveries.median)), fixed(r.perDelivery.median, 1), fixed(r.allocMessage.median, 2)]));
print("past one Redis: the busiest master's limit (median)", ["messages", "setup", "replicas", "hubs", "busiest us/msg", "limit msgs/s"],
  clusterRows.map((r) => [r.kind, r.setup, r.replicas, r.hubs, fixed(r.busiest.median, 2), num(Math.round(r.capacity.median))]));
print("core: a hub publishing through a real local Redis", ["benchmark", "publishes/s (median)", "min to max"],
  redisRows.map((r) => [r.name, num(Math.round(r.rate.median)), range(r.rate, 0)]));
print("core: a broadcast's round trip through each broker, one hub (median)", ["broker", "connections", "latency us", "deliveries/s (100 at once)", "allocs/message"],
  roundtripRows.map((r) => [r.broker, r.targets, fixed(r.latencyUs.median, 1), num(Math.round(r.deliveries.median)),
    r.allocMessage ? fixed(r.allocMessage.median, 1) : "-"]));
print("channel design: five hubs on one Redis (median)", ["benchmark", "users", "msgs/s", "received/msg", "Redis CPU us/msg", "channels", "latency us"],
  [...roomRows, ...directRows].map((r) => [`${r.kind}: ${routingLabels[r.routing] || r.routing}`, r.users, num(Math.round(r.rate.median)),
    fixed(r.received.median, 2), fixed(r.redisCpu.median, 2), num(Math.round(r.channels.median)), r.latency ? fixed(r.latency.median, 0) : "-"]));
for (const name of order)
  print(`end to end: ${label(name)}, p99 in ms (median of ${ladder[name][0].runs})`,
    ["msg/s", "deliveries/s", "p50", "p99", "p99 min to max", "lost"],
    ladder[name].map((r) => [r.rate, num(Math.round(r.measured.median)), fixed(r.p50.median), fixed(r.p99.median), range(r.p99), r.lost]));
print("goals", ["goal", "this run", "met"], goals.map((g) => [g.goal, g.result, g.met ? "yes" : "no"]));
print("memory per idle connection", ["process", "connections", "bytes each"],
  memory.map((m) => [m.name, m.connections, Math.round(m.bytes)]));
if (heapParts)
  print(`an instance's heap per idle connection, by part (heaptrack, ${heapParts.connections} connections)`, ["part", "bytes"],
    heapParts.parts.map((q) => [q.name, Math.round(q.per_connection)]).concat([["all", Math.round(heapParts.heap_per_connection)]]));

// ---- the page --------------------------------------------------------------------
const sections = [];
sections.push({
  id: "core", title: "Core: the fan-out of one hub",
  html: conclusion(fanoutRows.map((r) => `${num(r.targets)} connections: ${fixed(r.perDelivery.median, 1)} ns per delivery`).join("; ") +
    `. Allocations per message: ${fanoutRows.map((r) => fixed(r.allocMessage.median, 2)).join(", ")} (per delivery: ` +
    `${fanoutRows.map((r) => r.allocDelivery.median.toPrecision(2)).join(", ")}). Through a real local Redis: ` +
    redisRows.map((r) => `${r.name.split("/")[0]} ${num(Math.round(r.rate.median))} publishes/s`).join(", ") + ". " +
    "A broadcast alone, from the send to its delivery to the last of 100 local connections: " +
    roundtripRows.filter((r) => r.targets === 100).map((r) => `${r.broker} ${fixed(r.latencyUs.median, 1)} us`).join(", ") + ".") +
    p("One broadcast's whole path through basic_hub on the in-memory bus: encode, publish, decode, build the frame once, hand it to every local connection of the memory transport (which only counts). The median of the repetitions, with the range.") +
    charts.barChart({
      title: "Deliveries per second, one hub", slug: "core-deliveries", yLabel: "deliveries/s",
      categories: fanoutRows.map((r) => `${num(r.targets)} connections`),
      series: [{ name: "median", values: fanoutRows.map((r) => Math.round(r.deliveries.median)) }],
    }) +
    table({
      caption: "A broadcast to N local connections",
      columns: ["connections", "deliveries/s (median)", "min to max", "ns per delivery", "allocations per message", "allocations per delivery"],
      rows: fanoutRows.map((r) => [r.targets, Math.round(r.deliveries.median), range(r.deliveries, 0), fixed(r.perDelivery.median, 1),
        fixed(r.allocMessage.median, 2), r.allocDelivery.median.toPrecision(2)]),
    }) +
    table({
      caption: "One join and one leave by a connection already in N rooms",
      columns: ["rooms held", "ns (median)", "min to max"],
      rows: joinRows.map((r) => [r.rooms, fixed(r.ns.median, 0), range(r.ns, 0)]),
    }) +
    charts.barChart({
      title: "A broadcast's round trip: latency of one message alone (us)", slug: "core-roundtrip", yLabel: "microseconds",
      categories: [...new Set(roundtripRows.map((r) => r.broker))],
      series: [...new Set(roundtripRows.map((r) => r.targets))].map((t) => ({
        name: `${num(t)} connections`,
        values: [...new Set(roundtripRows.map((r) => r.broker))].map((b) => {
          const row = roundtripRows.find((r) => r.broker === b && r.targets === t);
          return row ? Number(row.latencyUs.median.toFixed(2)) : null;
        }),
      })),
    }) +
    table({
      caption: "A broadcast's round trip through each broker, one hub, the memory transport: one message alone (latency), " +
        "100 at once (throughput); allocations counted over the whole process (the hub, Asio, hiredis), per message of the latency runs",
      columns: ["broker", "connections", "latency us (median)", "min to max", "deliveries/s, 100 at once", "allocations per message", "per delivery"],
      rows: roundtripRows.map((r) => [r.broker, r.targets, fixed(r.latencyUs.median, 1), range(r.latencyUs, 1),
        r.deliveries ? Math.round(r.deliveries.median) : "-", r.allocMessage ? fixed(r.allocMessage.median, 1) : "-",
        r.allocDelivery ? r.allocDelivery.median.toPrecision(2) : "-"]),
    }) +
    table({
      caption: "A hub (and the broker alone) publishing 64-byte messages through a real local Redis, pipelined",
      columns: ["benchmark", "publishes/s (median)", "min to max"],
      rows: redisRows.map((r) => [r.name, Math.round(r.rate.median), range(r.rate, 0)]),
    }),
});
if (roomRows.length && directRows.length) {
  const room = (routing) => roomRows.find((r) => r.routing === routing);
  const [global, perRoom] = [room("global_channel"), room("per_room_channel")];
  const sizes = [...new Set(directRows.map((r) => r.users))];
  const axis = (r) => (r.kind === "rooms" ? `rooms ${routingShort[r.routing]}` : `DM ${routingShort[r.routing]} ${r.users / 1000}k`);
  sections.push({
    id: "channels", title: "Channel design: rooms and direct messages on one Redis",
    html: conclusion(`1,000 rooms of 10 users on 5 instances, one message per room: on one global channel every instance ` +
      `receives every room message (${fixed(global.received.median / 5, 2)} of each per instance); with a channel per room ` +
      `${fixed(perRoom.received.median / 5, 2)}, since with 10 members placed at random most rooms have one on most instances. ` +
      `Redis CPU per room message: ${fixed(global.redisCpu.median, 2)} us against ${fixed(perRoom.redisCpu.median, 2)} us. ` +
      `Direct messages with ${num(Math.max(...sizes))} users, Redis CPU and latency alone per DM: ` +
      directRows.filter((r) => r.users === Math.max(...sizes)).map((r) =>
        `${routingLabels[r.routing]} ${fixed(r.redisCpu.median, 2)} us and ${fixed(r.latency.median, 0)} us`).join("; ") + ".") +
      p("Five hubs in one process (memory transport, one redis_pubsub broker each) on a real local Redis: what each routing " +
        "costs the instances (messages received from Redis per message sent, over all five) and Redis (CPU from INFO cpu, " +
        "channels held; every user also has its user channel, hence 10,000 channels in the room runs). A direct message's " +
        "latency alone is from the send to its delivery, the median of 200 sent one after another; Option B's includes " +
        "the lookup of the host. The median of the repetitions.") +
      charts.barChart({
        title: "Messages the five instances receive from Redis per message sent", slug: "channels-received", yLabel: "received per message",
        categories: [...roomRows, ...directRows].map(axis),
        series: [{ name: "median", values: [...roomRows, ...directRows].map((r) => r.received.median) }],
      }) +
      charts.barChart({
        title: "Redis CPU per message (microseconds)", slug: "channels-redis-cpu", yLabel: "us per message",
        categories: [...roomRows, ...directRows].map(axis),
        series: [{ name: "median", values: [...roomRows, ...directRows].map((r) => Number(r.redisCpu.median.toFixed(3))) }],
      }) +
      table({
        caption: "Rooms (quiz 3): 1,000 rooms of 10 users on 5 instances",
        columns: ["routing", "room messages/s (median)", "received per message, 5 instances", "deliveries per message", "Redis CPU us per message", "min to max", "channels"],
        rows: roomRows.map((r) => [routingLabels[r.routing], Math.round(r.rate.median), fixed(r.received.median, 2), fixed(r.deliveries.median, 1),
          fixed(r.redisCpu.median, 2), range(r.redisCpu, 2), Math.round(r.channels.median)]),
      }) +
      table({
        caption: "Direct messages between random users on 5 instances",
        columns: ["routing", "users", "DMs/s in batches (median)", "received per DM", "Redis CPU us per DM", "min to max", "channels", "latency alone, us", "min to max"],
        rows: directRows.map((r) => [routingLabels[r.routing], r.users, Math.round(r.rate.median), fixed(r.received.median, 2),
          fixed(r.redisCpu.median, 2), range(r.redisCpu, 2), Math.round(r.channels.median), fixed(r.latency.median, 0), range(r.latency, 0)]),
      }),
  });
}
if (clusterRows.length) {
  const ratios = (kind, setup, replicas) =>
    clusterHubs.map((h) => `${fixed(clusterRatio(kind, setup, replicas, h), 2)} at ${h} hubs`).join(", ");
  const capacityChart = (kind, title, slug, series) => charts.barChart({
    title, slug, yLabel: "messages/s", categories: clusterHubs.map((h) => `${h} hubs`),
    series: series.map(([name, setup, replicas]) => ({
      name, values: clusterHubs.map((h) => { const r = clusterRow(kind, setup, replicas, h); return r ? Math.round(r.capacity.median) : null; }),
    })),
  });
  sections.push({
    id: "cluster", title: "Past one Redis: a Redis Cluster against one Redis",
    html: conclusion(`Room messages a 3-master cluster carries before its busiest master fills a core, over one Redis: ` +
      `with a replica per master ${ratios("rooms", "cluster", 1)}; the masters alone ${ratios("rooms", "cluster", 0)}. ` +
      `With history (a stream per room): with a replica per master ${ratios("rooms", "cluster_streams", 1)}; the masters ` +
      `alone ${ratios("rooms", "cluster_streams", 0)}. ` +
      `Broadcasts on one global channel stay on one master (${ratios("global", "cluster", 1)}); spread over 16 global ` +
      `channels ${ratios("global", "cluster_spread", 1)}.`) +
      p("N hubs in one process (memory transport, one broker each) on one redis-server (redis_pubsub) or on a local Redis " +
        "Cluster of 3 masters (redis_sharded). Rooms: 1,000 rooms of 10 users placed on the hubs at random, one message per " +
        "room, three per room on the cluster so that each master reads as many at a time as the one Redis. Broadcasts: " +
        "1,000 an iteration from random hubs, 3,000 on the cluster. With history: the same rooms on redis_streams (one Redis) " +
        "and redis_sharded_streams (the cluster), each message appended to its room's stream by the script that publishes it. Redis CPU from INFO cpu on each master; a master's limit is one second of " +
        "CPU over its CPU per message (its core full). On this machine every server shares two cores with the hubs, so " +
        "the limits are projections, not rates reached. A master forwards each sharded message to its replica over the " +
        "cluster bus, hence the run with the masters alone. The median of the repetitions.") +
      capacityChart("rooms", "Room messages/s at which the busiest master fills its core", "cluster-rooms", [
        ["one Redis", "one_redis", 1], ["cluster, a replica per master", "cluster", 1], ["cluster, masters alone", "cluster", 0]]) +
      capacityChart("rooms", "Room messages/s with history at which the busiest master fills its core", "cluster-streams", [
        ["one Redis", "one_redis_streams", 1], ["cluster, a replica per master", "cluster_streams", 1],
        ["cluster, masters alone", "cluster_streams", 0]]) +
      capacityChart("global", "Broadcasts/s at which the busiest master fills its core", "cluster-global", [
        ["one Redis", "one_redis", 1], ["cluster, one global channel", "cluster", 1], ["cluster, 16 global channels", "cluster_spread", 1]]) +
      table({
        caption: "Redis CPU per message and the busiest master's limit",
        columns: ["messages", "setup", "replicas", "hubs", "received/msg", "Redis CPU us/msg, all masters", "busiest master us/msg",
          "min to max", "limit, msgs/s (median)"],
        rows: clusterRows.map((r) => [r.kind, setupLabels[r.setup] || r.setup, r.setup.startsWith("one_redis") ? "-" : r.replicas, r.hubs,
          fixed(r.received.median, 2), fixed(r.total.median, 2), fixed(r.busiest.median, 2), range(r.busiest, 2),
          Math.round(r.capacity.median)]),
      }),
  });
}
sections.push({
  id: "end-to-end", title: "End to end: latency by rate",
  html: conclusion(order.map((n) => `${label(n)}: ${num(best(n))} deliveries/s held at p99 < 50 ms with no loss` +
    (ladder[n].every((r) => r.holds) ? ` (every rate tried held; the highest tried: ${num(ladder[n][ladder[n].length - 1].deliveries)})` : "")).join("; ") + ".") +
    p("1,000 WebSocket clients of the load generator, one sender, 64-byte broadcasts: two instances on a Redis of their own for each broker, and the bare broadcaster (one process, no backplane, no Redis) as the floor of this machine's kernel and loopback. Each rate runs " + `${machine.repetitions} times for ${machine.duration_s} s, the ladders interleaved (every server is up from the start; at each rate every ladder still climbing runs in turn, so that the machine's moods fall on all of them alike); a ladder stops at the first rate whose median p99 passes 50 ms or that loses a message.`) +
    charts.lineChart({
      title: "p99 latency by deliveries per second", slug: "e2e-p99", xLabel: "deliveries/s", yLabel: "p99 (ms, median of runs)",
      series: order.map((n) => ({ name: label(n), points: ladder[n].map((r) => [r.deliveries, r.p99.median]) })),
    }) +
    order.map((n) => table({
      caption: `${label(n)}: the highest rate held at p99 < 50 ms with no loss: ${num(best(n))} deliveries/s`,
      columns: ["msg/s", "deliveries/s offered", "deliveries/s measured (median)", "p50 ms (median)", "p99 ms (median)", "p99 min to max", "messages lost"],
      rows: ladder[n].map((r) => [r.rate, r.deliveries, Math.round(r.measured.median), fixed(r.p50.median), fixed(r.p99.median), range(r.p99), r.lost]),
    })).join("\n"),
});
if (peer) {
  const held = ["redis-pubsub", "redis-streams", "socketio", "baseline"].filter((n) => ladder[n]);
  sections.push({
    id: "peers", title: "Against Socket.IO, in the same run",
    html: conclusion(`Two instances on Redis Pub/Sub held ${num(peer.ours)} deliveries/s at p99 < 50 ms with no loss; ` +
      `Socket.IO 4 with @socket.io/redis-adapter, with the same clients, ${num(peer.theirs)}` +
      (peer.ratio === null ? "." : `: ${fixed(peer.ratio, 1)} times less.`) +
      (memoryOf("socketio") && instanceMemory ? ` Per idle connection: ${num(Math.round(instanceMemory.bytes))} bytes ` +
        `against ${num(Math.round(memoryOf("socketio").bytes))}.` : "")) +
      p("Socket.IO runs as its documentation sets it up: two Node instances (benchmarks/peers/socketio.js), WebSocket " +
        "transport only, joined by the Redis adapter over a Redis server of their own (as each pair of instances has); the load generator speaks Engine.IO 4 and " +
        "Socket.IO 5 framing (--protocol socketio) and sends the same 64-byte broadcasts to the same 1,000 clients. Its ladder " +
        "climbs in smaller steps, since it stops sooner.") +
      charts.barChart({
        title: "Highest deliveries per second held at p99 < 50 ms with no loss", slug: "peers-held", yLabel: "deliveries/s",
        categories: held.map((n) => shortLabels[n] || n),
        series: [{ name: "held", values: held.map(best) }],
      }) +
      table({
        columns: ["server", "deliveries/s held", "bytes per idle connection"],
        rows: held.map((n) => {
          const m = memoryOf(n === "redis-pubsub" ? "instance" : n);
          return [label(n), best(n), n === "redis-streams" || !m ? "-" : Math.round(m.bytes)];
        }),
      }),
  });
}
sections.push({
  id: "memory", title: "Memory per idle connection",
  html: conclusion(memory.map((m) => `${memoryLabels[m.name] || m.name}: ${num(Math.round(m.bytes))} bytes per idle connection at ${num(m.connections)}`).join("; ") +
    ". The kernel's socket buffers are not in a process's RSS." + (heapParts ? ` Of an instance's heap per connection, ` +
      `websocketpp's connection object alone is ${num(Math.round(heapParts.parts.find((q) => q.id === "websocketpp_object").per_connection))} bytes.` : "")) +
    p("RSS growth of the process with idle WebSocket connections held open by the load generator (with a token each, for the instance). A Node process's RSS includes what its garbage collector has not yet returned.") +
    charts.barChart({
      title: "Bytes per idle connection", slug: "memory-per-connection", yLabel: "bytes",
      categories: memory.map((m) => memoryLabels[m.name] || m.name),
      series: [{ name: "RSS growth per connection", values: memory.map((m) => Math.round(m.bytes)) }],
    }) +
    table({
      columns: ["process", "connections", "RSS before (KiB)", "RSS after (KiB)", "bytes per connection"],
      rows: memory.map((m) => [m.name, m.connections, m.rss_before_kib, m.rss_after_kib, Math.round(m.bytes)]),
    }) +
    (heapParts ? p(`Where an instance's goes: the instance again, under heaptrack, with ${num(heapParts.connections)} idle ` +
      `connections; its heap at the peak (${num(Math.round(heapParts.heap_per_connection))} bytes per connection) sorted ` +
      "into parts by the call stacks that allocated it (benchmarks/memory_parts.js). The heap is not the RSS: malloc's " +
      "own overhead and page rounding are in the RSS only, and the kernel's socket buffers in neither.") +
      charts.barChart({
        title: "An instance's heap per idle connection, by part", slug: "memory-parts", yLabel: "bytes per connection",
        categories: heapParts.parts.map((q) => q.id.replace(/_/g, " ")),
        series: [{ name: "bytes", values: heapParts.parts.map((q) => Math.round(q.per_connection)) }],
      }) +
      table({
        caption: `An instance's heap per idle connection, by part (${num(heapParts.connections)} connections)`,
        columns: ["part", "bytes per connection", "share"],
        rows: heapParts.parts.map((q) => [q.name, Math.round(q.per_connection), `${fixed((100 * q.bytes) / heapParts.heap_bytes, 1)} %`]),
      }) : ""),
});

fs.writeFileSync(path.join(outDir, "index.html"), page({
  title: "backplane benchmarks",
  intro: `Measured on ${where}. Produced by:`,
  introHtml: code(command) + (machine.quick ? p("A QUICK run: short runs on small sizes, to check that everything runs; its figures are not for comparing.") : "") +
    table({ caption: "The goals, against this run", columns: ["goal", "this run", "met"],
      rows: goals.map((g) => [g.goal, g.result, g.met ? "yes" : "no"]) }),
  sections,
  footer: `This machine is shared and noisy: each figure is the median of its repetitions, with the range beside it; compare figures of one run only. Raw results: raw/*.json; computed: results.json.`,
}));
console.log(`\nwrote ${path.join(outDir, "index.html")} and results.json`);
