// The peer the benchmarks compare backplane with: a Socket.IO 4 server that
// speaks the reference server's protocol in Socket.IO events, its instances
// joined through one Redis by @socket.io/redis-adapter, as its documentation
// sets it up. Run two on one Redis and the load generator's
// `--protocol socketio` measures them as it measures backplane-instance.
//
//   (cd benchmarks/peers && npm ci)
//   node benchmarks/peers/socketio.js --port 0 --redis redis://127.0.0.1:6379 --instance-id a
//
// (benchmarks/run.sh installs the packages into its build directory instead,
// and points NODE_PATH at them.)
//
// Prints "listening on PORT" once it serves. A client connects to
// /socket.io/?EIO=4&transport=websocket&user=NAME (WebSocket only: the load
// generator does no long-polling) and is sent the event "message" with
// {"type":"welcome","instance":ID}. It emits "op" with the reference server's
// requests: {"op":"send","text":T} reaches every client of every instance,
// {"op":"send","room":R,"text":T} the members of R, {"op":"join","room":R}
// is answered {"type":"joined","room":R}.
"use strict";
const http = require("http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at > 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

async function main() {
  const port = Number(option("--port", "0"));
  const id = option("--instance-id", String(process.pid));
  const pub = createClient({ url: option("--redis", "redis://127.0.0.1:6379") });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on("error", (e) => console.error(`redis: ${e.message}`));
  await Promise.all([pub.connect(), sub.connect()]);

  const server = http.createServer();
  const io = new Server(server, { transports: ["websocket"], serveClient: false, adapter: createAdapter(pub, sub) });
  io.on("connection", (socket) => {
    const user = String(socket.handshake.query.user || "");
    socket.emit("message", { type: "welcome", instance: id, user });
    socket.on("op", (req) => {
      if (!req || typeof req !== "object") return;
      if (req.op === "join" && typeof req.room === "string") {
        socket.join(req.room);
        socket.emit("message", { type: "joined", room: req.room });
      } else if (req.op === "send" && typeof req.text === "string") {
        const to = typeof req.room === "string" ? io.to(req.room) : io;
        to.emit("message", { type: "message", from: user, text: req.text });
      } else {
        socket.emit("message", { type: "error", error: "bad_request" });
      }
    });
  });
  server.listen(port, "127.0.0.1", () => console.log(`listening on ${server.address().port}`));

  const stop = () => {
    io.close();
    Promise.allSettled([pub.quit(), sub.quit()]).then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((e) => {
  console.error(`socketio.js: ${e.message}`);
  process.exit(1);
});
