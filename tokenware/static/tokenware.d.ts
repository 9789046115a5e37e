// Type declarations for tokenware.js, the TWHS1 browser client.
// The script defines the global `Tokenware` (window.Tokenware / globalThis.Tokenware);
// under CommonJS it is also `module.exports`.

export interface HandshakeOptions {
  /** Handshake endpoint (POST). Default "/tokenware/handshake". */
  uri?: string;
  /** CSRF token sent in X-CSRF-Token. Default: the `tokenware_csrf` cookie. */
  csrfToken?: string;
  /** Request and reply header name. Default "Tokenware-Handshake". */
  header?: string;
  /** Header carrying the CSRF token. Default "X-CSRF-Token". */
  csrfHeader?: string;
  /** Cookie read when csrfToken is omitted. Default "tokenware_csrf". */
  csrfCookie?: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** Origin bound into the transcript. Default `location.origin`. */
  origin?: string;
  /** fetch implementation. Default the global fetch. */
  fetch?: typeof fetch;
  /** fetch credentials mode. Default "same-origin". */
  credentials?: RequestCredentials;
}

export interface HandshakeResult {
  access_token: string;
  token_type: string;
  /** Seconds the token lives, as of delivery. */
  expires_in: number;
  /** Expiry, seconds since the epoch. */
  exp: number;
  [extra: string]: unknown;
}

export interface ClientOptions extends HandshakeOptions {
  /** Renew this many seconds before `exp` (at most a quarter of the lifetime). Default 30. */
  refreshMargin?: number;
  /** Clock in seconds since the epoch (tests). */
  now?: () => number;
}

export interface TokenwareClient {
  /** fetch with `Authorization: Bearer …`; handshakes when needed, retries once after a 401. */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** The current access token, running the handshake if needed. */
  token(): Promise<string>;
  /** Run a new handshake now. */
  handshake(): Promise<HandshakeResult>;
  /** Forget the token held in memory. */
  clear(): void;
  /** Number of handshakes run by this client. */
  readonly handshakes: number;
}

export declare class HandshakeError extends Error {
  /** Server error code (invalid_handshake, csrf_failed, origin_rejected, handshake_replayed,
   * rate_limited, store_unavailable) or a client reason (tampered_reply, invalid_reply, …). */
  readonly code: string;
  /** HTTP status, or 0 for client-side failures. */
  readonly status: number;
  /** Seconds, from Retry-After on 429/503. */
  retryAfter?: number;
}

export interface TokenwareAPI {
  readonly version: "v1";
  handshake(options?: HandshakeOptions): Promise<HandshakeResult>;
  client(options?: ClientOptions): TokenwareClient;
  readonly HandshakeError: typeof HandshakeError;
}

declare global {
  // eslint-disable-next-line no-var
  var Tokenware: TokenwareAPI;
  interface Window {
    Tokenware: TokenwareAPI;
  }
}
