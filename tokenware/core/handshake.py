"""TWHS1, the encrypted browser handshake: the server side, sans-I/O.

The protocol is ``reference/security.md`` §2, byte for byte. The browser
makes a non-extractable ECDH P-256 key pair and a 16-byte nonce and POSTs::

    Tokenware-Handshake: v1.<b64u(epk_c):87>.<b64u(n_c):22>
    X-CSRF-Token: <the tokenware_csrf cookie>

The server makes its own ephemeral key pair and nonce, and answers with the
app's payload (typically a fresh access JWT) encrypted under::

    TH = SHA-256(LABEL ‖ 0x00 ‖ u16be(len(ORIGIN)) ‖ ORIGIN
                 ‖ epk_c ‖ n_c ‖ epk_s ‖ n_s ‖ SHA-256(CSRF))
    K  = HKDF-SHA256(IKM = ECDH x-coordinate, salt = n_c ‖ n_s, info = LABEL ‖ " key" ‖ TH, L = 32)
    C  = AES-256-GCM(K, iv = 12 random bytes, aad = TH)

in the response header ``Tokenware-Handshake: v1.<epk_s>.<n_s>.<iv>.<ct>``
(refused above 4096 bytes) or in a JSON body
``{"v":1,"epk":…,"n":…,"iv":…,"ct":…}``.

Checks run in the order of §2.6, cheapest and least revealing first, and
nothing costly (no EC operation, no store write) happens for a request that
fails an earlier one:

1. size (≤ 256 bytes) and shape of the request header → 400
2. ``Origin`` / ``Sec-Fetch-Site`` against the allow-list → 403
   ``origin_rejected``; the CSRF token (signed double-submit, bound to the
   session when there is one) → 403 ``csrf_failed``
3. throttle per session and per client address → 429
4. canonical base64url, uncompressed on-curve point → 400
5. replay guard: nonce and key remembered for five minutes, both in ONE
   atomic insert-if-absent → 409 ``handshake_replayed``
6. only then is the payload made (by the caller, after :func:`accept_flow`
   returned) and sealed with :func:`seal`.

Store layout (``{...}`` is the Redis Cluster hash tag), after §2.6 step 5::

    <prefix>:hs:{<tag>}:n:<handshake id>        replay guard on the nonce, TTL 300 s
    <prefix>:hs:{<tag>}:k:<hex SHA-256(epk_c)>  replay guard on the key, TTL 300 s

``tag`` is four base62 characters of a keyed HMAC of the session (or, with
no session, of the CSRF token's random part), so both keys share one slot.
The tag is keyed because session ids and CSRF tokens are secrets. The
nonce and the public key are not (the browser sends both over TLS, and a
reply is sealed to the key's owner only), so plain SHA-256 names them: the
key's as in the protocol, the nonce's by the handshake id (the first 16
bytes of SHA-256(n_c), in hex), the one name of a handshake fit for logs,
rather than the nonce itself. (Earlier releases named both by keyed MACs;
their entries are not seen under the new names, which matters only in the
five minutes after an upgrade.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from binascii import a2b_base64, b2a_base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from itsdangerous import BadSignature, Signer
from itsdangerous.encoding import base64_encode, want_bytes

from tokenware.core.encoding import BASE62, Random
from tokenware.core.flow import Flow
from tokenware.core.frozen import fast_init
from tokenware.core.keyed_mac import KeyedMac
from tokenware.core.ops import Absent, Apply, Batch, Put
from tokenware.core.throttle import Rate, ThrottleKeys, hit_flow, parse_rule
from tokenware.errors import (
    ConfigurationError,
    CsrfFailed,
    HandshakeError,
    HandshakeReplayed,
    OriginRejected,
    Throttled,
    ValidationError,
)
from tokenware.keys import KeyRing

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "HEADER_NAME",
    "LABEL",
    "MAX_HEADER_DELIVERY",
    "MAX_REQUEST_HEADER",
    "Accepted",
    "CsrfCookie",
    "CsrfTokens",
    "Delivery",
    "HandshakeReply",
    "HandshakeRequest",
    "HandshakeRules",
    "accept_flow",
    "b64u",
    "b64u_decode",
    "check_origin",
    "derive_key",
    "load_client_key",
    "normalise_origin",
    "parse_request",
    "payload_bytes",
    "seal",
    "transcript_hash",
]

VERSION = "v1"
#: The transcript label of suite ``v1`` (ECDH P-256, HKDF-SHA256, AES-256-GCM).
LABEL = b"tokenware-hs-v1"
#: Request and (header delivery) response header.
HEADER_NAME = "Tokenware-Handshake"
#: Where the client echoes the CSRF cookie.
CSRF_HEADER = "X-CSRF-Token"
#: The signed double-submit cookie the middleware sets.
CSRF_COOKIE = "tokenware_csrf"
#: Longest accepted request header value, checked before any parsing.
MAX_REQUEST_HEADER = 256
#: Longest response header line (``Tokenware-Handshake: …``) header delivery emits.
MAX_HEADER_DELIVERY = 4096
#: Longest CSRF token looked at (a real one is about 90 characters).
MAX_CSRF_LENGTH = 256
POINT_LENGTH = 65
NONCE_LENGTH = 16
IV_LENGTH = 12
GCM_TAG_LENGTH = 16
#: Seconds a nonce and a client key are remembered by the replay guard.
REPLAY_TTL = 300.0
#: Default age limit of a CSRF token (12 hours).
CSRF_MAX_AGE = 12 * 3600.0
#: Default throttles: per session (or CSRF token) and per client address.
SESSION_RATE = "10/minute"
ADDRESS_RATE = "60/minute"
TAG_LENGTH = 4

_LABEL_0 = LABEL + b"\x00"
_KEY_INFO = LABEL + b" key"
# Stateless descriptors, made once.
_P256 = ec.SECP256R1()
_ECDH = ec.ECDH()
_SHA256 = hashes.SHA256()

Delivery = Literal["header", "body"]

_B64U = "[A-Za-z0-9_-]"
_REQUEST = re.compile(rf"v1\.({_B64U}{{87}})\.({_B64U}{{22}})")
_VERSION_LIKE = re.compile(r"[A-Za-z0-9]{1,8}\.")
_CSRF_NONCE = re.compile(rb"[A-Za-z0-9_-]{22}")
_B64U_TEXT = re.compile(f"{_B64U}*")
_B64U_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# base64url <-> base64, so binascii does the work.
_TO_STD = bytes.maketrans(b"-_", b"+/")
_TO_URL = bytes.maketrans(b"+/", b"-_")
# The characters allowed last in a canonical string, by length % 4: 2 leftover
# characters carry 1 byte (the last one's low 4 bits unused), 3 carry 2 bytes
# (low 2 bits unused). As in tokenware.core.jws.
_LAST_OK = {
    2: frozenset(c for i, c in enumerate(_B64U_ALPHABET) if i & 0xF == 0),
    3: frozenset(c for i, c in enumerate(_B64U_ALPHABET) if i & 0x3 == 0),
}
_PAD = (b"", b"", b"==", b"=")
# byte -> BASE62[byte % 62], for bytes.translate.
_TO_BASE62 = bytes(ord(BASE62[b % 62]) for b in range(256))


# --- encodings ------------------------------------------------------------------


def b64u(data: bytes) -> str:
    """base64url without padding."""
    return b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URL).decode("ascii")


def b64u_decode(text: str, length: int) -> bytes:
    """Decode canonical, unpadded base64url of exactly ``length`` bytes.

    Raises:
        HandshakeError: wrong alphabet, padding, length, or a non-canonical
            encoding (non-zero unused bits: two strings must never decode
            to the same bytes).
    """
    expected = (length * 8 + 5) // 6
    if len(text) != expected or not _B64U_TEXT.fullmatch(text):
        raise HandshakeError(f"expected {expected} base64url characters")
    return _decode_canonical(text, length)


def _decode_canonical(text: str, length: int) -> bytes:
    """:func:`b64u_decode` of ``text`` whose alphabet and length are already checked."""
    raw = text.encode("ascii")
    rem = len(raw) % 4  # never 1: ceil(8 * length / 6) characters
    if rem:
        # The last character's unused low bits must be zero (canonical).
        if raw[-1] not in _LAST_OK[rem]:
            raise HandshakeError("non-canonical base64url")
        raw += _PAD[rem]
    out = a2b_base64(raw.translate(_TO_STD))
    if len(out) != length:  # unreachable after the checks above; cheap insurance
        raise HandshakeError("non-canonical base64url")
    return out


# --- step 1: the request header ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """A request header that has the right size and shape (not yet decoded)."""

    epk: str
    nonce: str


def parse_request(value: str | bytes | None) -> HandshakeRequest:
    """Check the size and shape of a ``Tokenware-Handshake`` request value.

    Raises:
        HandshakeError: missing, longer than 256 bytes (checked before
            anything else, so a 1 MB header costs nothing), a legacy
            CryptoJS value, an unknown version, or not
            ``v1.<87 base64url>.<22 base64url>``.
    """
    return HandshakeRequest(*_request_fields(value))


def _request_fields(value: str | bytes | None) -> tuple[str, str]:
    # parse_request without the dataclass: (epk text, nonce text), their
    # alphabet and lengths checked by the request pattern.
    if value is None:
        raise HandshakeError("no Tokenware-Handshake header")
    if len(value) > MAX_REQUEST_HEADER:
        raise HandshakeError(f"handshake header longer than {MAX_REQUEST_HEADER} bytes")
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise HandshakeError("handshake header is not ASCII") from None
    match = _REQUEST.fullmatch(value)
    if match is None:
        if value.startswith("U2FsdGVkX1"):
            raise HandshakeError("legacy tokensec (CryptoJS) handshake; only TWHS1 v1 is accepted")
        if _VERSION_LIKE.match(value) and not value.startswith("v1."):
            raise HandshakeError("unsupported handshake version; only v1 is accepted")
        raise HandshakeError("malformed handshake header")
    return match.group(1), match.group(2)


# --- step 2: origin ---------------------------------------------------------------


def normalise_origin(value: str) -> str | None:
    """The serialized origin ``scheme://host[:port]``, lower-cased, default port dropped.

    Returns ``None`` for anything that is not a plain http(s) origin
    (``null``, a path, user info, a query, a bad port).
    """
    if not isinstance(value, str) or not value or len(value) > 512 or not value.isascii():
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    if value.endswith(("?", "#")):
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def check_origin(origin: str | None, sec_fetch_site: str | None, allowed: Sequence[str]) -> str:
    """The canonical origin of an acceptable request, for the transcript.

    ``origin`` must be one of ``allowed`` (already normalised). Without an
    ``Origin`` header, ``Sec-Fetch-Site: same-origin`` is accepted when
    exactly one origin is allowed (then it is the origin). A request the
    browser labels ``cross-site`` is refused whatever its ``Origin`` says.

    Raises:
        OriginRejected: anything else.
    """
    site = (sec_fetch_site or "").strip().lower()
    if site == "cross-site":
        raise OriginRejected("Sec-Fetch-Site: cross-site")
    if origin is None or origin == "":
        if site == "same-origin" and len(allowed) == 1:
            return allowed[0]
        raise OriginRejected("no Origin header and no same-origin Sec-Fetch-Site")
    if origin in allowed:  # already canonical: the common case
        return origin
    canonical = normalise_origin(origin)
    if canonical is None or canonical not in allowed:
        raise OriginRejected("origin not in the allow-list")
    return canonical


# --- step 2: CSRF (signed double-submit) -------------------------------------------


@dataclass(frozen=True, slots=True)
class CsrfCookie:
    """The ``Set-Cookie`` the middleware sends with a new CSRF token.

    The cookie is readable by the page's script (``HttpOnly`` off): the
    client must echo it in ``X-CSRF-Token``. ``SameSite=Strict`` keeps it
    off cross-site requests; its signature keeps a cookie planted by a
    sibling subdomain from passing.
    """

    name: str
    value: str = field(repr=False)
    path: str = "/"
    max_age: int = int(CSRF_MAX_AGE)
    samesite: str = "Strict"
    secure: bool = True
    httponly: bool = False

    def header_value(self) -> str:
        """The ``Set-Cookie`` header value."""
        parts = [f"{self.name}={self.value}", f"Path={self.path}", f"Max-Age={self.max_age}"]
        parts.append(f"SameSite={self.samesite}")
        if self.secure:
            parts.append("Secure")
        if self.httponly:
            parts.append("HttpOnly")
        return "; ".join(parts)


CSRF_SALT = "tokenware-handshake-csrf"


class _CsrfSigner(Signer):
    """The itsdangerous ``Signer`` of CSRF tokens, its per-key work done once.

    Same tokens, byte for byte, as ``Signer(keys, salt=CSRF_SALT,
    digest_method=hashlib.sha256)`` (what tokenware built per call before):
    each key's itsdangerous derivation and its keyed HMAC state are computed
    here, once, instead of on every ``sign`` and ``unsign``. ``keys`` are
    oldest first, itsdangerous' rotation order: the last one signs, every
    one verifies.
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        super().__init__(list(keys), salt=CSRF_SALT, digest_method=hashlib.sha256)
        macs = [KeyedMac(self.derive_key(key)) for key in self.secret_keys]
        self._signing = macs[-1]
        self._verifying = macs[::-1]

    def get_signature(self, value: str | bytes) -> bytes:
        # Signer.get_signature: base64 of HMAC(derive_key(newest), value).
        return base64_encode(self._signing(want_bytes(value)))

    def verify_signature(self, value: str | bytes, sig: str | bytes) -> bool:
        # Signer.verify_signature, on itsdangerous' own byte conversions.
        return self._holds(want_bytes(value), want_bytes(sig, "ascii", "ignore"))

    def _holds(self, value: bytes, sig: bytes) -> bool:
        # itsdangerous' lenient decoding (its base64_decode is
        # urlsafe_b64decode of the padded text, that is non-strict a2b_base64
        # after -_ -> +/), every key newest first, constant-time comparison.
        try:
            decoded = a2b_base64((sig + b"=" * (-len(sig) % 4)).translate(_TO_STD))
        except ValueError:
            return False
        for mac in self._verifying:
            if hmac.compare_digest(decoded, mac(value)):
                return True
        return False

    def unsign(self, signed_value: str | bytes) -> bytes:
        # Signer.unsign: split at the last separator, verify, return the value.
        value, sep, sig = want_bytes(signed_value).rpartition(self.sep)
        if sep and self._holds(value, sig):
            return value
        raise BadSignature("signature does not match")


@dataclass(frozen=True, slots=True, kw_only=True)
class CsrfTokens:
    """Issue and verify signed double-submit CSRF tokens.

    A token is ``<22 random base64url>[<22 base64url session binding>].<unix time>``
    signed by itsdangerous (HMAC-SHA256), under a sub-key of the ring
    (every ring key verifies, the newest signs). The binding is a keyed
    HMAC of the session id, so a token from another session fails.
    """

    ring: KeyRing
    max_age: float = CSRF_MAX_AGE
    _signer: _CsrfSigner = field(init=False, repr=False, compare=False)
    _bind: KeyedMac = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built once per ring (the ring is immutable): itsdangerous signs with
        # the LAST key and verifies with all of them, so oldest first.
        keys = [k.derive("handshake-csrf") for k in reversed(self.ring.keys)]
        object.__setattr__(self, "_signer", _CsrfSigner(keys))
        # ring.mac("handshake-csrf-session", ...), keyed once.
        bind = KeyedMac(self.ring.current.derive("handshake-csrf-session"))
        object.__setattr__(self, "_bind", bind)

    def _binding(self, session: str) -> str:
        if not isinstance(session, str):
            raise ValidationError("session must be a string")
        try:
            raw = session.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("session contains a lone surrogate") from None
        return b64u(self._bind(raw)[:16])

    def issue(self, *, session: str | None = None, now: float, rand: Random) -> str:
        """A new token, bound to ``session`` when given."""
        value = b64u(rand(NONCE_LENGTH))
        if session is not None:
            value += self._binding(session)
        return self._signer.sign(f"{value}.{int(now)}").decode("ascii")

    def verify(
        self,
        token: str | None,
        *,
        cookie: str | None = None,
        session: str | None = None,
        check_cookie: bool = True,
        now: float,
    ) -> str:
        """Check ``token`` (the header) against ``cookie`` and ``session``.

        Returns:
            The token's random part, an id for the browser when there is no
            session.

        Raises:
            CsrfFailed: missing, non-ASCII, oversized, unsigned, expired, not
                equal to the cookie (constant time, on bytes), or bound to
                another session (or to none when a session is given).
        """
        if not isinstance(token, str) or not token:
            raise CsrfFailed("no CSRF token")
        if len(token) > MAX_CSRF_LENGTH or not token.isascii():
            raise CsrfFailed("malformed CSRF token")
        raw = token.encode("ascii")
        if check_cookie:
            if not isinstance(cookie, str) or len(cookie) > MAX_CSRF_LENGTH or not cookie.isascii():
                raise CsrfFailed("no CSRF cookie")
            if not hmac.compare_digest(raw, cookie.encode("ascii")):
                raise CsrfFailed("CSRF token does not match the cookie")
        # Signer.unsign on the ASCII bytes, then the signed value's parts, all
        # as bytes (one decode, of the nonce returned).
        signer = self._signer
        value, sep, sig = raw.rpartition(signer.sep)
        if not (sep and signer._holds(value, sig)):
            raise CsrfFailed("CSRF token signature")
        value, _, stamp = value.rpartition(b".")
        if not stamp.isdigit() or len(stamp) > 12 or not 0 <= now - int(stamp) <= self.max_age:
            raise CsrfFailed("CSRF token expired or from the future")
        nonce, binding = value[:22], value[22:]
        if not _CSRF_NONCE.fullmatch(nonce):
            raise CsrfFailed("malformed CSRF token")
        if session is not None:
            if not hmac.compare_digest(binding, self._binding(session).encode()):
                raise CsrfFailed("CSRF token belongs to another session")
        elif binding:
            raise CsrfFailed("session-bound CSRF token without a session")
        return nonce.decode("ascii")


# --- steps 4-6: the point, the transcript, the key ---------------------------------


def load_client_key(request: HandshakeRequest) -> tuple[ec.EllipticCurvePublicKey, bytes, bytes]:
    """Decode and validate the client's key and nonce: ``(key, epk_c, n_c)``.

    Raises:
        HandshakeError: non-canonical base64url, a compressed, identity or
            other non-``0x04`` encoding, or a point not on P-256.
    """
    epk = b64u_decode(request.epk, POINT_LENGTH)
    nonce = b64u_decode(request.nonce, NONCE_LENGTH)
    return _client_key(epk, nonce)


def _client_key(epk: bytes, nonce: bytes) -> tuple[ec.EllipticCurvePublicKey, bytes, bytes]:
    if epk[0] != 0x04:
        raise HandshakeError("client key is not an uncompressed SEC1 point")
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(_P256, epk)
    except ValueError:
        raise HandshakeError("client key is not a point on P-256") from None
    return key, epk, nonce


def transcript_hash(
    *, origin: str, epk_c: bytes, n_c: bytes, epk_s: bytes, n_s: bytes, csrf_token: str
) -> bytes:
    """TH of §2.5: binds origin, both keys, both nonces and the CSRF token."""
    return _transcript(origin, epk_c, n_c, epk_s, n_s, csrf_token)


def _transcript(
    origin: str, epk_c: bytes, n_c: bytes, epk_s: bytes, n_s: bytes, csrf_token: str
) -> bytes:
    raw_origin = origin.encode("ascii")
    if len(raw_origin) > 0xFFFF:
        raise ValidationError("origin too long")
    csrf_hash = hashlib.sha256(csrf_token.encode("utf-8")).digest()
    return hashlib.sha256(
        b"".join(
            (
                _LABEL_0,  # LABEL ‖ 0x00
                len(raw_origin).to_bytes(2, "big"),
                raw_origin,
                epk_c,
                n_c,
                epk_s,
                n_s,
                csrf_hash,
            )
        )
    ).digest()


def derive_key(z: bytes, n_c: bytes, n_s: bytes, th: bytes) -> bytes:
    """K of §2.5: HKDF-SHA256 over the ECDH secret, salted by both nonces."""
    # Positional: HKDF(algorithm, length, salt, info); keywords cost a parse per call.
    return HKDF(_SHA256, 32, n_c + n_s, _KEY_INFO + th).derive(z)


# --- the payload and the reply -------------------------------------------------------


def payload_bytes(payload: Any, *, now: float) -> bytes:
    """The plaintext (UTF-8 JSON) for ``payload``.

    * a mapping: sent as given (it should hold ``access_token``; ``exp``
      and ``expires_in`` let the client renew in time);
    * an object with ``access_token`` and ``access_token_expires_at`` (a
      :class:`~tokenware.jwt.TokenPair`): the access token only, never the
      refresh token;
    * a string: the access token itself.

    Raises:
        ValidationError: anything else, or a mapping that is not JSON.
    """
    if isinstance(payload, str):  # before Mapping: a str never is one, and this is cheaper
        if not payload:
            raise ValidationError("empty handshake payload")
        return _token_json(payload, "Bearer", _jwt_exp(payload), now)
    if isinstance(payload, Mapping):
        body = dict(payload)
    elif isinstance(getattr(payload, "access_token", None), str):
        exp = int(payload.access_token_expires_at)
        token_type = getattr(payload, "token_type", "Bearer")
        if isinstance(token_type, str):
            return _token_json(payload.access_token, token_type, exp, now)
        body = {
            "access_token": payload.access_token,
            "token_type": token_type,
            "expires_in": max(0, exp - int(now)),
            "exp": exp,
        }
    else:
        raise ValidationError("handshake payload must be a str, a mapping or a TokenPair")
    try:
        return _JSON.encode(body).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"handshake payload must be JSON: {exc}") from None


# First bytes of the byte-order marks json.detect_encoding looks for.
_BOMS = (b"\xef", b"\xfe", b"\xff")
#: json.dumps(..., separators=(",", ":"), ensure_ascii=False, allow_nan=False), built once.
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# The compact-JWS characters other than letters and digits, mapped to a letter.
_JWS_AS_ALNUM = bytes.maketrans(b"-_.", b"AAA")


def _token_json(token: str, token_type: str, exp: int | None, now: float) -> bytes:
    # Byte for byte _JSON.encode({"access_token": token, "token_type": token_type,
    # ["expires_in": ..., "exp": exp]}), without walking a dict: two strings
    # as the encoder writes them and two ints (int.__repr__, as json).
    try:
        typ = encode_basestring(token_type)
        head = f'{{"access_token":{_json_string(token)},"token_type":{typ}'
        if exp is None:
            return f"{head}}}".encode()
        exp = int(exp)  # a plain int, as json.dumps would print it
        return f'{head},"expires_in":{max(0, exp - int(now))},"exp":{exp}}}'.encode()
    except (TypeError, ValueError) as exc:  # a lone surrogate cannot be UTF-8
        raise ValidationError(f"handshake payload must be JSON: {exc}") from None


def _json_string(text: str) -> str:
    # _JSON.encode(text): the encoder's own escaping (json.encoder's
    # encode_basestring with ensure_ascii off), except that text made only of
    # letters, digits and "-_." (a compact JWS) needs none, and for a token
    # testing that (a byte translation and isalnum) is cheaper than escaping.
    if text.isascii() and text.encode("ascii").translate(_JWS_AS_ALNUM).isalnum():
        return f'"{text}"'
    return encode_basestring(text)


def _jwt_exp(token: str) -> int | None:
    # The app's own freshly issued token: read (not verified) for its exp.
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 8192:
        return None
    segment = parts[1]
    try:
        # = base64.urlsafe_b64decode(segment + padding): non-strict, as before.
        raw = a2b_base64(segment.encode("ascii").translate(_TO_STD) + _PAD[len(segment) % 4])
        if raw.lstrip(b" \t\n\r")[:1] != b"{" and 0 not in raw[:4] and raw[:1] not in _BOMS:
            # UTF-8 (json.detect_encoding finds no BOM and no NUL) whose first
            # non-blank byte is not "{": json.loads could not return an object.
            return None
        claims = json.loads(raw)
    except (ValueError, TypeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return exp if isinstance(exp, int) and not isinstance(exp, bool) else None


# "Tokenware-Handshake: v1." and the three fixed-length fields with their dots.
_HEADER_LINE_FIXED = len(HEADER_NAME) + 2 + len("v1") + 4 + 87 + 22 + 16


def header_line_length(plaintext_length: int) -> int:
    """Bytes of ``Tokenware-Handshake: v1.<epk>.<n>.<iv>.<ct>`` for a plaintext."""
    return _HEADER_LINE_FIXED + (8 * (plaintext_length + GCM_TAG_LENGTH) + 5) // 6


@fast_init
@dataclass(frozen=True, slots=True)
class HandshakeReply:
    """The server's answer, ready for any HTTP adapter.

    Attributes:
        delivery: ``"header"`` or ``"body"``.
        epk, nonce, iv, ciphertext: the raw fields (ciphertext ends with the tag).
        handshake_id: hex SHA-256 of the client nonce (first 16 bytes): the
            only thing about a handshake fit for logs.
    """

    delivery: Delivery
    epk: bytes
    nonce: bytes
    iv: bytes
    ciphertext: bytes = field(repr=False)
    handshake_id: str

    @property
    def header_value(self) -> str:
        """``v1.<epk>.<n_s>.<iv>.<ct>``, the header-delivery value."""
        parts = (self.epk, self.nonce, self.iv, self.ciphertext)
        return "v1." + ".".join(b64u(p) for p in parts)

    def json(self) -> dict[str, Any]:
        """The body-delivery object ``{"v":1,"epk":…,"n":…,"iv":…,"ct":…}``."""
        return {
            "v": 1,
            "epk": b64u(self.epk),
            "n": b64u(self.nonce),
            "iv": b64u(self.iv),
            "ct": b64u(self.ciphertext),
        }

    @property
    def status(self) -> int:
        """Always 200."""
        return 200

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Response headers: content type, ``no-store``, ``Vary: Cookie``, and the reply header."""
        out = [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Pragma", "no-cache"),
            ("Vary", "Cookie"),
        ]
        if self.delivery == "header":
            out.append((HEADER_NAME, self.header_value))
        return out

    @property
    def body(self) -> bytes:
        """The JSON body: the encrypted reply, or ``{"v":1}`` with header delivery."""
        obj = self.json() if self.delivery == "body" else {"v": 1}
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


# --- the rules and the flow ----------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class Accepted:
    """A request that passed every check of §2.6 (steps 1-5); next: :func:`seal`."""

    client_key: ec.EllipticCurvePublicKey = field(repr=False)
    epk: bytes
    nonce: bytes
    origin: str
    csrf_token: str = field(repr=False)
    handshake_id: str


def _rates(value: str | Iterable[Rate] | None, what: str) -> tuple[Rate, ...]:
    if value is None:
        return ()
    try:
        if isinstance(value, str):
            return parse_rule(value).rates
        return tuple(value)
    except ValidationError as exc:
        raise ConfigurationError(f"{what}: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeRules:
    """Everything the handshake needs besides the store, validated once.

    Attributes:
        ring, prefix: key ring and store key prefix.
        origins: normalised allow-list of origins.
        delivery: default delivery, ``"header"`` (TokenSec's exchange) or ``"body"``.
        session_rates, address_rates: throttles (empty: none).
        replay_ttl: seconds the replay guard remembers a nonce and a key.
        csrf: the CSRF token rules.
    """

    ring: KeyRing
    prefix: str
    origins: tuple[str, ...] = ()
    delivery: Delivery = "header"
    session_rates: tuple[Rate, ...] = ()
    address_rates: tuple[Rate, ...] = ()
    replay_ttl: float = REPLAY_TTL
    csrf: CsrfTokens
    _tag_mac: KeyedMac = field(init=False, repr=False, compare=False)
    _key_head: str = field(init=False, repr=False, compare=False)
    _limiter: ThrottleKeys = field(init=False, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        *,
        ring: KeyRing,
        prefix: str,
        origins: Iterable[str] = (),
        delivery: str = "header",
        session_rate: str | Iterable[Rate] | None = SESSION_RATE,
        address_rate: str | Iterable[Rate] | None = ADDRESS_RATE,
        replay_ttl: float = REPLAY_TTL,
        csrf_max_age: float = CSRF_MAX_AGE,
    ) -> HandshakeRules:
        """Validate settings; raises :class:`~tokenware.errors.ConfigurationError`."""
        if isinstance(origins, str):
            origins = [origins]
        canonical: list[str] = []
        for origin in origins:
            norm = normalise_origin(origin)
            if norm is None:
                raise ConfigurationError(
                    f"handshake origin {origin!r} is not an origin like 'https://app.example.com'"
                )
            canonical.append(norm)
        if delivery not in ("header", "body"):
            raise ConfigurationError("handshake delivery must be 'header' or 'body'")
        if not isinstance(replay_ttl, (int, float)) or not 1 <= replay_ttl <= 86400:
            raise ConfigurationError("handshake replay_ttl must be between 1 and 86400 seconds")
        if not isinstance(csrf_max_age, (int, float)) or not 60 <= csrf_max_age <= 400 * 86400:
            raise ConfigurationError("csrf_max_age must be between 60 seconds and 400 days")
        return cls(
            ring=ring,
            prefix=prefix,
            origins=tuple(dict.fromkeys(canonical)),
            delivery=delivery,  # type: ignore[arg-type]
            session_rates=_rates(session_rate, "handshake session_rate"),
            address_rates=_rates(address_rate, "handshake address_rate"),
            replay_ttl=float(replay_ttl),
            csrf=CsrfTokens(ring=ring, max_age=float(csrf_max_age)),
        )

    def __post_init__(self) -> None:
        # The keyed state of ring.name_mac("handshake-tag", ...), computed once
        # and copied per handshake: the same tag without re-deriving a key.
        tag_mac = KeyedMac(self.ring.index_key.derive("handshake-tag"))
        object.__setattr__(self, "_tag_mac", tag_mac)
        object.__setattr__(self, "_key_head", f"{self.prefix}:hs:{{")
        object.__setattr__(self, "_limiter", ThrottleKeys(ring=self.ring, prefix=self.prefix))

    def replay_keys(self, binding: str, epk: bytes, nonce: bytes) -> tuple[str, str]:
        """The two replay-guard keys (one hash tag) for a session and request."""
        return self._replay_keys(binding, epk, _handshake_id(nonce))

    def _replay_keys(self, binding: str, epk: bytes, handshake_id: str) -> tuple[str, str]:
        # replay_keys with the handshake id the flow computes anyway.
        mac = self._tag_mac(binding.encode("utf-8"))
        base = f"{self._key_head}{mac[:TAG_LENGTH].translate(_TO_BASE62).decode('ascii')}}}"
        return f"{base}:n:{handshake_id}", f"{base}:k:{hashlib.sha256(epk).hexdigest()}"


def _handshake_id(nonce: bytes) -> str:
    # Hex of the first 16 bytes of SHA-256(n_c): logs and the nonce's replay key.
    return hashlib.sha256(nonce).hexdigest()[:32]


def accept_flow(
    rules: HandshakeRules,
    header: str | bytes | None,
    *,
    csrf_token: str | None,
    csrf_cookie: str | None,
    check_cookie: bool,
    origin: str | None,
    sec_fetch_site: str | None = None,
    session: str | None = None,
    address: str | None = None,
    now: float,
) -> Flow[Accepted]:
    """Steps 1-5 of §2.6, in that order; returns the accepted request.

    Raises:
        HandshakeError, OriginRejected, CsrfFailed, Throttled,
        HandshakeReplayed, StoreUnavailable: see the module docstring.
    """
    epk_text, nonce_text = _request_fields(header)  # 1: shape, alphabet and lengths
    canonical = check_origin(origin, sec_fetch_site, rules.origins)  # 2
    if not isinstance(csrf_token, str):
        raise CsrfFailed("no CSRF token")
    browser = rules.csrf.verify(
        csrf_token, cookie=csrf_cookie, session=session, check_cookie=check_cookie, now=now
    )
    binding = f"s:{session}" if session is not None else f"c:{browser}"
    if rules.session_rates:  # 3
        yield from _throttle(rules, binding, rules.session_rates, "hs-session")
    if rules.address_rates and address:
        yield from _throttle(rules, address, rules.address_rates, "hs-address")
    # 4: canonical base64url (alphabet and lengths checked in 1), then the point.
    epk = _decode_canonical(epk_text, POINT_LENGTH)
    client_key, epk, nonce = _client_key(epk, _decode_canonical(nonce_text, NONCE_LENGTH))
    handshake_id = _handshake_id(nonce)
    nonce_key, epk_key = rules._replay_keys(binding, epk, handshake_id)  # 5
    ttl = rules.replay_ttl
    fresh = yield Apply(
        Batch(
            (Absent(nonce_key), Absent(epk_key)),
            (Put(nonce_key, b"1", ttl), Put(epk_key, b"1", ttl)),
        )
    )
    if not fresh:
        raise HandshakeReplayed("nonce or client key seen before")
    return Accepted(client_key, epk, nonce, canonical, csrf_token, handshake_id)


def _throttle(rules: HandshakeRules, key: str, rates: tuple[Rate, ...], scope: str) -> Flow[None]:
    keys = rules._limiter
    decision = yield from hit_flow([(keys.key(key[:512], r, scope=scope), r) for r in rates])
    if not decision.allowed:
        raise Throttled("too many handshakes", retry_after=decision.retry_after)


def seal(
    accepted: Accepted,
    plaintext: bytes,
    *,
    rand: Random,
    delivery: Delivery = "header",
    server_key: ec.EllipticCurvePrivateKey | None = None,
) -> HandshakeReply:
    """Step 6: a fresh server key and nonce, TH, K, and the encrypted payload.

    ``server_key`` is for test vectors only; by default every handshake
    gets a new one and it is dropped afterwards.

    Raises:
        HandshakeError: header delivery and the reply header would exceed
            :data:`MAX_HEADER_DELIVERY` bytes (nginx answers 502 to bigger
            upstream headers): configure ``delivery="body"`` or a smaller
            payload. Checked before any EC operation.
    """
    if delivery == "header" and header_line_length(len(plaintext)) > MAX_HEADER_DELIVERY:
        raise HandshakeError(
            f"the handshake reply would be a {header_line_length(len(plaintext))}-byte header, "
            f"above the {MAX_HEADER_DELIVERY}-byte limit of header delivery; "
            "use handshake delivery 'body' or a smaller payload"
        )
    key = server_key if server_key is not None else ec.generate_private_key(_P256)
    epk_s = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    n_s = rand(NONCE_LENGTH)
    iv = rand(IV_LENGTH)
    if len(n_s) != NONCE_LENGTH or len(iv) != IV_LENGTH:
        raise ValidationError("the random source returned the wrong number of bytes")
    z = key.exchange(_ECDH, accepted.client_key)
    n_c = accepted.nonce
    th = _transcript(accepted.origin, accepted.epk, n_c, epk_s, n_s, accepted.csrf_token)
    ct = AESGCM(derive_key(z, n_c, n_s, th)).encrypt(iv, plaintext, th)
    return HandshakeReply(delivery, epk_s, n_s, iv, ct, accepted.handshake_id)
