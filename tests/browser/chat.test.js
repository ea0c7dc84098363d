// The chat page in a real browser: a private redis-server, two
// backplane-instance processes on it, and headless Chromium (Debian's
// chromium, driven by playwright-core) with one page on each instance. Each
// page sends a message and both must show both.
//
//   npm ci && node chat.test.js path/to/backplane-instance
//
// Environment: CHROMIUM (default /usr/bin/chromium), REDIS_SERVER (default
// redis-server from PATH). Exits 0 on success, 1 on failure; every process it
// started is stopped either way, also on SIGINT/SIGTERM.
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");

const instanceBinary = process.argv[2];
if (!instanceBinary) {
  console.error("usage: node chat.test.js path/to/backplane-instance");
  process.exit(2);
}
const { tmpDir, start, waitFor, exited, startRedis, run } = require("../support/processes.js");
const { mint, makeKey } = require("../support/tokens.js");

async function metric(port, name) {
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = body.match(new RegExp("^" + name + "\\{[^}]*\\} (\\d+)$", "m"));
  return m ? Number(m[1]) : -1;
}

async function startInstance(id, redisPort, keyFile) {
  const child = start([instanceBinary, "--port", "0", "--address", "127.0.0.1", "--instance-id", id,
                       "--broker", "redis-pubsub", "--redis", `redis://127.0.0.1:${redisPort}`,
                       "--auth", "jwt", "--auth-key", keyFile], id);
  const port = Number(await waitFor(`instance ${id} to listen`,
    () => (child.output.match(/^listening on (\d+)/m) || [])[1]));
  await waitFor(`instance ${id} to reach Redis`, async () => (await metric(port, "backplane_redis_connected")) === 1);
  return { child, port };
}

async function main() {
  const redisPort = await startRedis();
  // Tokens, as a login service would sign them: the page presents its own
  // as a WebSocket subprotocol.
  const key = makeKey(tmpDir());
  const a = await startInstance("a", redisPort, key.file);
  const b = await startInstance("b", redisPort, key.file);

  const context = await chromium.launchPersistentContext(path.join(tmpDir(), "profile"), {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const alice = await context.newPage();
    const bob = await context.newPage();
    await alice.goto(`http://127.0.0.1:${a.port}/?token=${mint(key.secret, "alice")}`);
    await bob.goto(`http://127.0.0.1:${b.port}/?token=${mint(key.secret, "bob")}`);
    for (const [page, id, user] of [[alice, "a", "alice"], [bob, "b", "bob"]]) {
      await page.waitForFunction(([want, who]) => document.getElementById("instance").textContent === want &&
        document.getElementById("status").textContent === "connected" &&
        document.getElementById("user").textContent === who, [id, user], { timeout: 10000 });
    }

    async function say(page, text) {
      await page.fill("#text", text);
      await page.click("#send");
    }
    async function shows(page, line) {
      await page.waitForFunction((want) => [...document.querySelectorAll("#log div")]
        .some((d) => d.textContent === want), line, { timeout: 5000 });
    }
    await say(alice, "hello from alice");
    await shows(alice, "[all] alice: hello from alice  (via a)");
    await shows(bob, "[all] alice: hello from alice  (via b)");
    await say(bob, "hello from bob");
    await shows(bob, "[all] bob: hello from bob  (via b)");
    await shows(alice, "[all] bob: hello from bob  (via a)");
  } finally {
    await context.close();
  }

  for (const inst of [a, b]) {
    inst.child.kill("SIGTERM");
    const code = await exited(inst.child, 5000);
    if (code !== 0) throw new Error(`instance ${inst.child.name} exited with ${code} after SIGTERM`);
  }
}

run(main, "two pages on two instances exchanged messages");
