// The load-balancer scenarios: sticky (by address, user, room) against
// stateless (round robin, least connections), with nginx and HAProxy, each
// claim of the seed design's "Sticky Session vs Stateless" table measured on
// loopback with real processes: redis-server, backplane-instance processes,
// the balancer, and backplane-loadgen's WebSocket clients.
//
//   node lb/scenarios.js BUILD_DIR OUT_DIR      (lb/run.sh does this, and writes the report)
//
// SCENARIOS chooses among: distribution cross crash rolling scale storm (all
// by default); BALANCERS among the names in `balancers` below (all by
// default); QUICK=1 runs small client counts (CI). Writes OUT_DIR/results.json
// and prints one table per scenario. Every process it starts is stopped when
// it ends, also on SIGINT/SIGTERM.
"use strict";
const { spawn, execFileSync } = require("child_process");
const fs = require("fs");
const http = require("http");
const net = require("net");
const os = require("os");
const path = require("path");
const { makeKey } = require("../tests/support/tokens.js");

const build = path.resolve(process.argv[2] || "build");
const out = path.resolve(process.argv[3] || "lb-report");
const root = path.resolve(__dirname, "..");
const quick = process.env.QUICK === "1";
const instanceBin = path.join(build, "demo", "backplane-instance");
const loadgenBin = path.join(build, "benchmarks", "loadgen", "backplane-loadgen");

// The balancers compared: a program, a policy file in lb/, and what kind of
// balancing it is.
const balancers = {
  "nginx-round-robin": { lb: "nginx", policy: "round-robin", kind: "stateless", label: "nginx round robin" },
  "nginx-least-conn": { lb: "nginx", policy: "least-conn", kind: "stateless", label: "nginx least_conn" },
  "nginx-ip-hash": { lb: "nginx", policy: "ip-hash", kind: "sticky by address", label: "nginx ip_hash" },
  "nginx-user-hash": { lb: "nginx", policy: "user-hash", kind: "sticky by user", label: "nginx hash $arg_user consistent" },
  "nginx-room-hash": { lb: "nginx", policy: "room-hash", kind: "sticky by room", label: "nginx hash $arg_room consistent" },
  "haproxy-roundrobin": { lb: "haproxy", policy: "roundrobin", kind: "stateless", label: "HAProxy roundrobin" },
  "haproxy-leastconn": { lb: "haproxy", policy: "leastconn", kind: "stateless", label: "HAProxy leastconn" },
  "haproxy-source": { lb: "haproxy", policy: "source", kind: "sticky by address", label: "HAProxy balance source" },
  "haproxy-url-param": { lb: "haproxy", policy: "url-param", kind: "sticky by user", label: "HAProxy url_param user, consistent" },
  "haproxy-room-param": { lb: "haproxy", policy: "room-param", kind: "sticky by room", label: "HAProxy url_param room, consistent" },
};
const allScenarios = ["distribution", "cross", "crash", "rolling", "scale", "storm"];
const scenarios = (process.env.SCENARIOS || allScenarios.join(" ")).split(/\s+/).filter(Boolean);
const chosen = (process.env.BALANCERS || (quick ? "nginx-round-robin haproxy-source" : Object.keys(balancers).join(" ")))
  .split(/\s+/).filter(Boolean);
for (const s of scenarios) if (!allScenarios.includes(s)) fail(`unknown scenario ${s}`);
for (const b of chosen) if (!balancers[b]) fail(`unknown balancer ${b}`);

// Sizes: the issue's, or small ones for CI.
const size = quick
  ? { clients: 300, sources: 30, rooms: 10, storm: 900, cross: 120, rate: 10 }
  : { clients: 3000, sources: 300, rooms: 30, storm: 9000, cross: 600, rate: 10 };

function fail(why) {
  console.error(`lb/scenarios.js: ${why}`);
  process.exit(2);
}

// ---- processes ------------------------------------------------------------

const work = fs.mkdtempSync(path.join(os.tmpdir(), "backplane-lb-"));
const children = new Set();

function start(name, cmd, args, options = {}) {
  const log = fs.openSync(path.join(work, `${name}.log`), "a");
  const child = spawn(cmd, args, { stdio: [options.stdin || "ignore", options.stdout || log, log], ...options.spawn });
  child.logName = name;
  children.add(child);
  child.exited = new Promise((resolve) => child.on("exit", (code, signal) => {
    children.delete(child);
    fs.closeSync(log);
    resolve({ code, signal });
  }));
  return child;
}

// The end of what a process started by start() wrote.
function logOf(name) {
  try {
    return fs.readFileSync(path.join(work, `${name}.log`), "utf8").slice(-2000);
  } catch {
    return "";
  }
}

function cleanup() {
  for (const c of children) c.kill("SIGKILL");
  fs.rmSync(work, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Calls `check` (which may be async) every 20 ms until it is true; fails
// with `what` after `timeout` ms.
async function until(check, what, timeout = 10000) {
  const end = Date.now() + timeout;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await delay(20); // the poll period
  }
}

// A TCP port nothing listens on, below the ephemeral range (where the
// clients' own ports come from), with port + 10000 free as well.
let nextPort = 20000 + Math.floor(Math.random() * 5000);
async function freePort() {
  for (;;) {
    const p = nextPort++;
    if (await listensNot(p)) return p;
  }
}
function listensNot(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

function httpGet(port, pathname) {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: pathname, timeout: 2000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", () => resolve({ status: 0, body: "" }));
    req.on("timeout", () => req.destroy());
  });
}

function metric(body, name) {
  const m = body.match(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, "m"));
  return m ? Number(m[1]) : 0;
}

// The processes whose parent is `pid`.
function childrenOf(pid) {
  const out = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

// CPU seconds (user + system) of a process.
function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 Hz)
  } catch {
    return 0;
  }
}

// ---- Redis and the instances ------------------------------------------------

let redisPort = 0;
async function startRedis() {
  redisPort = await freePort();
  const dir = path.join(work, "redis");
  fs.mkdirSync(dir, { recursive: true });
  start("redis", "redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly",
    "no", "--dir", dir]);
  await until(() => redis(["PING"]) === "PONG", "redis-server answers");
}
function redis(args) {
  try {
    return execFileSync("redis-cli", ["-p", String(redisPort), ...args], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
}

const instances = new Map(); // id -> { port, child, broker }

// The key the instances verify tokens with, and the load generator signs
// each client's token with (a login service's part).
let tokenKey = null;
function tokenKeyFile() {
  if (!tokenKey) tokenKey = makeKey(work).file;
  return tokenKey;
}

async function startInstance(id, broker, port) {
  port = port || (await freePort());
  const child = start(`instance-${id}`, instanceBin, ["--port", String(port), "--address", "127.0.0.1",
    "--instance-id", id, "--broker", broker, "--redis", `redis://127.0.0.1:${redisPort}`,
    "--auth", "jwt", "--auth-key", tokenKeyFile(),
    // The load generator's senders send far faster than a person.
    "--max-rate", "0", "--max-broadcast-rate", "0", "--max-bytes-rate", "0", "--max-user-rate", "0",
    "--max-user-broadcast-rate", "0"]);
  instances.set(id, { port, child, broker });
  await until(async () => (await httpGet(port, "/healthz")).status === 200, `instance ${id} healthy`);
  if (broker !== "memory")
    await until(async () => metric((await httpGet(port, "/metrics")).body, "backplane_redis_connected") === 1,
      `instance ${id} on Redis`);
  return instances.get(id);
}

async function stopInstance(id, signal = "SIGTERM") {
  const i = instances.get(id);
  if (!i || i.child.exitCode !== null || i.child.signalCode !== null) return;
  i.child.kill(signal);
  await i.child.exited;
}

async function stopAllInstances() {
  for (const id of [...instances.keys()]) await stopInstance(id);
  instances.clear();
  redis(["FLUSHALL"]);
}

async function startInstances(ids, broker) {
  await stopAllInstances();
  for (const id of ids) await startInstance(id, broker);
}

// ---- the balancers ------------------------------------------------------------

function fill(template, values) {
  let text = fs.readFileSync(path.join(root, "lb", template), "utf8");
  for (const [k, v] of Object.entries(values)) text = text.split(`@${k}@`).join(v);
  return text;
}

class Balancer {
  constructor(name) {
    Object.assign(this, balancers[name]);
    this.name = name;
  }

  // Starts in front of `ids` (instances running); `later`: instances listed
  // but not in service until enable() (HAProxy; nginx is reloaded instead).
  async start(ids, later = []) {
    this.port = await freePort();
    this.dir = fs.mkdtempSync(path.join(work, `${this.name}-`));
    if (this.lb === "nginx") {
      this.writeUpstream(ids);
      fs.writeFileSync(path.join(this.dir, "nginx.conf"), fill("nginx.conf.in", { WORK: this.dir, PORT: this.port }));
      this.child = start(this.name, "nginx", ["-e", path.join(this.dir, "nginx-error.log"), "-c",
        path.join(this.dir, "nginx.conf"), "-g", "daemon off;"]);
    } else {
      fs.writeFileSync(path.join(this.dir, "haproxy.cfg"), fill("haproxy.cfg.in", { WORK: this.dir, PORT: this.port }));
      const servers = [...ids, ...later].map((id) =>
        `server ${id} 127.0.0.1:${instances.get(id).port}${later.includes(id) ? " disabled" : ""}`).join("\n  ");
      fs.writeFileSync(path.join(this.dir, "backend.cfg"), fill(`haproxy/${this.policy}.cfg.in`, { SERVERS: servers }));
      this.child = start(this.name, "haproxy", ["-db", "-f", path.join(this.dir, "haproxy.cfg"), "-f",
        path.join(this.dir, "backend.cfg")]);
    }
    await until(() => {
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited: ${logOf(this.name)}`);
      return new Promise((resolve) => {
        const s = net.connect(this.port, "127.0.0.1", () => { s.destroy(); resolve(true); });
        s.on("error", () => resolve(false));
      });
    }, `${this.name} listens: ${logOf(this.name)}`);
    if (this.lb === "haproxy") await this.awaitUp(ids);
    return this;
  }

  writeUpstream(ids) {
    // max_fails=0: see lb/nginx.conf.in.
    const servers = ids.map((id) => `server 127.0.0.1:${instances.get(id).port} max_fails=0;`)
      .join("\n  ");
    fs.writeFileSync(path.join(this.dir, "upstream.conf"), fill(`nginx/${this.policy}.conf.in`, { SERVERS: servers }));
  }

  // HAProxy's view of its servers: name -> status ("UP", "DOWN", "MAINT"...).
  async status() {
    const reply = await this.command("show stat");
    const rows = reply.split("\n").filter((l) => l.startsWith("instances,"));
    const out = {};
    for (const r of rows) {
      const f = r.split(",");
      if (f[1] !== "BACKEND") out[f[1]] = f[17];
    }
    return out;
  }

  command(line) {
    return new Promise((resolve) => {
      let reply = "";
      const s = net.connect(path.join(this.dir, "haproxy.sock"), () => s.end(`${line}\n`));
      s.on("data", (d) => (reply += d));
      s.on("close", () => resolve(reply));
      s.on("error", () => resolve(""));
    });
  }

  // Waits until the balancer sends connections to every instance of `ids`.
  async awaitUp(ids) {
    if (this.lb !== "haproxy") return;
    await until(async () => {
      const st = await this.status();
      return ids.every((id) => (st[id] || "").startsWith("UP"));
    }, `${this.name} sees ${ids.join(",")} up`);
  }

  // Puts `ids` in service: nginx reloads with them (its old workers keep
  // the connections they hold), HAProxy enables them at run time.
  async enable(ids, all) {
    if (this.lb === "nginx") {
      this.writeUpstream(all);
      const pid = Number(fs.readFileSync(path.join(this.dir, "nginx.pid"), "utf8"));
      const workers = childrenOf(pid);
      process.kill(pid, "SIGHUP");
      // Reloaded once two new workers run (the old ones may stay, holding
      // their connections until these close).
      await until(() => childrenOf(pid).filter((w) => !workers.includes(w)).length >= 2, "nginx reloaded");
    } else {
      for (const id of ids) await this.command(`enable server instances/${id}`);
      await this.awaitUp(ids);
    }
  }

  config() {
    if (this.lb === "nginx")
      return { "nginx.conf (main)": fs.readFileSync(path.join(root, "lb/nginx.conf.in"), "utf8"),
        [`nginx/${this.policy}.conf`]: fs.readFileSync(path.join(root, `lb/nginx/${this.policy}.conf.in`), "utf8") };
    return { "haproxy.cfg (main)": fs.readFileSync(path.join(root, "lb/haproxy.cfg.in"), "utf8"),
      [`haproxy/${this.policy}.cfg`]: fs.readFileSync(path.join(root, `lb/haproxy/${this.policy}.cfg.in`), "utf8") };
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      // nginx's "fast shutdown" on SIGTERM; HAProxy stops at once on it too.
      this.child.kill("SIGTERM");
      await this.child.exited;
    }
  }
}

// ---- the load generator ---------------------------------------------------------

// Runs backplane-loadgen through `balancer` with `args`; `ready(info)` runs
// (awaited) before sending begins, `started()` once it has (what it does,
// such as a crash or a rolling update, is awaited too); resolves with the
// results of --json.
async function loadgen(balancer, args, { ready, started, name = "loadgen" } = {}) {
  const file = path.join(work, `${name}-${Date.now()}.json`);
  const child = start(name, loadgenBin, ["--target", `127.0.0.1:${balancer.port}`, "--threads", "2", "--json", file,
    "--token-key", tokenKeyFile(), "--start-on-stdin", ...args], { stdin: "pipe", stdout: "pipe" });
  let buffer = "";
  const lines = [];
  let events = Promise.resolve();
  child.stdout.on("data", async (d) => {
    buffer += d;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      lines.push(line);
      if (line.startsWith("ready")) {
        if (ready) await ready(parseReady(line));
        child.stdin.write("go\n");
      } else if (line.startsWith("sending from") && started) {
        events = Promise.resolve(started());
      }
    }
  });
  const { code } = await child.exited;
  await events;
  if (!fs.existsSync(file)) throw new Error(`backplane-loadgen failed (${code}): ${lines.join(" | ")}`);
  const results = JSON.parse(fs.readFileSync(file, "utf8"));
  results.output = lines;
  return results;
}

// "ready; senders on a; rooms room0=a,b room1=c"
function parseReady(line) {
  const senders = (line.match(/senders on ([^;]*)/) || ["", ""])[1].trim().split(/\s+/).filter(Boolean);
  const rooms = {};
  for (const m of line.matchAll(/(room\d+)=([^\s;]*)/g)) rooms[m[1]] = m[2] ? m[2].split(",") : [];
  return { senders, rooms };
}

// Waits until every instance hosting members of a room holds its channel
// in Redis: a room message published before that would miss them.
async function awaitRooms(info) {
  await until(() => Object.entries(info.rooms).every(([room, hosts]) =>
    Number(redis(["PUBSUB", "NUMSUB", `chat:room:${room}`]).split("\n")[1] || 0) >= hosts.length),
  "every room's channel subscribed");
}

// Per instance: the clients whose first connection landed there.
function landing(results) {
  const counts = {};
  for (const c of results.clients_detail) {
    const first = c.segments.find((s) => s[0] >= 0);
    if (first) counts[results.instances[first[0]]] = (counts[results.instances[first[0]]] || 0) + 1;
  }
  return counts;
}

function percentile(values, p) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// What the clients lived through: who was dropped, how long until back,
// where they went, what they lost.
function disruption(results) {
  // A client whose first connection came after sending began (its
  // handshakes were refused under load, and it kept trying) is neither: what
  // was sent before it came was not its to receive, so it is counted apart.
  const undisturbed = [], dropped = [], late = [];
  for (const c of results.clients_detail) {
    const welcomed = c.segments.filter((s) => s[0] >= 0);
    if (welcomed.length === 1 && welcomed[0][2] < 0) (welcomed[0][1] <= 0 ? undisturbed : late).push(c);
    else dropped.push(c);
  }
  const back = dropped.flatMap((c) => c.back_ms);
  const landed = {};
  for (const c of dropped) {
    const welcomed = c.segments.filter((s) => s[0] >= 0);
    const last = welcomed[welcomed.length - 1];
    if (last && last[2] < 0) landed[results.instances[last[0]]] = (landed[results.instances[last[0]]] || 0) + 1;
  }
  return {
    clients: results.clients,
    dropped: dropped.length,
    disconnections: dropped.reduce((n, c) => n + c.segments.filter((s) => s[0] >= 0 && s[2] >= 0).length, 0),
    back_ms: back,
    back_p50_ms: percentile(back, 50),
    back_p99_ms: percentile(back, 99),
    back_max_ms: back.length ? Math.max(...back) : null,
    never_back: dropped.filter((c) => { const w = c.segments.filter((s) => s[0] >= 0); return !w.length || w[w.length - 1][2] >= 0; }).length,
    landed,
    late: late.length,
    lost_undisturbed: undisturbed.reduce((n, c) => n + c.missing, 0),
    lost_dropped: dropped.reduce((n, c) => n + c.missing, 0),
    duplicates: results.duplicates,
    unrecovered: dropped.reduce((n, c) => n + c.unrecovered, 0),
    recovered: dropped.reduce((n, c) => n + c.recovered, 0),
    resumed_by_time: dropped.reduce((n, c) => n + c.resumed_by_time, 0),
    // A few clients that lost something, to look into.
    lost_examples: [...undisturbed, ...dropped].filter((c) => c.missing > 0).slice(0, 3)
      .map((c) => ({ user: c.user, room: c.room, segments: c.segments, missing_seqs: c.missing_seqs })),
    sent: results.sent,
    latency: results.latency,
    timeline: results.timeline,
    disruption_window: results.disruption,
  };
}

// ---- the scenarios ------------------------------------------------------------

const results = { machine: machine(), quick, sizes: size, balancers: {}, scenarios: {} };

function machine() {
  return { cores: os.cpus().length, kernel: os.release(), date: new Date().toISOString(),
    nginx: tryRun("nginx", ["-v"]), haproxy: tryRun("haproxy", ["-v"]).split("\n")[0],
    redis: tryRun("redis-server", ["--version"]) };
}
function tryRun(cmd, args) {
  try {
    const r = require("child_process").spawnSync(cmd, args, { encoding: "utf8" });
    return (r.stdout + r.stderr).trim();
  } catch {
    return "";
  }
}

async function withBalancer(name, ids, fn, later = []) {
  const b = await new Balancer(name).start(ids, later);
  results.balancers[name] = { label: b.label, kind: b.kind, lb: b.lb, config: b.config() };
  try {
    return await fn(b);
  } finally {
    await b.stop();
  }
}

// 1. Where the connections land: N clients from many addresses, then with
//    40 % of them behind one address (an office NAT).
async function distribution() {
  await startInstances(["a", "b", "c"], "redis-pubsub");
  const runs = [];
  for (const name of chosen)
    for (const nat of [0, 0.4])
      await withBalancer(name, ["a", "b", "c"], async (b) => {
        // --reconnect: a handshake refused while the machine is busy is tried again.
        const r = await loadgen(b, ["--clients", size.clients, "--sources", size.sources, "--nat-share", nat,
          "--rate", "0", "--duration", "0.2", "--reconnect"].map(String));
        runs.push({ balancer: name, nat_share: nat, clients: size.clients, sources: size.sources, per_instance: landing(r) });
      });
  return { runs };
}

// 2. Delivery across instances: broadcasts and room messages whose members
//    are spread over the instances, with and without a backplane.
async function cross() {
  const runs = [];
  for (const broker of ["memory", "redis-pubsub"]) {
    await startInstances(["a", "b", "c"], broker);
    for (const name of chosen)
      await withBalancer(name, ["a", "b", "c"], async (b) => {
        // One sender per room, each speaking in its own room half the time.
        const r = await loadgen(b, ["--clients", size.cross, "--sources", Math.max(10, size.sources / 5),
          "--rooms", size.rooms, "--senders", size.rooms, "--room-share", "0.5", "--room-in-url", "--rate", "20",
          "--duration", "3", "--grace", "1"].map(String), { ready: broker === "memory" ? null : awaitRooms });
        const k = r.by_kind;
        runs.push({ balancer: name, broker, per_instance: landing(r),
          broadcast: { expected: k.broadcast.expected, received: k.broadcast.received,
            fraction: k.broadcast.expected ? k.broadcast.received / k.broadcast.expected : null },
          room: { expected: k.room.expected, received: k.room.received,
            fraction: k.room.expected ? k.room.received / k.room.expected : null } });
      });
  }
  return { runs };
}

// The instance to disrupt: one that hosts no sender, so that sending goes on.
function victim(info, ids) {
  return ids.find((id) => !info.senders.includes(id)) || ids[ids.length - 1];
}

// 3. An instance crashes (SIGKILL) under load: its clients reconnect with
//    backoff through the balancer (with streams, resuming from their last ids).
async function crash() {
  const runs = [];
  const brokers = quick ? ["redis-streams"] : ["redis-streams", "redis-pubsub"];
  for (const broker of brokers)
    for (const name of broker === "redis-pubsub" ? chosen.slice(0, 1) : chosen) {
      await startInstances(["a", "b", "c"], broker);
      await withBalancer(name, ["a", "b", "c"], async (b) => {
        let killed = null;
        const r = await loadgen(b, ["--clients", size.clients, "--sources", size.sources, "--rooms", size.rooms,
          "--room-share", "0.3", "--rate", size.rate, "--duration", "8", "--reconnect",
          ...(broker === "redis-streams" ? ["--resume"] : [])].map(String), {
          ready: async (info) => { killed = victim(info, ["a", "b", "c"]); await awaitRooms(info); },
          started: async () => { await delay(3000); await stopInstance(killed, "SIGKILL"); }, // the crash, 3 s in
        });
        runs.push({ balancer: name, broker, killed, ...disruption(r) });
      });
    }
  return { runs };
}

// 4. A rolling update: each instance in turn drained (SIGTERM), restarted
//    on its port, and back in service before the next.
async function rolling() {
  const runs = [];
  for (const name of chosen) {
    await startInstances(["a", "b", "c"], "redis-streams");
    await withBalancer(name, ["a", "b", "c"], async (b) => {
      const events = [];
      let t0 = 0;
      const r = await loadgen(b, ["--clients", size.clients, "--sources", size.sources, "--rooms", size.rooms,
        "--room-share", "0.3", "--rate", size.rate, "--duration", "14", "--reconnect", "--resume"].map(String), {
        ready: awaitRooms,
        started: async () => {
          t0 = Date.now();
          await delay(1500);
          for (const id of ["a", "b", "c"]) {
            events.push({ t_ms: Date.now() - t0, label: `restart ${id}` });
            const port = instances.get(id).port;
            await stopInstance(id, "SIGTERM");
            await startInstance(id, "redis-streams", port);
            await b.awaitUp([id]);
            await delay(1000); // in service for a while before the next is drained
          }
        },
      });
      const d = disruption(r);
      const last = r.timeline.counts[r.timeline.counts.length - 1] || [];
      const after = {};
      r.instances.forEach((id, k) => (after[id] = last[k] || 0));
      runs.push({ balancer: name, broker: "redis-streams", events, after, ...d });
    });
  }
  return { runs };
}

// 5. Scale out from 2 to 3 instances while clients are connected: do they
//    move, where do new ones land, and how much of the user space would a
//    reconnect remap (the same users and addresses connecting again).
async function scale() {
  const runs = [];
  for (const name of chosen) {
    await startInstances(["a", "b", "c"], "redis-pubsub");
    // c runs from the start, out of the balancer's service until the scale-out.
    const later = balancers[name].lb === "haproxy" ? ["c"] : [];
    await withBalancer(name, ["a", "b"], async (b) => {
      const timeline = [], events = [];
      const t0 = Date.now();
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const row = { t_ms: Date.now() - t0 };
          for (const id of ["a", "b", "c"])
            row[id] = metric((await httpGet(instances.get(id).port, "/metrics")).body, "websocket_connections_total");
          timeline.push(row);
          await delay(200); // the sampling period
        }
      })();
      const common = ["--sources", size.sources, "--rate", "0", "--reconnect"];
      let waves = null;
      const before = await loadgen(b, [...common, "--clients", size.clients, "--duration", quick ? 6 : 10].map(String), {
        name: "first",
        started: () => {
          waves = (async () => {
            await delay(1000);
            events.push({ t_ms: Date.now() - t0, label: "c in service" });
            await b.enable(["c"], ["a", "b", "c"]);
            events.push({ t_ms: Date.now() - t0, label: "new clients" });
            const newcomers = await loadgen(b, [...common, "--clients", Math.round(size.clients / 2), "--user-prefix",
              "new", "--duration", "1"].map(String), { name: "second" });
            events.push({ t_ms: Date.now() - t0, label: "the same users again" });
            const again = await loadgen(b, [...common, "--clients", size.clients, "--duration", "0.2"].map(String),
              { name: "probe" });
            return { newcomers, again };
          })();
        },
      });
      const { newcomers, again } = await waves;
      sampling = false;
      await sampler;
      // The same user and address, before and after: where did each go?
      const at = (r) => new Map(r.clients_detail.map((cl) => {
        const s = cl.segments.find((g) => g[0] >= 0);
        return [cl.user, s ? r.instances[s[0]] : null];
      }));
      const was = at(before), now = at(again);
      let moved = 0;
      for (const [user, inst] of was) if (now.get(user) !== inst) ++moved;
      runs.push({ balancer: name, events, timeline, clients: size.clients,
        existing_moved: before.clients_detail.filter((cl) => cl.segments.some((s) => s[0] >= 0 && s[2] >= 0)).length,
        new_per_instance: landing(newcomers), remapped: moved, remapped_fraction: moved / was.size });
    }, later);
  }
  return { runs };
}

// 6. A reconnect storm: many clients on 3 instances, one killed: its third
//    comes back at once. The same run without the kill is the yardstick for
//    the latency of the clients that were never disconnected.
async function storm() {
  const runs = [];
  for (const name of chosen) {
    for (const kill of [true, false]) {
      await startInstances(["a", "b", "c"], "redis-pubsub");
      await withBalancer(name, ["a", "b", "c"], async (b) => {
        let killed = null, cpu = null;
        const window = kill ? null : runs[runs.length - 1].latency.window_ms;
        const args = ["--clients", size.storm, "--sources", size.sources, "--rate", "5", "--duration", "10",
          "--reconnect"];
        if (window) args.push("--window", window[0] / 1000, window[1] / 1000);
        const r = await loadgen(b, args.map(String), {
          ready: async (info) => { killed = victim(info, ["a", "b", "c"]); },
          started: async () => {
            if (!kill) return;
            await delay(4000);
            const survivors = ["a", "b", "c"].filter((id) => id !== killed).map((id) => instances.get(id).child.pid);
            const before = survivors.map(cpuSeconds), t = Date.now();
            await stopInstance(killed, "SIGKILL");
            await delay(3000); // the storm's first three seconds, measured
            cpu = survivors.map((pid, k) => (cpuSeconds(pid) - before[k]) / ((Date.now() - t) / 1000));
          },
        });
        const d = disruption(r);
        runs.push({ balancer: name, kill, killed, survivors_cpu: cpu, ...d });
      });
    }
  }
  return { runs };
}

const table = (rows) => console.table(rows);

async function main() {
  fs.mkdirSync(out, { recursive: true });
  for (const bin of [instanceBin, loadgenBin]) if (!fs.existsSync(bin)) fail(`${bin} is not built`);
  await startRedis();
  const fns = { distribution, cross, crash, rolling, scale, storm };
  let failed = 0;
  for (const s of scenarios) {
    const t = Date.now();
    console.log(`\n=== ${s}`);
    try {
      results.scenarios[s] = await fns[s]();
      results.scenarios[s].seconds = (Date.now() - t) / 1000;
      print(s, results.scenarios[s]);
    } catch (e) {
      // The other scenarios still run; the results say what went wrong.
      ++failed;
      results.scenarios[s] = { error: String(e.stack || e), seconds: (Date.now() - t) / 1000, runs: [] };
      console.error(`${s} failed: ${e.stack || e}`);
    }
    fs.writeFileSync(path.join(out, "results.json"), JSON.stringify(results)); // what there is so far
  }
  await stopAllInstances();
  console.log(`\nresults: ${path.join(out, "results.json")}`);
  process.exit(failed ? 1 : 0); // the exit handler stops what is left (Redis)
}

function print(name, r) {
  const pct = (x) => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(1)} %`);
  if (name === "distribution")
    table(r.runs.map((x) => ({ balancer: x.balancer, "behind one NAT": pct(x.nat_share), ...x.per_instance })));
  else if (name === "cross")
    table(r.runs.map((x) => ({ balancer: x.balancer, broker: x.broker, broadcast: pct(x.broadcast.fraction),
      room: pct(x.room.fraction) })));
  else if (name === "crash" || name === "rolling" || name === "storm")
    table(r.runs.map((x) => ({ balancer: x.balancer, broker: x.broker || "redis-pubsub", ...(name === "storm" ? { kill: x.kill } : {}),
      dropped: x.dropped, late: x.late, "back p50 ms": x.back_p50_ms && x.back_p50_ms.toFixed(0),
      "back max ms": x.back_max_ms && x.back_max_ms.toFixed(0), "never back": x.never_back,
      "lost (stayed)": x.lost_undisturbed, "lost (dropped)": x.lost_dropped, unrecovered: x.unrecovered,
      "p99 undisturbed ms": x.latency.undisturbed_in_window.p99_ms,
      ...(name === "rolling" ? x.after : {}) })));
  else if (name === "scale")
    table(r.runs.map((x) => ({ balancer: x.balancer, "existing moved": x.existing_moved,
      "remapped": pct(x.remapped_fraction), ...Object.fromEntries(Object.entries(x.new_per_instance).map(([k, v]) => [`new on ${k}`, v])) })));
  console.log(`(${r.seconds.toFixed(0)} s)`);
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
