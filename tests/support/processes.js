// What the Node tests share: the processes they start, a private temporary
// directory, free ports, and waits on a condition. Every process started
// here is killed, and the directory removed, by cleanup(), also on SIGINT
// and SIGTERM.
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const net = require("net");
const os = require("os");
const path = require("path");

const children = [];
let tmp = null;

// A directory of this test's own, made on first use.
function tmpDir() {
  if (!tmp) tmp = fs.mkdtempSync(path.join(os.tmpdir(), "backplane-test-"));
  return tmp;
}

function cleanup() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => { cleanup(); process.exit(1); });

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// Starts argv; what it writes is kept in child.output, printed if the test fails.
function start(argv, name) {
  const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  child.output = "";
  child.stdout.on("data", (d) => { child.output += d; });
  child.stderr.on("data", (d) => { child.output += d; });
  child.name = name;
  return child;
}

function dumpOutputs() {
  for (const c of children) if (c.output) console.error(`--- ${c.name} output ---\n${c.output}`);
}

// Polls predicate until it gives a truthy value, which it returns.
async function waitFor(what, predicate, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 20)); // the poll period
  }
}

// Resolves with child's exit code, or null if it still runs after timeoutMs.
function exited(child, timeoutMs) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const t = setTimeout(() => resolve(null), timeoutMs);
    child.on("exit", (code) => { clearTimeout(t); resolve(code); });
  });
}

function redisPing(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => s.write("PING\r\n"));
    s.on("data", (d) => { s.destroy(); resolve(d.toString().startsWith("+PONG")); });
    s.on("error", () => resolve(false));
  });
}

// A private redis-server on loopback (REDIS_SERVER, default from PATH),
// nothing saved; resolves with its port once it answers PING.
async function startRedis() {
  const port = await freePort();
  start([process.env.REDIS_SERVER || "redis-server", "--port", String(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", tmpDir()], "redis");
  await waitFor("redis-server", () => redisPing(port));
  return port;
}

// Runs the test: exit 0 with `passed` printed, or 1 with why and what the
// processes wrote; everything started is stopped either way, and after
// timeoutMs at the latest.
function run(main, passed, timeoutMs = 60000) {
  const watchdog = setTimeout(() => { console.error("FAIL: timed out"); dumpOutputs(); cleanup(); process.exit(1); },
                              timeoutMs);
  main().then(() => {
    clearTimeout(watchdog);
    cleanup();
    console.log("PASS: " + passed);
    process.exit(0);
  }, (e) => {
    clearTimeout(watchdog);
    console.error("FAIL:", e.message);
    dumpOutputs();
    cleanup();
    process.exit(1);
  });
}

module.exports = { tmpDir, cleanup, freePort, start, waitFor, exited, startRedis, run };
