"""``Tokenware`` and ``AsyncTokenware``: the services over one store.

``Tokenware`` is the synchronous facade; ``tw.aio`` is an
``AsyncTokenware`` over the *same* store and keys, with the same service
names whose methods are coroutines. A Flask view and a Starlette endpoint in
one process therefore see the same sessions, counters and one-time state.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from tokenware._drive import run_async, run_sync
from tokenware.challenges import AsyncChallenges, Challenges
from tokenware.config import DEFAULT_STORE_URL, Settings, settings_from_env
from tokenware.core.challenge import ChallengeRules
from tokenware.core.credentials import Verifiers, authenticate, authenticate_local
from tokenware.core.encoding import Random
from tokenware.core.flow import Flow
from tokenware.core.handshake import HandshakeRules
from tokenware.core.pat import PatRules
from tokenware.core.session import SessionRules
from tokenware.core.throttle import ThrottleKeys
from tokenware.errors import ConfigurationError
from tokenware.handshake import AsyncHandshake, Handshake
from tokenware.identity import Identity
from tokenware.jwt import AsyncJwt, Jwt
from tokenware.keys import KeyRing
from tokenware.pats import AsyncPats, Pats
from tokenware.sessions import AsyncSessions, Sessions
from tokenware.stores import StorePair, store_from_url
from tokenware.throttling import AsyncThrottle, Throttle

__all__ = ["AsyncTokenware", "Tokenware"]


class Tokenware:
    """The synchronous facade: every service, over one store and one key ring.

    Args:
        store: a store URL (default ``sqlite:///tokenware.db``) or an open
            :class:`~tokenware.stores.StorePair`.
        secret_key: the root secret, at least 32 bytes (``str`` is UTF-8
            encoded). Every sub-key is derived from it.
        keys: a :class:`~tokenware.keys.KeyRing` instead of ``secret_key``,
            for rotation.
        issuer, audience, jwt_algorithm, jwt_key: JWT settings.
        clock: time source; every expiry decision made in Python reads it.
        key_prefix: prefix of every store key (default ``tw``).
        session_ttl: default session lifetime in seconds (30 days).
        store_timeout: seconds a store command may take (default 0.5).
        store_connect_timeout: seconds to connect to a network store.
        random: source of random bytes (default :func:`secrets.token_bytes`).
        jwt_check_family: ``tw.jwt``'s ``check_family``: also check, on every
            access-token verification, that its refresh family is live.
        jwt_cache_size: ``tw.jwt``'s ``cache_size``: verified access tokens
            remembered until their ``exp`` (0 turns the cache off).

    Raises:
        ConfigurationError: a missing or short secret, or any invalid setting.
    """

    def __init__(
        self,
        *,
        store: str | StorePair = DEFAULT_STORE_URL,
        secret_key: bytes | str | None = None,
        keys: KeyRing | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        jwt_algorithm: str = "HS256",
        jwt_key: Any = None,
        clock: Callable[[], float] = time.time,
        key_prefix: str = "tw",
        session_ttl: float = 30 * 24 * 3600.0,
        store_timeout: float = 0.5,
        store_connect_timeout: float = 0.5,
        random: Random = secrets.token_bytes,
        jwt_check_family: bool = False,
        jwt_cache_size: int = 1024,
    ) -> None:
        if keys is None:
            if secret_key is None:
                raise ConfigurationError(
                    "secret_key is required (at least 32 bytes; set TOKENWARE_SECRET_KEY "
                    "for Tokenware.from_env())"
                )
            keys = KeyRing.from_secret(secret_key)
        elif secret_key is not None:
            raise ConfigurationError("pass secret_key or keys, not both")
        self.settings = Settings(
            store=store,
            keys=keys,
            issuer=issuer,
            audience=audience,
            jwt_algorithm=jwt_algorithm,
            jwt_key=jwt_key,
            clock=clock,
            key_prefix=key_prefix,
            session_ttl=session_ttl,
            store_timeout=store_timeout,
            store_connect_timeout=store_connect_timeout,
        )
        if not callable(random):
            raise ConfigurationError("random must be a callable like secrets.token_bytes")
        self._random = random
        self.stores: StorePair = (
            store
            if isinstance(store, StorePair)
            else store_from_url(
                store, clock=clock, timeout=store_timeout, connect_timeout=store_connect_timeout
            )
        )
        pat_rules = PatRules(ring=keys, prefix=key_prefix)
        self._verifiers = Verifiers(
            sessions=SessionRules(ring=keys, prefix=key_prefix, default_ttl=session_ttl),
            pats=pat_rules,
            clock=clock,
            jwt=self._verify_jwt,
            jwt_local=self._verify_jwt_local,
        )
        #: Session tokens and short-lived values.
        self.sessions = Sessions(self._verifiers.sessions, self._run, clock, random)
        #: Access JWTs and rotating refresh tokens.
        self.jwt = Jwt(
            self.settings,
            self._run,
            random=random,
            check_family=jwt_check_family,
            cache_size=jwt_cache_size,
        )
        #: Personal access tokens.
        self.pats = Pats(pat_rules, self._run, clock, random)
        self._challenge_rules = ChallengeRules(ring=keys, prefix=key_prefix, rand=random)
        #: One-time challenges: email links and SMS codes.
        self.challenges = Challenges(self._challenge_rules, self._run, clock)
        self._throttle_keys = ThrottleKeys(ring=keys, prefix=key_prefix)
        #: GCRA rate limiting.
        self.throttle = Throttle(self._throttle_keys, self._run)
        self._handshake_rules = HandshakeRules.build(ring=keys, prefix=key_prefix)
        #: TWHS1, the encrypted browser handshake (server side); see
        #: ``tw.handshake.configure(origins=[...])``.
        self.handshake = Handshake(self._handshake_rules, self._run, clock, random)
        #: The async facade over the same store.
        self.aio = AsyncTokenware(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Tokenware:
        """Build from ``TOKENWARE_*`` environment variables (see :mod:`tokenware.config`).

        Keyword ``overrides`` win over the environment.
        """
        return cls(**settings_from_env(environ, **overrides))

    def _run(self, flow: Flow[Any]) -> Any:
        return run_sync(flow, self.stores.sync)

    def _verify_jwt(self, token: str) -> Flow[Identity]:
        # Late-bound, so a tw.jwt replaced by Jwt.over(tw, ...) is the one used.
        jwt = self.jwt
        return jwt._verify(token, jwt._clock())

    def _verify_jwt_local(self, token: str) -> Identity | None:
        # _verify_jwt without a store: None when check_family needs one.
        jwt = self.jwt
        if jwt._check_family:
            return None
        return jwt._verified(token, jwt._clock())[1]

    def _authenticate_local(self, authorization: str | None) -> Identity | None:
        """:meth:`authenticate` when that needs no store, else ``None``.

        The middlewares' fast lane (:func:`tokenware.core.http.fast_outcome`).
        """
        return authenticate_local(authorization, self._verifiers)

    def _authenticate_flow(self, authorization: str | None) -> Flow[Identity]:
        """The flow of :meth:`authenticate`, for the middlewares' drivers."""
        return authenticate(authorization, self._verifiers)

    def authenticate(self, authorization: str | None) -> Identity:
        """Verify an ``Authorization`` header value and return the identity.

        Dispatches on the token's shape: ``tws_`` session, ``twp_`` personal
        access token, or access JWT (verified by ``tw.jwt``, with its
        ``check_family`` revocation check and its cache).

        Raises:
            MissingCredentials: no credentials.
            InvalidRequest: malformed header.
            InvalidToken: the token does not verify (the reason is only in
                ``detail``).
            StoreUnavailable: the store cannot answer; never a pass.
        """
        return run_sync(authenticate(authorization, self._verifiers), self.stores.sync)

    def close(self) -> None:
        """Close the synchronous store connections."""
        self.stores.sync.close()

    def __enter__(self) -> Tokenware:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Tokenware(store={self.stores.url!r}, key_prefix={self.settings.key_prefix!r})"


class AsyncTokenware:
    """The async facade (``tw.aio``): same services and names, as coroutines."""

    def __init__(self, tw: Tokenware) -> None:
        self._tw = tw
        self.settings = tw.settings
        #: Session tokens and short-lived values (coroutines).
        self.sessions = cast(
            AsyncSessions,
            Sessions(tw._verifiers.sessions, self._run, tw.settings.clock, tw._random),
        )
        #: Access JWTs and rotating refresh tokens (coroutines).
        self.jwt: AsyncJwt = tw.jwt._with_runner(self._run)
        #: Personal access tokens (coroutines; ``list`` is an async iterator).
        self.pats: AsyncPats = tw.pats._with_runner(self._run)
        #: One-time challenges: email links and SMS codes (coroutines).
        self.challenges = cast(
            AsyncChallenges, Challenges(tw._challenge_rules, self._run, tw.settings.clock)
        )
        #: GCRA rate limiting (coroutines).
        self.throttle = cast(AsyncThrottle, Throttle(tw._throttle_keys, self._run))
        #: TWHS1, the encrypted browser handshake (``respond`` is a coroutine).
        self.handshake = AsyncHandshake(
            tw._handshake_rules, self._run, tw.settings.clock, tw._random
        )

    def _run(self, flow: Flow[Any]) -> Any:
        return run_async(flow, self._tw.stores.aio)

    async def authenticate(self, authorization: str | None) -> Identity:
        """See :meth:`Tokenware.authenticate`."""
        return await run_async(
            authenticate(authorization, self._tw._verifiers), self._tw.stores.aio
        )

    async def aclose(self) -> None:
        """Close the asynchronous store connections."""
        await self._tw.stores.aio.aclose()

    async def __aenter__(self) -> AsyncTokenware:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
