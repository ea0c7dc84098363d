// Tokens for the Node tests and demos: HS256 JWTs signed with Node's crypto,
// as an application's login service would sign them; the instances verify
// them (--auth jwt --auth-key FILE).
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const base64url = (b) => Buffer.from(b).toString("base64url");

// A token for `user`, valid `seconds` from now, with `claims` added.
function mint(secret, user, seconds = 3600, claims = {}) {
  const head = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = base64url(JSON.stringify({ sub: user, exp: Math.floor(Date.now() / 1000) + seconds, ...claims }));
  const sig = crypto.createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

// A new random secret written to `dir`/token-key; returns { secret, file }.
function makeKey(dir) {
  const secret = crypto.randomBytes(32).toString("base64url");
  const file = path.join(dir, "token-key");
  fs.writeFileSync(file, secret + "\n", { mode: 0o600 });
  return { secret, file };
}

module.exports = { mint, makeKey };
