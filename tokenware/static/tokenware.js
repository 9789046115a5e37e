/*! tokenware.js — the browser client of TWHS1, the tokenware handshake (v1).
 *
 * No dependencies: WebCrypto (crypto.subtle, crypto.getRandomValues) and fetch.
 * Loads as a classic script (window.Tokenware), as an ES module
 * (`import "/tokenware.js"` then globalThis.Tokenware) and under CommonJS.
 *
 *   const { access_token } = await Tokenware.handshake({ uri: "/tokenware/handshake" });
 *   const api = Tokenware.client({ uri: "/tokenware/handshake" });
 *   const res = await api.fetch("/api/me");   // Authorization: Bearer … attached
 *
 * Protocol: reference/security.md §2 (docs/handshake.md). Each handshake uses a
 * fresh, non-extractable ECDH P-256 key pair, used once. The reply is bound to
 * its request (origin, both keys, both nonces, the CSRF token): any change
 * makes AES-GCM decryption fail and the handshake is rejected.
 * What it cannot do: protect the token from script running in this page, or
 * replace TLS. The token lives in memory only (never localStorage).
 */
(function (root, factory) {
  "use strict";
  var api = factory(root);
  if (typeof module === "object" && module && typeof module.exports === "object") {
    module.exports = api;
  }
  if (root) {
    root.Tokenware = api;
  }
})(typeof globalThis !== "undefined" ? globalThis : typeof self !== "undefined" ? self : this, function (root) {
  "use strict";

  var VERSION = "v1";
  var LABEL = "tokenware-hs-v1";
  var DEFAULT_URI = "/tokenware/handshake";
  var DEFAULT_HEADER = "Tokenware-Handshake";
  var DEFAULT_CSRF_HEADER = "X-CSRF-Token";
  var DEFAULT_CSRF_COOKIE = "tokenware_csrf";
  var B64U_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  var REPLY_RE = /^v1\.([A-Za-z0-9_-]{87})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22,8192})$/;
  var enc = new TextEncoder();

  /** A failed handshake: `code` is the server's error code or a client-side reason. */
  class HandshakeError extends Error {
    constructor(message, code, status) {
      super(message);
      this.name = "HandshakeError";
      this.code = code || "handshake_failed";
      this.status = status || 0;
    }
  }

  function subtle() {
    var c = root && root.crypto;
    if (!c || !c.subtle || !c.getRandomValues) {
      throw new HandshakeError("WebCrypto is unavailable (a secure context is required)", "no_webcrypto");
    }
    return c;
  }

  // --- encodings --------------------------------------------------------------

  function b64u(bytes) {
    var out = "";
    var i;
    for (i = 0; i + 2 < bytes.length; i += 3) {
      var n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
      out += B64U_CHARS[n >> 18] + B64U_CHARS[(n >> 12) & 63] + B64U_CHARS[(n >> 6) & 63] + B64U_CHARS[n & 63];
    }
    var rest = bytes.length - i;
    if (rest === 1) {
      var a = bytes[i] << 16;
      out += B64U_CHARS[a >> 18] + B64U_CHARS[(a >> 12) & 63];
    } else if (rest === 2) {
      var b = (bytes[i] << 16) | (bytes[i + 1] << 8);
      out += B64U_CHARS[b >> 18] + B64U_CHARS[(b >> 12) & 63] + B64U_CHARS[(b >> 6) & 63];
    }
    return out;
  }

  /** Strict decoding: base64url alphabet, no padding, canonical, optional exact length. */
  function unb64u(text, length) {
    if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
      throw new HandshakeError("malformed base64url", "invalid_reply");
    }
    var bytes = new Uint8Array(Math.floor((text.length * 6) / 8));
    var acc = 0;
    var bits = 0;
    var j = 0;
    for (var i = 0; i < text.length; i++) {
      acc = (acc << 6) | B64U_CHARS.indexOf(text[i]);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes[j++] = (acc >> bits) & 255;
      }
      acc &= (1 << bits) - 1;
    }
    if (acc !== 0) {
      throw new HandshakeError("non-canonical base64url", "invalid_reply");
    }
    if (length !== undefined && bytes.length !== length) {
      throw new HandshakeError("wrong field length", "invalid_reply");
    }
    return bytes;
  }

  function concat() {
    var total = 0;
    var i;
    for (i = 0; i < arguments.length; i++) total += arguments[i].length;
    var out = new Uint8Array(total);
    var at = 0;
    for (i = 0; i < arguments.length; i++) {
      out.set(arguments[i], at);
      at += arguments[i].length;
    }
    return out;
  }

  // --- key schedule (security.md §2.5) -------------------------------------------

  /** TH = SHA-256(LABEL ‖ 0x00 ‖ u16be(len(ORIGIN)) ‖ ORIGIN ‖ epk_c ‖ n_c ‖ epk_s ‖ n_s ‖ SHA-256(CSRF)). */
  async function transcriptHash(origin, epkC, nC, epkS, nS, csrfToken) {
    var c = subtle();
    var o = enc.encode(origin);
    if (o.length > 0xffff || /[^\x20-\x7e]/.test(origin)) {
      throw new HandshakeError("origin must be ASCII", "bad_origin");
    }
    var csrfHash = new Uint8Array(await c.subtle.digest("SHA-256", enc.encode(csrfToken)));
    var data = concat(enc.encode(LABEL), new Uint8Array([0, o.length >> 8, o.length & 255]), o, epkC, nC, epkS, nS, csrfHash);
    return new Uint8Array(await c.subtle.digest("SHA-256", data));
  }

  /** K as a non-extractable AES-256-GCM decryption key. */
  async function deriveKey(privateKey, serverPublic, nC, nS, th) {
    var c = subtle();
    var ikm;
    try {
      // Preferred: Z never becomes visible to script.
      ikm = await c.subtle.deriveKey({ name: "ECDH", public: serverPublic }, privateKey, "HKDF", false, ["deriveKey"]);
    } catch (e) {
      var z = await c.subtle.deriveBits({ name: "ECDH", public: serverPublic }, privateKey, 256);
      ikm = await c.subtle.importKey("raw", z, "HKDF", false, ["deriveKey"]);
    }
    return c.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: concat(nC, nS), info: concat(enc.encode(LABEL + " key"), th) },
      ikm,
      { name: "AES-GCM", length: 256 },
      false,
      ["decrypt"]
    );
  }

  /** Parse a reply: the header value `v1.<epk>.<n>.<iv>.<ct>` or the body object. */
  function parseReply(headerValue, body) {
    if (typeof headerValue === "string" && headerValue !== "") {
      var m = REPLY_RE.exec(headerValue);
      if (!m) throw new HandshakeError("malformed handshake reply header", "invalid_reply");
      return { epk: unb64u(m[1], 65), n: unb64u(m[2], 16), iv: unb64u(m[3], 12), ct: unb64u(m[4]) };
    }
    if (!body || body.v !== 1 || typeof body.ct !== "string") {
      throw new HandshakeError("no handshake reply in the response", "invalid_reply");
    }
    var ct = unb64u(body.ct);
    if (ct.length < 17 || ct.length > 6144) throw new HandshakeError("bad ciphertext length", "invalid_reply");
    return { epk: unb64u(body.epk, 65), n: unb64u(body.n, 16), iv: unb64u(body.iv, 12), ct: ct };
  }

  /** Decrypt a parsed reply for one request; throws HandshakeError on any mismatch. */
  async function openReply(state, reply, origin, csrfToken) {
    var c = subtle();
    if (reply.epk[0] !== 4) throw new HandshakeError("server key is not an uncompressed point", "invalid_reply");
    var serverPublic;
    try {
      serverPublic = await c.subtle.importKey("raw", reply.epk, { name: "ECDH", namedCurve: "P-256" }, false, []);
    } catch (e) {
      throw new HandshakeError("server key is not a P-256 point", "invalid_reply");
    }
    var th = await transcriptHash(origin, state.epk, state.nonce, reply.epk, reply.n, csrfToken);
    var key = await deriveKey(state.privateKey, serverPublic, state.nonce, reply.n, th);
    var plain;
    try {
      plain = await c.subtle.decrypt({ name: "AES-GCM", iv: reply.iv, additionalData: th, tagLength: 128 }, key, reply.ct);
    } catch (e) {
      throw new HandshakeError("handshake reply failed authentication (tampered or not ours)", "tampered_reply");
    }
    var obj;
    try {
      obj = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
    } catch (e) {
      throw new HandshakeError("handshake payload is not JSON", "invalid_reply");
    }
    if (!obj || typeof obj !== "object" || Array.isArray(obj)) {
      throw new HandshakeError("handshake payload is not an object", "invalid_reply");
    }
    return obj;
  }

  /** A fresh single-use key pair and nonce, and the request header value. */
  async function newRequest() {
    var c = subtle();
    var kp = await c.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits", "deriveKey"]);
    var epk = new Uint8Array(await c.subtle.exportKey("raw", kp.publicKey));
    var nonce = c.getRandomValues(new Uint8Array(16));
    return { privateKey: kp.privateKey, epk: epk, nonce: nonce, header: VERSION + "." + b64u(epk) + "." + b64u(nonce) };
  }

  // --- the handshake ---------------------------------------------------------------

  function readCookie(name) {
    var doc = root && root.document;
    if (!doc || typeof doc.cookie !== "string") return undefined;
    var parts = doc.cookie.split(";");
    for (var i = 0; i < parts.length; i++) {
      var p = parts[i].trim();
      if (p.slice(0, name.length + 1) === name + "=") {
        try {
          return decodeURIComponent(p.slice(name.length + 1));
        } catch (e) {
          return p.slice(name.length + 1);
        }
      }
    }
    return undefined;
  }

  function now() {
    return Date.now() / 1000;
  }

  /**
   * Run one handshake. Options (TokenSec's names where they exist):
   * uri, csrfToken (default: the tokenware_csrf cookie), header, csrfHeader,
   * csrfCookie, headers (extra request headers), origin (default
   * location.origin), fetch, credentials.
   * Resolves to {access_token, token_type, expires_in, exp} (plus any other
   * fields the server's payload has).
   */
  async function handshake(options) {
    var o = options || {};
    var uri = o.uri || DEFAULT_URI;
    var header = o.header || DEFAULT_HEADER;
    var csrfToken = o.csrfToken !== undefined ? o.csrfToken : readCookie(o.csrfCookie || DEFAULT_CSRF_COOKIE);
    if (typeof csrfToken !== "string" || csrfToken === "") {
      throw new HandshakeError("no CSRF token (the " + (o.csrfCookie || DEFAULT_CSRF_COOKIE) + " cookie is missing)", "csrf_failed");
    }
    var origin = o.origin || (root && root.location && root.location.origin);
    if (typeof origin !== "string" || !origin || origin === "null") {
      throw new HandshakeError("no origin to bind the handshake to", "bad_origin");
    }
    var doFetch = o.fetch || (root && root.fetch && root.fetch.bind(root));
    var state = await newRequest();
    var headers = {};
    var extra = o.headers || {};
    for (var k in extra) {
      if (Object.prototype.hasOwnProperty.call(extra, k)) headers[k] = extra[k];
    }
    headers[header] = state.header;
    headers[o.csrfHeader || DEFAULT_CSRF_HEADER] = csrfToken;
    headers["Accept"] = "application/json";
    var response = await doFetch(uri, {
      method: "POST",
      headers: headers,
      credentials: o.credentials || "same-origin",
      cache: "no-store",
      redirect: "error",
    });
    var body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (response.status !== 200) {
      var code = body && typeof body.error === "string" ? body.error : "http_" + response.status;
      var err = new HandshakeError("handshake refused: " + code, code, response.status);
      var retry = response.headers && response.headers.get("Retry-After");
      if (retry) err.retryAfter = Number(retry);
      throw err;
    }
    var reply = parseReply(response.headers.get(header), body);
    var plain = await openReply(state, reply, origin, csrfToken);
    state = null; // single use: the private key is dropped with the state
    if (typeof plain.access_token !== "string" || plain.access_token === "") {
      throw new HandshakeError("handshake payload has no access_token", "invalid_reply");
    }
    var t = now();
    if (typeof plain.token_type !== "string") plain.token_type = "Bearer";
    if (typeof plain.exp !== "number" && typeof plain.expires_in === "number") plain.exp = Math.floor(t + plain.expires_in);
    if (typeof plain.expires_in !== "number" && typeof plain.exp === "number") plain.expires_in = Math.max(0, Math.floor(plain.exp - t));
    return plain;
  }

  /**
   * A fetch wrapper that holds the access token in memory only, runs the
   * handshake when there is none or it is about to expire (refreshMargin
   * seconds, default 30), retries once after a 401, and never runs two
   * handshakes at the same time.
   */
  function client(options) {
    var o = options || {};
    var margin = typeof o.refreshMargin === "number" ? o.refreshMargin : 30;
    var clock = o.now || now;
    var doFetch = o.fetch || (root && root.fetch && root.fetch.bind(root));
    var current = null;
    var inflight = null;
    var count = 0;

    function fresh(tok) {
      if (!tok) return false;
      if (typeof tok.exp !== "number") return true;
      var life = typeof tok.expires_in === "number" ? tok.expires_in : margin * 4;
      return clock() < tok.exp - Math.min(margin, life / 4);
    }

    function renew() {
      if (!inflight) {
        count += 1;
        inflight = handshake(Object.assign({}, o, { fetch: doFetch })).then(
          function (tok) {
            current = tok;
            inflight = null;
            return tok;
          },
          function (e) {
            current = null;
            inflight = null;
            throw e;
          }
        );
      }
      return inflight;
    }

    async function token(force) {
      if (!force && fresh(current)) return current;
      if (force && inflight === null) current = null;
      return renew();
    }

    function withBearer(init, tok) {
      var next = Object.assign({}, init || {});
      var h = new Headers((init && init.headers) || undefined);
      h.set("Authorization", (tok.token_type || "Bearer") + " " + tok.access_token);
      next.headers = h;
      return next;
    }

    async function apiFetch(input, init) {
      var retryInput = typeof Request !== "undefined" && input instanceof Request ? input.clone() : input;
      var tok = await token(false);
      var response = await doFetch(input, withBearer(init, tok));
      if (response.status === 401) {
        var used = tok;
        if (current === used) current = null;
        tok = await token(current === null);
        response = await doFetch(retryInput, withBearer(init, tok));
      }
      return response;
    }

    return {
      fetch: apiFetch,
      /** The current token (running the handshake if needed). */
      token: function () {
        return token(false).then(function (t) {
          return t.access_token;
        });
      },
      /** Force a new handshake now. */
      handshake: function () {
        return token(true);
      },
      /** Forget the token (e.g. on logout). */
      clear: function () {
        current = null;
      },
      /** Handshakes run so far (diagnostics). */
      get handshakes() {
        return count;
      },
    };
  }

  return Object.freeze({
    version: VERSION,
    handshake: handshake,
    client: client,
    HandshakeError: HandshakeError,
    // Exposed for tests and tooling; not a stable API.
    _internal: Object.freeze({
      b64u: b64u,
      unb64u: unb64u,
      transcriptHash: transcriptHash,
      deriveKey: deriveKey,
      parseReply: parseReply,
      openReply: openReply,
      newRequest: newRequest,
    }),
  });
});
