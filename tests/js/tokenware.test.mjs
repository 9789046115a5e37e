// Unit tests of tokenware.js under Node's test runner (node --test tests/js),
// against vectors written by the Python server code (tests/js/make_vectors.py).
import test from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import vm from "node:vm";

const here = fileURLToPath(new URL(".", import.meta.url));
const scriptPath = here + "../../tokenware/static/tokenware.js";
const require = createRequire(import.meta.url);
const Tokenware = require(scriptPath);
const V = JSON.parse(readFileSync(here + "vectors.json", "utf8"));
const I = Tokenware._internal;
const subtle = globalThis.crypto.subtle;

const bytes = (hex) => Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));
const flip = (arr, i = 0) => {
  const out = Uint8Array.from(arr);
  out[(i + out.length) % out.length] ^= 1;
  return out;
};

async function clientState() {
  const privateKey = await subtle.importKey(
    "jwk", { ...V.client.jwk, ext: false }, { name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits", "deriveKey"]);
  return { privateKey, epk: I.unb64u(V.client.epk, 65), nonce: I.unb64u(V.client.nonce, 16) };
}

test("loads as CommonJS, as a classic script and as an ES module", async () => {
  assert.equal(typeof Tokenware.handshake, "function");
  assert.equal(Tokenware.version, "v1");
  const source = readFileSync(scriptPath, "utf8");
  const window = { crypto: globalThis.crypto };
  window.window = window;
  vm.runInNewContext(source, { self: window, window, TextEncoder, TextDecoder, globalThis: window }, { filename: "tokenware.js" });
  assert.equal(typeof window.Tokenware.client, "function");
  // As an ES module (strict, no `this`, no `module`): a copy with the .mjs extension.
  const dir = mkdtempSync(join(tmpdir(), "tw-esm-"));
  writeFileSync(join(dir, "tokenware.mjs"), source);
  delete globalThis.Tokenware;
  const ns = await import(pathToFileURL(join(dir, "tokenware.mjs")).href);
  assert.deepEqual(Object.keys(ns), []);
  assert.equal(typeof globalThis.Tokenware.handshake, "function");
  assert.notEqual(globalThis.Tokenware, Tokenware);
});

test("base64url matches Python and decodes strictly", () => {
  for (const { hex, text } of V.b64u) {
    assert.equal(I.b64u(bytes(hex)), text);
    assert.deepEqual(I.unb64u(text), bytes(hex));
  }
  for (const bad of V.b64u_invalid) {
    assert.throws(() => I.unb64u(bad), Tokenware.HandshakeError, bad);
  }
  assert.throws(() => I.unb64u(V.client.nonce, 17), /wrong field length/);
});

test("transcript hash equals the Python TH", async () => {
  const th = await I.transcriptHash(V.origin, I.unb64u(V.client.epk), I.unb64u(V.client.nonce),
    I.unb64u(V.server.epk), I.unb64u(V.server.nonce), V.csrf);
  assert.equal(I.b64u(th), V.th);
});

test("request header shape: v1.<87>.<22>, non-extractable single-use key", async () => {
  const r = await I.newRequest();
  assert.match(r.header, /^v1\.[A-Za-z0-9_-]{87}\.[A-Za-z0-9_-]{22}$/);
  assert.equal(r.header.length, 113);
  assert.equal(r.epk[0], 4);
  assert.equal(r.privateKey.extractable, false);
  await assert.rejects(subtle.exportKey("pkcs8", r.privateKey));
  const other = await I.newRequest();
  assert.notEqual(other.header, r.header);
});

test("opens the Python reply (header and body delivery)", async () => {
  const state = await clientState();
  const fromHeader = await I.openReply(state, I.parseReply(V.reply_header, null), V.origin, V.csrf);
  assert.deepEqual(fromHeader, V.plaintext);
  const fromBody = await I.openReply(state, I.parseReply(null, V.reply_body), V.origin, V.csrf);
  assert.deepEqual(fromBody, V.plaintext);
});

for (const field of ["ct", "tag", "iv", "n", "epk-substituted", "csrf", "origin"]) {
  test(`tampered reply is rejected: ${field}`, async () => {
    const state = await clientState();
    const reply = I.parseReply(V.reply_header, null);
    let origin = V.origin;
    let csrf = V.csrf;
    if (field === "ct") reply.ct = flip(reply.ct);
    else if (field === "tag") reply.ct = flip(reply.ct, -1);
    else if (field === "iv") reply.iv = flip(reply.iv);
    else if (field === "n") reply.n = flip(reply.n);
    else if (field === "epk-substituted") reply.epk = (await I.newRequest()).epk;
    else if (field === "csrf") csrf = V.csrf + "x";
    else origin = "https://evil.example";
    await assert.rejects(I.openReply(state, reply, origin, csrf), (e) => e instanceof Tokenware.HandshakeError && e.code === "tampered_reply");
  });
}

test("malformed replies and bad server points are rejected before decryption", async () => {
  const state = await clientState();
  for (const bad of [V.reply_header + ".", "v2" + V.reply_header.slice(2), V.reply_header.replace(".", ","), "v1.x.y.z.w"]) {
    assert.throws(() => I.parseReply(bad, null), Tokenware.HandshakeError);
  }
  assert.throws(() => I.parseReply(null, { v: 1 }), /no handshake reply/);
  assert.throws(() => I.parseReply(null, { ...V.reply_body, v: 2 }), Tokenware.HandshakeError);
  const offCurve = I.parseReply(V.reply_header, null);
  offCurve.epk = flip(offCurve.epk, -1);
  await assert.rejects(I.openReply(state, offCurve, V.origin, V.csrf), (e) => e.code === "invalid_reply");
  const compressed = I.parseReply(V.reply_header, null);
  compressed.epk = Uint8Array.from(compressed.epk);
  compressed.epk[0] = 2;
  await assert.rejects(I.openReply(state, compressed, V.origin, V.csrf), (e) => e.code === "invalid_reply");
});

test("handshake() reports server refusals with their code and never sends without a CSRF token", async () => {
  const calls = [];
  const fakeFetch = async (uri, init) => {
    calls.push({ uri, init });
    return new Response(JSON.stringify({ error: "csrf_failed" }), { status: 403 });
  };
  await assert.rejects(
    Tokenware.handshake({ uri: "/hs", csrfToken: "t", origin: V.origin, fetch: fakeFetch }),
    (e) => e.code === "csrf_failed" && e.status === 403);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].init.method, "POST");
  assert.equal(calls[0].init.headers["X-CSRF-Token"], "t");
  assert.match(calls[0].init.headers["Tokenware-Handshake"], /^v1\./);
  await assert.rejects(Tokenware.handshake({ uri: "/hs", origin: V.origin, fetch: fakeFetch }), (e) => e.code === "csrf_failed");
  assert.equal(calls.length, 1);
});

test("a reply made for another request is rejected (replayed server answer)", async () => {
  // The server's reply to the vector request, served to a fresh handshake.
  const fakeFetch = async () => new Response("{}", { status: 200, headers: { "Tokenware-Handshake": V.reply_header } });
  await assert.rejects(
    Tokenware.handshake({ csrfToken: V.csrf, origin: V.origin, fetch: fakeFetch }),
    (e) => e.code === "tampered_reply");
});
