// The Kubernetes manifests in lb/k8s, checked against the real server: every
// flag the Deployment passes is one that `backplane-instance --help` lists;
// the instance, started with the manifest's own arguments (on a private
// redis-server, loopback, a free port), answers the probes' paths with 200
// and exports the HPA's metric; the Services and the HPA point at what the
// Deployment declares; and SIGTERM, with a client that never answers the
// close handshake, ends in exit 0 within terminationGracePeriodSeconds.
//
//   (cd tests/browser && npm ci)
//   NODE_PATH=tests/browser/node_modules node tests/lb/k8s.test.js path/to/backplane-instance
//
// Environment: REDIS_SERVER (default redis-server from PATH). Exits 0 on
// success, 1 on failure; every process it started is stopped either way,
// also on SIGINT/SIGTERM.
"use strict";
const YAML = require("yaml");
const { spawnSync } = require("child_process");
const crypto = require("crypto");
const fs = require("fs");
const net = require("net");
const path = require("path");

const instanceBinary = process.argv[2];
if (!instanceBinary) {
  console.error("usage: node k8s.test.js path/to/backplane-instance");
  process.exit(2);
}
const manifestDir = path.join(__dirname, "..", "..", "lb", "k8s");
const podName = "backplane-5f7d9c6b8-x2k4q"; // what $(POD_NAME) becomes in a cluster
const { freePort, start, waitFor, exited, startRedis, run, tmpDir } = require("../support/processes.js");
const { mint, makeKey } = require("../support/tokens.js");

function check(condition, what) {
  if (!condition) throw new Error(what);
  console.log("ok -", what);
}

async function get(port, urlPath) {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`);
  return { status: res.status, body: await res.text() };
}

/** A WebSocket client that reads frames and never answers a close, over a
    raw socket (Node 20 has no WebSocket client). Resolves with the client,
    whose `closed` resolves with the close code the server sent. */
function stalledClient(port, token) {
  return new Promise((resolve, reject) => {
    const key = crypto.randomBytes(16).toString("base64");
    const s = net.connect(port, "127.0.0.1", () => {
      s.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
              `Authorization: Bearer ${token}\r\n` +
              `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const client = { socket: s, frames: [], closeCode: null };
    client.closed = new Promise((r) => { client.onClose = r; });
    s.on("error", (e) => (upgraded ? null : reject(e)));
    s.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        if (!head.startsWith("HTTP/1.1 101")) return reject(new Error("handshake refused: " + head.split("\r\n")[0]));
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve(client);
      }
      /* Unmasked server frames: opcode, 7/16/64-bit length, payload. */
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 0x7f;
        let at = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
        else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); at = 10; }
        if (buf.length < at + len) return;
        const opcode = buf[0] & 0x0f;
        const payload = buf.subarray(at, at + len);
        buf = buf.subarray(at + len);
        if (opcode === 0x8) {
          client.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
          client.onClose(client.closeCode); // and no close frame back
        } else {
          client.frames.push(payload.toString());
        }
      }
    });
  });
}

/** Every YAML document of every manifest, with the file it came from. */
function loadManifests() {
  const docs = [];
  const files = fs.readdirSync(manifestDir).filter((f) => /\.ya?ml$/.test(f)).sort();
  for (const f of files) {
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(manifestDir, f), "utf8"))) {
      if (doc.errors.length) throw new Error(`${f}: ${doc.errors[0].message}`);
      const value = doc.toJS();
      if (value !== null && value !== undefined) docs.push({ file: f, ...value });
    }
  }
  return docs;
}

/** A port of the container by number or by name, as Services and probes give it. */
function resolvePort(container, port) {
  if (typeof port === "number") return port;
  if (/^\d+$/.test(String(port))) return Number(port);
  const named = (container.ports || []).find((p) => p.name === port);
  return named ? named.containerPort : undefined;
}

/** The value after `flag` in args, and its index. */
function flagValue(args, flag) {
  const i = args.indexOf(flag);
  return i >= 0 && i + 1 < args.length ? { index: i + 1, value: args[i + 1] } : null;
}

async function main() {
  const docs = loadManifests();
  const byKind = (kind) => docs.filter((d) => d.kind === kind);
  check(docs.every((d) => d.apiVersion && d.kind && d.metadata && d.metadata.name),
    `${docs.length} YAML documents in lb/k8s, each with apiVersion, kind and metadata.name`);

  // The Deployment that runs backplane-instance, and its container.
  const deployments = byKind("Deployment").filter((d) =>
    d.spec.template.spec.containers.some((c) => /^backplane-instance(:|$)/.test(c.image)));
  check(deployments.length === 1, "one Deployment runs the image backplane-instance");
  const deployment = deployments[0];
  const pod = deployment.spec.template.spec;
  const container = pod.containers.find((c) => /^backplane-instance(:|$)/.test(c.image));
  const args = [...(container.command || []).slice(1), ...(container.args || [])].map(String);
  check(args.length > 0, `the container's arguments: ${args.join(" ")}`);
  const podLabels = deployment.spec.template.metadata.labels || {};
  const selects = (selector) => Object.entries(selector || {}).every(([k, v]) => podLabels[k] === v);
  check(selects(deployment.spec.selector.matchLabels), "the Deployment's selector matches its pod template");

  // Every flag the manifest uses is one the binary lists.
  const help = spawnSync(instanceBinary, ["--help"], { encoding: "utf8", timeout: 10000 });
  check(help.status === 0 || help.status === 2, `--help exits 0 or 2 (it exited ${help.status})`);
  const usage = `${help.stdout}\n${help.stderr}`;
  const flags = args.filter((a) => a.startsWith("--"));
  for (const flag of flags) {
    const listed = new RegExp(`(^|[\\s\\[])${flag.replace(/[-]/g, "\\-")}([\\s\\]=]|$)`, "m").test(usage);
    check(listed, `${flag} is listed by --help`);
  }
  for (const flag of ["--port", "--address", "--instance-id", "--broker", "--redis"])
    check(flagValue(args, flag) !== null, `the manifest passes ${flag} with a value`);

  // The instance id is the pod's name, through the downward API.
  const id = flagValue(args, "--instance-id").value;
  const refs = [...args.join(" ").matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)].map((m) => m[1]);
  check(id === "$(POD_NAME)", "--instance-id is $(POD_NAME)");
  for (const name of refs) {
    const env = (container.env || []).find((e) => e.name === name);
    check(env !== undefined, `$(${name}) is defined in the container's env`);
    if (name === "POD_NAME") {
      check(env.valueFrom && env.valueFrom.fieldRef && env.valueFrom.fieldRef.fieldPath === "metadata.name",
        "POD_NAME comes from the downward API (fieldRef metadata.name)");
    }
  }

  // Ports: containerPort is --port, the Services and probes target it.
  const manifestPort = Number(flagValue(args, "--port").value);
  check((container.ports || []).some((p) => p.containerPort === manifestPort),
    `containerPort equals --port (${manifestPort})`);
  const services = byKind("Service");
  for (const name of ["backplane", "backplane-sticky"]) {
    const svc = services.find((s) => s.metadata.name === name);
    check(svc !== undefined, `Service ${name} exists`);
    check((svc.spec.type || "ClusterIP") === "ClusterIP", `Service ${name} is ClusterIP`);
    check(selects(svc.spec.selector) && Object.keys(svc.spec.selector || {}).length > 0,
      `Service ${name} selects the Deployment's pods`);
    check(svc.spec.ports.length > 0 && svc.spec.ports.every((p) => resolvePort(container, p.targetPort ?? p.port) === manifestPort),
      `Service ${name} targets port ${manifestPort}`);
  }
  const stateless = services.find((s) => s.metadata.name === "backplane");
  check((stateless.spec.sessionAffinity || "None") === "None", "Service backplane has no session affinity");
  const sticky = services.find((s) => s.metadata.name === "backplane-sticky");
  check(sticky.spec.sessionAffinity === "ClientIP", "Service backplane-sticky has sessionAffinity ClientIP");
  const stickyTimeout = (((sticky.spec.sessionAffinityConfig || {}).clientIP) || {}).timeoutSeconds;
  check(Number.isInteger(stickyTimeout) && stickyTimeout > 0, `backplane-sticky's affinity lasts ${stickyTimeout} s`);

  // The Redis the manifest names is one the manifests provide.
  const redisUrl = new URL(flagValue(args, "--redis").value);
  const redisService = services.find((s) => s.metadata.name === redisUrl.hostname);
  check(redisService && redisService.spec.ports.some((p) => p.port === Number(redisUrl.port || 6379)),
    `Service ${redisUrl.hostname} serves the --redis URL's port`);

  // Probes.
  const probes = { readiness: container.readinessProbe, liveness: container.livenessProbe };
  for (const [kind, probe] of Object.entries(probes)) {
    check(probe && probe.httpGet && probe.httpGet.path === "/healthz", `the ${kind} probe is GET /healthz`);
    check(resolvePort(container, probe.httpGet.port) === manifestPort, `the ${kind} probe's port is ${manifestPort}`);
  }

  // The HPA: the Deployment by name, the metric as a Pods metric.
  const hpas = byKind("HorizontalPodAutoscaler");
  check(hpas.length === 1 && hpas[0].apiVersion === "autoscaling/v2", "one HorizontalPodAutoscaler, autoscaling/v2");
  const hpa = hpas[0];
  const target = hpa.spec.scaleTargetRef;
  check(target.kind === "Deployment" && target.apiVersion === "apps/v1" && target.name === deployment.metadata.name,
    `the HPA targets Deployment ${deployment.metadata.name}`);
  check(hpa.spec.minReplicas === 2 && hpa.spec.maxReplicas === 20, "the HPA scales between 2 and 20 pods");
  const podsMetric = (hpa.spec.metrics || []).find((m) => m.type === "Pods");
  check(podsMetric && podsMetric.pods.target.type === "AverageValue" && String(podsMetric.pods.target.averageValue) === "10000",
    "the HPA's Pods metric targets an average of 10000");
  const metricName = podsMetric.pods.metric.name;

  // The drain fits the grace period: 1 s for clients to close by themselves,
  // 5 s for close handshakes, 2 s for presence.
  const grace = pod.terminationGracePeriodSeconds;
  check(Number.isInteger(grace) && grace >= 8, `terminationGracePeriodSeconds (${grace}) is at least 8`);

  // Tokens: verified with a key from a Secret, mounted read-only where
  // --auth-key looks.
  check(flagValue(args, "--auth") === null || flagValue(args, "--auth").value === "jwt", "--auth is jwt (the default)");
  const keyPath = flagValue(args, "--auth-key");
  check(keyPath !== null, `the manifest passes --auth-key (${keyPath && keyPath.value})`);
  const mount = (container.volumeMounts || []).find((m) => keyPath.value.startsWith(m.mountPath + "/"));
  check(mount && mount.readOnly === true, `--auth-key is in the read-only mount ${mount && mount.mountPath}`);
  const volume = (pod.volumes || []).find((v) => v.name === mount.name);
  check(volume && volume.secret && volume.secret.secretName,
    `the mount is the Secret ${volume && volume.secret && volume.secret.secretName}`);

  // Run it: the manifest's arguments, with loopback, free ports, a private Redis and a key of its own.
  const redisPort = await startRedis();
  const port = await freePort();
  const key = makeKey(tmpDir());
  const runArgs = args.slice();
  runArgs[flagValue(args, "--port").index] = String(port);
  runArgs[flagValue(args, "--address").index] = "127.0.0.1";
  runArgs[flagValue(args, "--redis").index] = `redis://127.0.0.1:${redisPort}`;
  runArgs[keyPath.index] = key.file;
  for (let i = 0; i < runArgs.length; ++i) runArgs[i] = runArgs[i].replace(/\$\(POD_NAME\)/g, podName);
  console.log("# running", path.basename(instanceBinary), runArgs.join(" "));
  const instance = start([instanceBinary, ...runArgs], "instance");
  const listening = await waitFor("the instance to listen",
    () => (instance.output.match(/^listening on (\d+) instance (\S+)/m) || null) || (instance.exitCode !== null && "exited"));
  check(listening !== "exited" && Number(listening[1]) === port && listening[2] === podName,
    `the instance listens on the free port as ${podName}`);
  await waitFor("the instance to reach Redis", async () =>
    /^backplane_redis_connected\{[^}]*\} 1$/m.test((await get(port, "/metrics")).body));

  for (const [kind, probe] of Object.entries(probes)) {
    const res = await get(port, probe.httpGet.path);
    check(res.status === 200, `the ${kind} probe's path answers ${res.status} ${res.body.trim()}`);
  }
  const metrics = (await get(port, "/metrics")).body;
  const series = new RegExp(`^${metricName}\\{([^}]*)\\} (\\d+(\\.\\d+)?)$`, "m").exec(metrics);
  check(series !== null, `GET /metrics has the series ${metricName}`);
  check(series[1].includes(`instance="${podName}"`), `${metricName} is labelled instance="${podName}"`);

  // SIGTERM with a client that never answers the close: the drain has to
  // give up on it (the transport's close timeout) before the instance exits.
  const client = await stalledClient(port, mint(key.secret, "k8s-test-user"));
  await waitFor("the client to count", async () =>
    new RegExp(`^${metricName}\\{[^}]*\\} 1$`, "m").test((await get(port, "/metrics")).body));
  const t0 = Date.now();
  instance.kill("SIGTERM");
  const code = await client.closed;
  check(code === 1001, `the drain closes the WebSocket with ${code} (going away)`);
  const during = await get(port, probes.readiness.httpGet.path);
  check(during.status === 503 && during.body.trim() === "draining",
    `during the drain the readiness path answers ${during.status} ${during.body.trim()}`);
  const exitCode = await exited(instance, grace * 1000 - (Date.now() - t0));
  const took = (Date.now() - t0) / 1000;
  check(exitCode === 0, `after SIGTERM the instance exits 0 within the grace period (exit ${exitCode} after ${took.toFixed(1)} s of ${grace} s)`);
  client.socket.destroy();
}

run(main, "the manifests in lb/k8s run the real backplane-instance as they say");
