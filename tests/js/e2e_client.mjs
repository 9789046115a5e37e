// Drives the real tokenware.js against a Python server (tests/handshake/test_node_client.py).
// Env: TW_BASE (loopback URL), TW_CSRF, TW_ORIGIN. Exits non-zero on the first failure.
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const Tokenware = require("../../tokenware/static/tokenware.js");
const base = process.env.TW_BASE;
const csrf = process.env.TW_CSRF;
const origin = process.env.TW_ORIGIN;
const headers = { Origin: origin, Cookie: `tokenware_csrf=${csrf}` };
const uri = `${base}/tokenware/handshake`;
const results = {};

async function me(token) {
  const r = await fetch(`${base}/api/me`, { headers: { Authorization: `Bearer ${token}` } });
  return r.status;
}

// 1. header delivery, then the token works on the API
const tok = await Tokenware.handshake({ uri, csrfToken: csrf, origin, headers });
assert.equal(tok.token_type, "Bearer");
assert.ok(tok.exp > 0 && tok.expires_in > 0);
assert.equal(await me(tok.access_token), 200);
results.header = true;

// 2. body delivery
const tok2 = await Tokenware.handshake({ uri: `${uri}?delivery=body`, csrfToken: csrf, origin, headers });
assert.equal(await me(tok2.access_token), 200);
assert.notEqual(tok2.access_token, tok.access_token);
results.body = true;

// 3. wrong CSRF token -> clean failure
await assert.rejects(Tokenware.handshake({ uri, csrfToken: csrf + "x", origin, headers }),
  (e) => e instanceof Tokenware.HandshakeError && e.code === "csrf_failed" && e.status === 403);
// wrong origin: our transcript would not match either, but the server refuses first
await assert.rejects(Tokenware.handshake({ uri, csrfToken: csrf, origin, headers: { ...headers, Origin: "https://evil.example" } }),
  (e) => e.code === "origin_rejected" && e.status === 403);
results.refusals = true;

// 4. a tampered reply (one ciphertext bit flipped by the server) is rejected
await assert.rejects(Tokenware.handshake({ uri: `${uri}?tamper=1`, csrfToken: csrf, origin, headers }),
  (e) => e.code === "tampered_reply");
results.tampered = true;

// 5. client(): one handshake for many calls, even concurrent ones
let serverNow = Number(await (await fetch(`${base}/admin/now`)).text());
const api = Tokenware.client({ uri, csrfToken: csrf, origin, headers, now: () => serverNow });
const statuses = await Promise.all([1, 2, 3, 4, 5].map(() => api.fetch(`${base}/api/me`).then((r) => r.status)));
assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
assert.equal(api.handshakes, 1);

// 6. the server says 401 (its clock moved past exp, ours did not): one new handshake, one retry
await fetch(`${base}/admin/advance?s=1000`, { method: "POST" });
let r = await api.fetch(`${base}/api/me`);
assert.equal(r.status, 200);
assert.equal(api.handshakes, 2);

// 7. shortly before expiry the client renews before sending
serverNow = Number(await (await fetch(`${base}/admin/now`)).text());
const before = Number(await (await fetch(`${base}/admin/unauthorized`)).text());
serverNow += 900 - 5; // 5 s before exp (lifetime 900 s, margin 30 s)
r = await api.fetch(`${base}/api/me`);
assert.equal(r.status, 200);
assert.equal(api.handshakes, 3);
assert.equal(Number(await (await fetch(`${base}/admin/unauthorized`)).text()), before);
results.client = true;

// 8. the token is never written to any storage API
assert.equal(typeof globalThis.localStorage, "undefined");
process.stdout.write(JSON.stringify(results) + "\n");
