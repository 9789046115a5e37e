"""``tw.handshake``: the server side of TWHS1, the encrypted browser handshake.

The protocol and its checks live in :mod:`tokenware.core.handshake`; this
module runs them with the sync or the async driver and then seals the app's
payload. ``tw.handshake`` is :class:`Handshake`; ``tw.aio.handshake`` is
:class:`AsyncHandshake`, the same methods with ``respond`` a coroutine.

An HTTP adapter does, per ``POST`` to the handshake path::

    hs = tw.handshake.configure(origins=["https://app.example.com"])
    reply = hs.respond(
        request.headers.get("Tokenware-Handshake"),
        csrf_token=request.headers.get("X-CSRF-Token"),
        csrf_cookie=request.cookies.get("tokenware_csrf"),
        origin=request.headers.get("Origin"),
        sec_fetch_site=request.headers.get("Sec-Fetch-Site"),
        address=client_ip,
        payload=lambda: tw.jwt.issue(user_id),  # called only once every check passed
    )
    # reply.status, reply.headers, reply.body

and answers a :class:`~tokenware.errors.ClientError` with its ``status_code``
and ``{"error": code}``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from tokenware.core.encoding import Random
from tokenware.core.flow import Flow
from tokenware.core.handshake import (
    CSRF_COOKIE,
    CSRF_HEADER,
    HEADER_NAME,
    Accepted,
    CsrfCookie,
    Delivery,
    HandshakeReply,
    HandshakeRules,
    accept_flow,
    payload_bytes,
    seal,
)
from tokenware.core.throttle import Rate
from tokenware.errors import ConfigurationError
from tokenware.sessions import Runner

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "HEADER_NAME",
    "AsyncHandshake",
    "CsrfCookie",
    "Handshake",
    "HandshakeReply",
]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


_UNSET: Any = _Unset()


class _Base:
    def __init__(
        self, rules: HandshakeRules, run: Runner, clock: Callable[[], float], rand: Random
    ) -> None:
        self._rules = rules
        self._run = run
        self._clock = clock
        self._rand = rand

    @property
    def rules(self) -> HandshakeRules:
        """The validated settings."""
        return self._rules

    @property
    def origins(self) -> tuple[str, ...]:
        """The origins allowed to run the handshake (normalised)."""
        return self._rules.origins

    def configure(
        self,
        *,
        origins: Iterable[str] | None = None,
        delivery: str | None = None,
        session_rate: str | Iterable[Rate] | None = _UNSET,
        address_rate: str | Iterable[Rate] | None = _UNSET,
        replay_ttl: float | None = None,
        csrf_max_age: float | None = None,
    ) -> Any:
        """A copy with other settings (same store and keys).

        Args:
            origins: the allow-list, e.g. ``["https://app.example.com"]``.
                With none configured every handshake gets 403
                ``origin_rejected``.
            delivery: ``"header"`` (default; TokenSec's exchange, refused
                above 4096 bytes) or ``"body"`` (a JSON body).
            session_rate, address_rate: throttles per session and per
                client address (``None``: off). Defaults ``10/minute`` and
                ``60/minute``.
            replay_ttl: seconds a nonce and key stay remembered (300).
            csrf_max_age: lifetime of a CSRF token in seconds (12 hours).

        Raises:
            ConfigurationError: an invalid setting.
        """
        old = self._rules
        rules = HandshakeRules.build(
            ring=old.ring,
            prefix=old.prefix,
            origins=old.origins if origins is None else origins,
            delivery=old.delivery if delivery is None else delivery,
            session_rate=old.session_rates if session_rate is _UNSET else session_rate,
            address_rate=old.address_rates if address_rate is _UNSET else address_rate,
            replay_ttl=old.replay_ttl if replay_ttl is None else replay_ttl,
            csrf_max_age=old.csrf.max_age if csrf_max_age is None else csrf_max_age,
        )
        return type(self)(rules, self._run, self._clock, self._rand)

    # -- CSRF tokens -------------------------------------------------------------

    def issue_csrf(self, *, session: str | None = None) -> str:
        """A new signed CSRF token (bound to ``session`` when given).

        Raises:
            ValidationError: ``session`` is not valid text.
        """
        return self._rules.csrf.issue(session=session, now=self._clock(), rand=self._rand)

    def csrf_cookie(
        self, token: str | None = None, *, session: str | None = None, secure: bool = True
    ) -> CsrfCookie:
        """The ``tokenware_csrf`` cookie to set (a new token unless ``token`` is given).

        ``SameSite=Strict``, ``Path=/``, readable by the page's script (the
        client echoes it in ``X-CSRF-Token``); ``secure=False`` only for
        plain-HTTP development.
        """
        value = token if token is not None else self.issue_csrf(session=session)
        return CsrfCookie(
            name=CSRF_COOKIE, value=value, max_age=int(self._rules.csrf.max_age), secure=secure
        )

    def verify_csrf(
        self, token: str | None, *, cookie: str | None = _UNSET, session: str | None = None
    ) -> None:
        """Check a CSRF token (and, when ``cookie`` is passed, that it equals it).

        Raises:
            CsrfFailed: see :meth:`tokenware.core.handshake.CsrfTokens.verify`.
        """
        self._rules.csrf.verify(
            token,
            cookie=None if cookie is _UNSET else cookie,
            check_cookie=cookie is not _UNSET,
            session=session,
            now=self._clock(),
        )

    # -- the handshake -----------------------------------------------------------

    def _flow(
        self,
        request_header: str | bytes | None,
        csrf_token: str | None,
        csrf_cookie: str | None,
        origin: str | None,
        sec_fetch_site: str | None,
        session: str | None,
        address: str | None,
    ) -> Flow[Accepted]:
        return accept_flow(
            self._rules,
            request_header,
            csrf_token=csrf_token,
            csrf_cookie=None if csrf_cookie is _UNSET else csrf_cookie,
            check_cookie=csrf_cookie is not _UNSET,
            origin=origin,
            sec_fetch_site=sec_fetch_site,
            session=session,
            address=address,
            now=self._clock(),
        )

    def _seal(self, accepted: Accepted, value: Any, delivery: str | None) -> HandshakeReply:
        mode = self._rules.delivery if delivery is None else delivery
        if mode not in ("header", "body"):
            raise ConfigurationError("handshake delivery must be 'header' or 'body'")
        chosen: Delivery = "header" if mode == "header" else "body"
        plaintext = payload_bytes(value, now=self._clock())
        return seal(accepted, plaintext, rand=self._rand, delivery=chosen)


class Handshake(_Base):
    """TWHS1 server side: CSRF tokens and ``respond``.

    Every check of ``reference/security.md`` §2.6 runs in order before the
    payload is made; see :mod:`tokenware.core.handshake`.
    """

    def respond(
        self,
        request_header: str | bytes | None,
        *,
        csrf_token: str | None,
        csrf_cookie: str | None = _UNSET,
        origin: str | None,
        payload: Any,
        sec_fetch_site: str | None = None,
        session: str | None = None,
        address: str | None = None,
        delivery: str | None = None,
    ) -> HandshakeReply:
        """Check a handshake request and encrypt ``payload`` for it.

        Args:
            request_header: the ``Tokenware-Handshake`` request header value.
            csrf_token: the ``X-CSRF-Token`` header value.
            csrf_cookie: the ``tokenware_csrf`` cookie value; when passed
                (even ``None``) the header must equal it (double submit).
            origin: the ``Origin`` header; must be in the allow-list.
            payload: what to deliver: an access token string, a mapping, a
                :class:`~tokenware.jwt.TokenPair` (its access token only),
                or a callable returning one of these, called only after
                every check passed (so no token is minted for a refused or
                replayed handshake).
            sec_fetch_site: the ``Sec-Fetch-Site`` header.
            session: the app's session id, if any: the CSRF token must be
                bound to it, and throttling and replay keys use it.
            address: the client address, for the per-address throttle.
            delivery: ``"header"`` or ``"body"`` (default: configured).

        Raises:
            HandshakeError: 400 ``invalid_handshake`` (also for a header
                reply above 4096 bytes).
            OriginRejected: 403 ``origin_rejected``.
            CsrfFailed: 403 ``csrf_failed``.
            Throttled: 429 with ``retry_after``.
            HandshakeReplayed: 409 ``handshake_replayed``.
            StoreUnavailable: 503; never a pass.
            ValidationError: an app-supplied ``session`` or ``address`` that
                is not valid text (e.g. holds a lone surrogate).
        """
        accepted: Accepted = self._run(
            self._flow(
                request_header, csrf_token, csrf_cookie, origin, sec_fetch_site, session, address
            )
        )
        value = payload() if callable(payload) else payload
        if type(value) is not str and inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()
            raise TypeError("an async payload callable needs tw.aio.handshake.respond")
        return self._seal(accepted, value, delivery)


class AsyncHandshake(_Base):
    """``tw.aio.handshake``: :class:`Handshake` with ``respond`` a coroutine."""

    async def respond(
        self,
        request_header: str | bytes | None,
        *,
        csrf_token: str | None,
        csrf_cookie: str | None = _UNSET,
        origin: str | None,
        payload: Any,
        sec_fetch_site: str | None = None,
        session: str | None = None,
        address: str | None = None,
        delivery: str | None = None,
    ) -> HandshakeReply:
        """See :meth:`Handshake.respond`; ``payload`` may also be an async callable."""
        accepted: Accepted = await self._run(
            self._flow(
                request_header, csrf_token, csrf_cookie, origin, sec_fetch_site, session, address
            )
        )
        value = payload() if callable(payload) else payload
        if inspect.isawaitable(value):
            value = await value
        return self._seal(accepted, value, delivery)
