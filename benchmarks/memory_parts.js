// Where an idle connection's memory goes: heaptrack's stacks of an instance
// at its peak (the connections held), sorted into parts.
//
//   heaptrack_print -f heap.zst --flamegraph-cost-type peak -F stacks.txt
//   node benchmarks/memory_parts.js stacks.txt CONNECTIONS > heap_parts.json
//
// Each line of stacks.txt is one call stack, root first, frames separated by
// ";", then the bytes it held at the peak. A stack's part is that of its
// deepest frame that names one (a part's own frames before the code that
// called it: the send queue websocketpp's constructor allocates is the
// connection's, not the hub's that opened it).
"use strict";
const fs = require("fs");

const parts = [
  { id: "websocketpp_object", name: "websocketpp connection object (its 1 KiB read buffer inside)",
    frame: /__shared_count<>\(websocketpp::connection<>\*/ },
  { id: "websocketpp_members", name: "websocketpp connection: what its constructor allocates (mostly its send queue's first block)",
    frame: /websocketpp::connection<>::connection\(/ },
  { id: "processor", name: "WebSocket protocol processor (websocketpp hybi13)", frame: /websocketpp::processor::hybi13/ },
  { id: "handshake", name: "handshake leftovers (the response's bytes, the URI, emptied request and response)",
    frame: /get_raw|get_uri_from_host|websocketpp::http::parser|release_handshake/ },
  { id: "socket", name: "socket (Asio's socket and its reactor state)",
    frame: /epoll_reactor|reactive_socket|basic_socket|init_asio/ },
  { id: "hub", name: "hub: registry, user index, presence", frame: /backplane::detail::registry|basic_hub<>::open|backplane::locator::/ },
  { id: "server", name: "reference server: identity, token expiry, rate buckets", frame: /demo::/ },
];
const other = { id: "other", name: "not per connection (Redis buffers, start-up), spread over the connections" };

const [file, n] = [process.argv[2], Number(process.argv[3])];
if (!file || !(n > 0)) {
  console.error("usage: node memory_parts.js stacks.txt CONNECTIONS");
  process.exit(2);
}
const bytes = Object.fromEntries([...parts, other].map((p) => [p.id, 0]));
for (const line of fs.readFileSync(file, "utf8").split("\n")) {
  const at = line.lastIndexOf(" ");
  const value = Number(line.slice(at + 1));
  if (at < 0 || !(value > 0)) continue;
  const frames = line.slice(0, at).split(";").reverse(); // deepest first
  const part = frames.reduce((found, f) => found || parts.find((p) => p.frame.test(f)), null) || other;
  bytes[part.id] += value;
}
const total = Object.values(bytes).reduce((a, b) => a + b, 0);
process.stdout.write(JSON.stringify({
  connections: n, heap_bytes: total, heap_per_connection: total / n,
  parts: [...parts, other].map((p) => ({ id: p.id, name: p.name, bytes: bytes[p.id], per_connection: bytes[p.id] / n })),
}, null, 1) + "\n");
