// What benchmarks/run.sh must produce, whatever the machine's speed: every
// section of the report with its figures, each from the repetitions the run
// says it made.
//
//   node tests/bench/results.test.js path/to/results.json
"use strict";
const assert = require("assert");
const fs = require("fs");

const results = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const spreadOk = (s, what) => {
  assert.ok(s && Number.isFinite(s.median) && s.min <= s.median && s.median <= s.max, `${what}: ${JSON.stringify(s)}`);
  assert.strictEqual(s.n, results.machine.repetitions, `${what}: one figure per repetition`);
};

const m = results.machine;
assert.ok(m.cores > 0 && m.kernel && m.commit && m.date, "the machine and the commit");
assert.ok(m.repetitions >= 3, "at least three repetitions");

assert.deepStrictEqual(results.core.fanout.map((r) => r.targets), [1000, 10000, 100000]);
for (const r of results.core.fanout) {
  spreadOk(r.deliveries, `fan-out to ${r.targets}`);
  assert.ok(r.deliveries.median > 0);
  spreadOk(r.allocMessage, `allocations per message, ${r.targets}`);
}
assert.ok(results.core.join_leave.length >= 3, "join and leave at several room counts");
assert.ok(results.core.redis.length >= 2, "a hub and a broker publishing through Redis");
for (const r of results.core.redis) spreadOk(r.rate, r.name);
for (const broker of ["memory", "redis_pubsub", "redis_streams"]) {
  const rows = results.core.roundtrip.filter((r) => r.broker === broker);
  assert.deepStrictEqual(rows.map((r) => r.targets), [1, 100, 10000], `${broker}: a round trip to 1, 100, 10,000 connections`);
  for (const r of rows) {
    spreadOk(r.latencyUs, `${broker} to ${r.targets}: latency`);
    spreadOk(r.deliveries, `${broker} to ${r.targets}: deliveries/s`);
    spreadOk(r.allocMessage, `${broker} to ${r.targets}: allocations`);
  }
}

// Channel design: the counts are the routings' own, whatever the speed.
const rooms = Object.fromEntries(results.channels.rooms.map((r) => [r.routing, r]));
assert.ok(rooms.global_channel && rooms.per_room_channel, "rooms on a global channel and on a channel per room");
for (const r of Object.values(rooms)) {
  spreadOk(r.redisCpu, `rooms, ${r.routing}: Redis CPU`);
  assert.strictEqual(r.deliveries.median, 10, `rooms, ${r.routing}: every member gets each message once`);
}
assert.strictEqual(rooms.global_channel.received.median, 5, "one global channel: every instance receives every room message");
assert.ok(rooms.per_room_channel.received.median > 0 && rooms.per_room_channel.received.median < 5,
  `a channel per room: only the instances with a member receive (${rooms.per_room_channel.received.median} of 5)`);
const perDm = { per_user_channel: 1, shared_channel: 5, instance_channel: 1 };
for (const routing of Object.keys(perDm)) {
  const rows = results.channels.direct.filter((r) => r.routing === routing);
  assert.ok(rows.some((r) => r.users === 10000), `direct messages by ${routing} with 10,000 users`);
  for (const r of rows) {
    spreadOk(r.latency, `${routing}, ${r.users} users: latency`);
    assert.strictEqual(r.deliveries.median, 1, `${routing}: each DM delivered once`);
    assert.strictEqual(r.received.median, perDm[routing], `${routing}: instances receiving each DM`);
  }
}

// Past one Redis: both setups at the same hub counts, with history and
// without; the rooms are placed alike (the same seed), so each hub receives
// the same per message on both.
for (const replicas of [1, 0]) {
  const rows = results.cluster.filter((r) => r.replicas === replicas);
  for (const [kind, base, setup] of [["rooms", "one_redis", "cluster"], ["global", "one_redis", "cluster"],
    ["rooms", "one_redis_streams", "cluster_streams"]]) {
    const one = rows.filter((r) => r.kind === kind && r.setup === base);
    const sharded = rows.filter((r) => r.kind === kind && r.setup === setup);
    assert.ok(one.length >= 1, `${kind}, ${base}, replicas ${replicas}: one Redis measured`);
    assert.deepStrictEqual(sharded.map((r) => r.hubs), one.map((r) => r.hubs), `${kind}, ${setup}: at the same hub counts`);
    for (const r of [...one, ...sharded]) {
      spreadOk(r.busiest, `${kind}, ${r.setup}, ${r.hubs} hubs: busiest master's CPU`);
      assert.ok(r.busiest.median > 0 && r.capacity.median > 0, `${kind}, ${r.setup}, ${r.hubs} hubs: CPU measured`);
      assert.strictEqual(r.masters.median, r.setup === base ? 1 : 3, `${r.setup}: its masters`);
      if (kind === "global") assert.strictEqual(r.received.median, r.hubs, "a broadcast reaches every hub once");
      const twin = one.find((o) => o.hubs === r.hubs);
      assert.strictEqual(r.received.median, twin.received.median, `${kind}, ${r.hubs} hubs: the same receipts on both`);
    }
  }
  for (const r of rows.filter((x) => x.setup === "cluster_spread")) {
    spreadOk(r.busiest, `broadcasts over 16 global channels, ${r.hubs} hubs: busiest master's CPU`);
    assert.strictEqual(r.received.median, r.hubs, "a broadcast on any of the global channels reaches every hub once");
  }
}

for (const name of ["redis-pubsub", "redis-pubsub-unbatched", "redis-streams", "socketio", "baseline"]) {
  const ladder = results.end_to_end[name];
  assert.ok(ladder && ladder.length >= 1, `${name}: at least one rate`);
  for (const rung of ladder) {
    assert.strictEqual(rung.runs, m.repetitions, `${name} at ${rung.rate} msg/s: every repetition ran`);
    spreadOk(rung.p99, `${name} at ${rung.rate} msg/s, p99`);
    spreadOk(rung.measured, `${name} at ${rung.rate} msg/s, deliveries/s`);
    assert.ok(rung.measured.median > 0);
  }
  assert.ok(Number.isFinite(results.held[name]), `${name}: the highest rate held`);
}

assert.strictEqual(results.goals.length, 4,
  "the throughput goal for each Redis broker, the ratio to Socket.IO and the memory goal");
for (const g of results.goals) assert.ok(g.goal && g.result && typeof g.met === "boolean", JSON.stringify(g));

const peer = results.peer;
assert.ok(peer && peer.ours === results.held["redis-pubsub"] && peer.theirs === results.held.socketio,
  `the comparison with Socket.IO is of the two ladders: ${JSON.stringify(peer)}`);
assert.ok(peer.theirs > 0, "Socket.IO held its lowest rate: its ladder measured something");

for (const name of ["instance", "socketio", "baseline"]) {
  const mem = results.memory.find((x) => x.name === name);
  assert.ok(mem && mem.connections > 0 && mem.rss_after_kib > mem.rss_before_kib, `${name}: memory measured`);
}
const heap = results.heap_parts;
assert.ok(heap && heap.connections > 0 && heap.heap_per_connection > 0, "an instance's heap measured by parts");
assert.strictEqual(heap.parts.reduce((a, q) => a + q.bytes, 0), heap.heap_bytes, "the parts add up to the heap");
for (const id of ["websocketpp_object", "socket", "hub", "server"]) {
  const q = heap.parts.find((x) => x.id === id);
  assert.ok(q && q.per_connection > 0, `the heap has its part ${id}`);
}
console.log("ok: every section of the benchmark report has its figures");
