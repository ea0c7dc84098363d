// What the load-balancer scenarios must show whatever the machine's speed:
// the promises about messages and connections, checked on results.json.
// How fast clients came back and the latency ratios are measurements, reported
// by the page, not asserted here.
//
//   node tests/lb/results.test.js path/to/lb-report/results.json
"use strict";
const fs = require("fs");

const results = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) ++failures;
}
const s = results.scenarios;

for (const r of (s.distribution || { runs: [] }).runs) {
  const total = Object.values(r.per_instance).reduce((a, b) => a + b, 0);
  check(total === r.clients, `distribution ${r.balancer} (NAT ${r.nat_share}): ${total} of ${r.clients} clients placed`);
}
for (const r of (s.cross || { runs: [] }).runs) {
  if (r.broker === "memory") {
    // Alone, an instance reaches only its own clients, unless one holds them all.
    const spread = Object.keys(r.per_instance).length > 1;
    check(!spread || r.broadcast.fraction < 1, `cross ${r.balancer}, no backplane: broadcasts ${r.broadcast.fraction}`);
  } else {
    check(r.broadcast.fraction === 1 && r.room.fraction === 1,
      `cross ${r.balancer}, ${r.broker}: every broadcast and room message delivered`);
  }
}
for (const name of ["crash", "rolling", "storm"])
  for (const r of (s[name] || { runs: [] }).runs) {
    const what = `${name} ${r.balancer} ${r.broker || "redis-pubsub"}${name === "storm" ? (r.kill ? " kill" : " calm") : ""}`;
    check(r.never_back === 0, `${what}: every dropped client back (${r.never_back} not)`);
    check(r.lost_undisturbed === 0, `${what}: the clients that stayed connected lost nothing (${r.lost_undisturbed})`);
    check(r.duplicates === 0, `${what}: no message twice (${r.duplicates})`);
    if (r.broker === "redis-streams")
      check(r.lost_dropped === 0 && r.unrecovered === 0,
        `${what}: resumed clients lost nothing (${r.lost_dropped} missing, ${r.unrecovered} recovered:false)`);
    if (name !== "storm" || r.kill) check(r.dropped > 0, `${what}: the disruption dropped clients (${r.dropped})`);
  }
for (const r of (s.scale || { runs: [] }).runs) {
  check(r.existing_moved === 0, `scale ${r.balancer}: no connected client moved (${r.existing_moved})`);
  check((r.new_per_instance.c || 0) > 0, `scale ${r.balancer}: new clients reach the new instance`);
}
check(Object.keys(s).length > 0, `${Object.keys(s).length} scenarios in the results`);
process.exit(failures ? 1 : 0);
