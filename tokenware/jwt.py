"""``tw.jwt``: access JWTs and rotating refresh tokens.

The access-token profile lives in :mod:`tokenware.core.jwt` and the refresh
families in :mod:`tokenware.core.refresh`; this module runs them with the
sync or the async driver. ``tw.jwt`` is a :class:`Jwt`; ``tw.aio.jwt`` is the
same class over the async driver, typed as :class:`AsyncJwt` (every method a
coroutine).

Lifetimes follow authomatic and are keyword arguments of :class:`Jwt`; to
change them, build the service over a facade with :meth:`Jwt.over`::

    jwt = Jwt.over(tw, access_ttl=300, grace=5)          # sync
    ajwt = Jwt.over(tw.aio, access_ttl=300, grace=5)     # async, same store
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast, overload

from tokenware.core.encoding import Random
from tokenware.core.flow import Flow, done
from tokenware.core.jwt import AccessClaims, AccessTokenCodec, identity_from
from tokenware.core.refresh import Lifetimes, RefreshRules, TokenPair
from tokenware.errors import ConfigurationError, InvalidToken, RevokedToken, ValidationError
from tokenware.identity import Identity

if TYPE_CHECKING:
    from tokenware.config import Settings
    from tokenware.facade import AsyncTokenware, Tokenware
    from tokenware.sessions import Runner

__all__ = ["AsyncJwt", "Jwt", "TokenPair"]


class Jwt:
    """Access tokens (signed JWTs) and refresh tokens (opaque, rotated).

    Args:
        settings: the facade's settings (keys, issuer, audience, algorithm,
            clock, key prefix).
        run: runs a flow: the sync driver (``tw.jwt``) or the async one
            (``tw.aio.jwt``).
        random: source of random bytes for token ids and secrets.
        codec: the access-token codec (default: built from ``settings``).
        access_ttl: access-token lifetime in seconds (15 min).
        refresh_ttl: a family unused this long expires (25 min).
        prolonged_access_ttl: access lifetime with ``prolong=True`` (60 min).
        prolonged_refresh_ttl: refresh lifetime with ``prolong=True`` (7 days).
        absolute_ttl: longest life of a login however often it is refreshed
            (30 days); ``None`` for no limit.
        grace: seconds during which the previous refresh token may be
            retried while its successor is unused (10 s; 0 to 60).
        check_family: when true, :meth:`verify` also checks that the access
            token's refresh family (its ``sid``) is still live: one store
            read per call, and revoking a family takes its access tokens
            down at once instead of when they expire.
        cache_size: how many verified access tokens to remember (default
            1024; 0 turns the cache off). A repeated token skips the
            signature and claim checks until its ``exp``, never past it;
            the ``check_family`` store read still runs on every call. Keys
            are BLAKE2b digests of the tokens, never the tokens.

    Raises:
        ConfigurationError: an invalid lifetime or grace.
    """

    def __init__(
        self,
        settings: Settings,
        run: Runner,
        *,
        random: Random = secrets.token_bytes,
        codec: AccessTokenCodec | None = None,
        access_ttl: int = 15 * 60,
        refresh_ttl: int = 25 * 60,
        prolonged_access_ttl: int = 60 * 60,
        prolonged_refresh_ttl: int = 7 * 24 * 3600,
        absolute_ttl: int | None = 30 * 24 * 3600,
        grace: float = 10.0,
        check_family: bool = False,
        cache_size: int = 1024,
    ) -> None:
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigurationError("cache_size must be an integer >= 0")
        if not callable(random):
            raise ConfigurationError("random must be a callable like secrets.token_bytes")
        self._codec = codec if codec is not None else AccessTokenCodec.from_settings(settings)
        self._rules = RefreshRules(
            ring=settings.keys,
            prefix=settings.key_prefix,
            codec=self._codec,
            lifetimes=Lifetimes(
                access=access_ttl,
                refresh=refresh_ttl,
                prolonged_access=prolonged_access_ttl,
                prolonged_refresh=prolonged_refresh_ttl,
                absolute=absolute_ttl,
                grace=grace,
            ),
        )
        self._run = run
        self._clock: Callable[[], float] = settings.clock
        self._random = random
        self._check_family = bool(check_family)
        self._cache = _VerifiedCache(cache_size) if cache_size else None

    @overload
    @classmethod
    def over(cls, facade: Tokenware, **options: Any) -> Jwt: ...

    @overload
    @classmethod
    def over(cls, facade: AsyncTokenware, **options: Any) -> AsyncJwt: ...

    @classmethod
    def over(cls, facade: Tokenware | AsyncTokenware, **options: Any) -> Jwt | AsyncJwt:
        """A service over ``facade``'s store and keys, with other ``options``.

        ``Jwt.over(tw, ...)`` is synchronous, ``Jwt.over(tw.aio, ...)`` async;
        ``options`` are the keyword arguments of :class:`Jwt`.
        """
        # An AsyncTokenware wraps the Tokenware that owns the settings.
        base = cast("Tokenware", getattr(facade, "_tw", facade))
        options.setdefault("random", base._random)
        service = cls(base.settings, facade._run, **options)
        return service if base is facade else cast(AsyncJwt, service)

    def _with_runner(self, run: Runner) -> AsyncJwt:
        """This service (same codec, rules and options) over another runner."""
        twin = copy.copy(self)
        twin._run = run
        return cast(AsyncJwt, twin)

    # -- the API -----------------------------------------------------------------

    def issue(
        self,
        subject: str,
        *,
        claims: Mapping[str, Any] | None = None,
        scopes: Iterable[str] = (),
        prolong: bool = False,
    ) -> TokenPair:
        """Log ``subject`` in: a new access token and the first refresh token of a family.

        Args:
            subject: the user id (the ``sub`` claim).
            claims: extra JSON claims for the access token; registered
                claims (``iss``, ``sub``, ``exp``...) cannot be overridden.
            scopes: granted scopes (the ``scope`` claim, space-separated).
            prolong: "remember me": longer lifetimes (60 min / 7 days).

        Raises:
            ValidationError: bad subject, scopes or claims.
            StoreUnavailable: the store cannot answer.
        """
        flow = self._rules.issue(
            subject,
            scopes=scopes,
            claims=claims,
            prolong=prolong,
            now=self._clock(),
            rand=self._random,
        )
        return self._run(flow)  # type: ignore[no-any-return]

    def verify(self, access_token: str) -> Identity:
        """The identity an access token proves (kind ``"jwt"``).

        Raises:
            ExpiredToken: the token has expired.
            InvalidToken: anything else wrong with it (the reason is only in
                ``detail``).
            RevokedToken: ``check_family`` is on and the token's family was
                revoked or has expired.
            StoreUnavailable: ``check_family`` is on and the store cannot answer.
        """
        return self._run(self._verify(access_token, self._clock()))  # type: ignore[no-any-return]

    def _verify(self, access_token: str, now: float) -> Flow[Identity]:
        claims, identity = self._verified(access_token, now)
        if self._check_family:
            # Never served from the cache: a revoked family must stop its
            # access tokens on the next request.
            sid = claims.claims.get("sid")
            if not isinstance(sid, str) or not (yield from self._rules.family_live(sid, now=now)):
                raise RevokedToken("the access token's refresh family is revoked or expired")
        return identity

    def _verified(self, access_token: str, now: float) -> tuple[AccessClaims, Identity]:
        """The token's claims and identity: the codec's checks, or a cache hit
        still before its ``exp``. Everything :meth:`verify` does but the
        revocation check (``check_family``)."""
        if not isinstance(access_token, str):
            raise ValidationError("access_token must be a string")
        if not access_token.isascii():
            # Before hashing for the cache: a lone surrogate cannot be encoded.
            raise InvalidToken("not a compact JWS")
        # Encoded once, for the cache key and the codec both.
        raw = access_token.encode("ascii")
        cache = self._cache
        if cache is None:
            claims = self._codec.decode_ascii(raw, now=now)
            return claims, identity_from(claims)
        # Inlined cache.get: this runs for every request with a JWT.
        key = hashlib.blake2b(raw).digest()
        hit = cache.entries.get(key)
        if hit is None or now >= hit[0].expires_at:
            claims = self._codec.decode_ascii(raw, now=now)
            hit = (claims, identity_from(claims))
            cache.put(key, hit)
        return hit

    def refresh(self, refresh_token: str, access_token: str | None = None) -> TokenPair:
        """Exchange a refresh token for a new pair; the presented one is used up.

        Args:
            refresh_token: the ``twr_...`` token from the last pair.
            access_token: optionally the access token of that pair
                (authomatic's pairing); it may have expired, but must verify.

        Raises:
            RefreshTokenNotFound: malformed, unknown, wrong secret, revoked
                or expired.
            RefreshTokenReused: an already rotated token: the whole family
                is now revoked.
            TokensMismatch: ``access_token`` does not verify or is not the
                one issued with ``refresh_token``; nothing was consumed.
            StoreUnavailable: the store cannot answer (the token is not
                consumed), or the family is too contended right now.
        """
        flow = self._rules.refresh(
            refresh_token, access_token, now=self._clock(), rand=self._random
        )
        return self._run(flow)  # type: ignore[no-any-return]

    def revoke(self, refresh_token: str) -> bool:
        """Log one login out: delete the family of ``refresh_token``.

        Returns:
            ``True`` if a live family was revoked; ``False`` for a malformed,
            unknown or already revoked token, or a wrong secret.
        """
        return self._run(self._rules.revoke(refresh_token, now=self._clock()))  # type: ignore[no-any-return]

    def revoke_all(self, subject: str) -> int:
        """Log ``subject`` out everywhere: delete every family, atomically.

        ``subject`` is matched exactly (never as a pattern). Returns how many
        live families were revoked.
        """
        return self._run(self._rules.revoke_all(subject, now=self._clock()))  # type: ignore[no-any-return]

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWK Set (``{"keys": []}`` for HS256)."""
        return self._run(done(self._codec.jwks()))  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Jwt(prefix={self._rules.prefix!r}, lifetimes={self._rules.lifetimes!r})"


class _VerifiedCache:
    """Verified access tokens by the BLAKE2b-512 digest of the token (never
    the token itself; BLAKE2b rather than SHA-256 because hashlib builds it
    without OpenSSL's per-call context set-up, which was most of the cost
    of hashing a token): their claims and the identity they prove (both
    immutable, so shared between requests); bounded, oldest out first.
    Readers check the token's ``exp`` on every hit (see ``Jwt._verified``),
    so an entry is never used at or after it; an expired entry is replaced
    when that token is verified again, or ages out.

    Shared by ``tw.jwt`` and ``tw.aio.jwt`` (and their threads): writes take
    the lock, reads are single dict lookups.
    """

    __slots__ = ("_lock", "_size", "entries")

    def __init__(self, size: int) -> None:
        self._size = size
        # An OrderedDict, not a dict: evicting a dict's first key walks over
        # every slot already evicted, an O(size) scan per miss once full.
        self.entries: OrderedDict[bytes, tuple[AccessClaims, Identity]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: bytes, hit: tuple[AccessClaims, Identity]) -> None:
        with self._lock:
            entries = self.entries
            if key in entries:  # an expired entry, replaced (rare: no pop otherwise)
                del entries[key]
            while len(entries) >= self._size:
                entries.popitem(last=False)
            entries[key] = hit

    def __len__(self) -> int:
        return len(self.entries)


class AsyncJwt(Protocol):
    """The methods of :class:`Jwt` as coroutines (``tw.aio.jwt``)."""

    async def issue(
        self,
        subject: str,
        *,
        claims: Mapping[str, Any] | None = None,
        scopes: Iterable[str] = (),
        prolong: bool = False,
    ) -> TokenPair:
        """See :meth:`Jwt.issue`."""

    async def verify(self, access_token: str) -> Identity:
        """See :meth:`Jwt.verify`."""

    async def refresh(self, refresh_token: str, access_token: str | None = None) -> TokenPair:
        """See :meth:`Jwt.refresh`."""

    async def revoke(self, refresh_token: str) -> bool:
        """See :meth:`Jwt.revoke`."""

    async def revoke_all(self, subject: str) -> int:
        """See :meth:`Jwt.revoke_all`."""

    async def jwks(self) -> dict[str, Any]:
        """See :meth:`Jwt.jwks`."""
