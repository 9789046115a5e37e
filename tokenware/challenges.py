"""``tw.challenges``: one-time challenges for email links and SMS codes.

The rules live in :mod:`tokenware.core.challenge`; this module runs them with
the sync or the async driver. ``tw.challenges`` is :class:`Challenges`;
``tw.aio.challenges`` has the same methods as coroutines
(:class:`AsyncChallenges`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from tokenware.core.challenge import (
    DEFAULT_MAX_ATTEMPTS,
    Challenge,
    ChallengeInfo,
    ChallengeRules,
    ChallengeVerification,
    SecretSpec,
)

if TYPE_CHECKING:
    from tokenware.sessions import Runner

__all__ = [
    "AsyncChallenges",
    "Challenge",
    "ChallengeInfo",
    "ChallengeVerification",
    "Challenges",
    "SecretSpec",
]


class Challenges:
    """One-time challenges bound to an ``(action, id)`` pair.

    Every method raises :class:`~tokenware.errors.StoreUnavailable` when the
    store cannot answer (never a pass) and
    :class:`~tokenware.errors.ValidationError` for bad arguments.
    """

    def __init__(self, rules: ChallengeRules, run: Runner, clock: Callable[[], float]) -> None:
        self._rules = rules
        self._run = run
        self._clock = clock

    def create(
        self,
        action: str,
        id: str,
        *,
        ttl: float | None = None,
        throttle: float | bool | None = None,
        metadata: Any = None,
        secret: bool | SecretSpec | Mapping[str, Any] = True,
        regenerate: bool = False,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> Challenge:
        """Create the challenge for ``(action, id)``, replacing any older one.

        Args:
            action: what the challenge is for, such as ``"verify-email"``.
            id: who it is for (an email address, a phone number); only a
                keyed HMAC of it names store keys, and it is stored sealed.
            ttl: lifetime in seconds (``None``: no expiry).
            throttle: seconds during which another ``create`` for the same
                pair raises ``Throttled``; ``True`` means ``ttl``. Needs
                ``ttl`` and must not exceed it.
            metadata: any JSON value, returned by ``info`` and ``verify``.
            secret: ``True`` (256 random bits sealed into a URL-safe token),
                ``False`` (no secret), or a :class:`SecretSpec` / mapping
                such as ``{"type": "number", "length": 6}``.
            regenerate: also return a ``uid`` for ``regenerate``/``info``/``remove``.
            max_attempts: wrong secrets that burn the challenge (1 to 100).

        Returns:
            The challenge; ``secret`` is what to send and is shown this once.

        Raises:
            Throttled: the pair's throttle still holds (``retry_after`` seconds).
            Conflict: the pair kept changing concurrently.
        """
        flow = self._rules.create(
            action,
            id,
            ttl=ttl,
            throttle=throttle,
            metadata=metadata,
            secret=secret,
            regenerate=regenerate,
            max_attempts=max_attempts,
            now=self._clock(),
        )
        return self._run(flow)  # type: ignore[no-any-return]

    def verify(
        self,
        token: str | None = None,
        *,
        action: str | None = None,
        id: str | None = None,
        secret: str | None = None,
        erase: bool = True,
        control: Mapping[str, Any] | None = None,
    ) -> ChallengeVerification:
        """Check a challenge: a sealed ``token``, or ``action`` + ``id`` (+ ``secret``).

        With ``erase`` (the default) a success deletes the challenge and its
        throttle lock in the same atomic operation as the check, so one code
        verifies exactly once however many requests race.

        Args:
            token: a sealed token from ``create`` or ``regenerate``.
            action, id: the pair, for codes and secret-less challenges.
            secret: the code the user typed (compared exactly: no trimming).
            erase: consume the challenge; ``False`` keeps it and later
                successes report ``is_first_verification=False``.
            control: ``{"id": ..., "action": ...}`` that the token must carry.

        Raises:
            InvalidToken: wrong, malformed, tampered or stale secret; a
                failed ``control``; a burned challenge (same error as a wrong
                code).
            NotFound: no such challenge (expired, replaced or already used).
            Conflict: the challenge kept changing concurrently.
        """
        flow = self._rules.verify(
            token,
            action=action,
            id=id,
            secret=secret,
            erase=erase,
            control=control,
            now=self._clock(),
        )
        return self._run(flow)  # type: ignore[no-any-return]

    def info(
        self,
        *,
        uid: str | None = None,
        action: str | None = None,
        id: str | None = None,
        token: str | None = None,
    ) -> ChallengeInfo:
        """What is stored about a challenge, by ``uid``, ``action`` + ``id``, or ``token``.

        Raises:
            NotFound: no such challenge.
            InvalidToken: ``token`` is malformed or tampered.
        """
        flow = self._rules.info(uid=uid, action=action, id=id, token=token, now=self._clock())
        return self._run(flow)  # type: ignore[no-any-return]

    def regenerate(
        self, *, uid: str | None = None, action: str | None = None, id: str | None = None
    ) -> str:
        """A fresh secret of the same spec; the old secret stops working.

        Attempts already spent stay spent.

        Raises:
            NotFound: no such challenge, a secret-less or burned one.
            Conflict: the challenge changed concurrently.
        """
        flow = self._rules.regenerate(uid=uid, action=action, id=id, now=self._clock())
        return self._run(flow)  # type: ignore[no-any-return]

    def remove(
        self,
        *,
        uid: str | None = None,
        action: str | None = None,
        id: str | None = None,
        token: str | None = None,
    ) -> None:
        """Delete a challenge; its throttle lock keeps running.

        Raises:
            NotFound: no such challenge.
            Conflict: the challenge changed concurrently.
        """
        flow = self._rules.remove(uid=uid, action=action, id=id, token=token, now=self._clock())
        return self._run(flow)  # type: ignore[no-any-return]

    def reset(self) -> int:
        """Delete every challenge and throttle lock under the key prefix."""
        return self._run(self._rules.reset())  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Challenges(prefix={self._rules.prefix!r})"


class AsyncChallenges(Protocol):
    """The methods of :class:`Challenges` as coroutines (``tw.aio.challenges``)."""

    async def create(
        self,
        action: str,
        id: str,
        *,
        ttl: float | None = None,
        throttle: float | bool | None = None,
        metadata: Any = None,
        secret: bool | SecretSpec | Mapping[str, Any] = True,
        regenerate: bool = False,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> Challenge:
        """See :meth:`Challenges.create`."""

    async def verify(
        self,
        token: str | None = None,
        *,
        action: str | None = None,
        id: str | None = None,
        secret: str | None = None,
        erase: bool = True,
        control: Mapping[str, Any] | None = None,
    ) -> ChallengeVerification:
        """See :meth:`Challenges.verify`."""

    async def info(
        self,
        *,
        uid: str | None = None,
        action: str | None = None,
        id: str | None = None,
        token: str | None = None,
    ) -> ChallengeInfo:
        """See :meth:`Challenges.info`."""

    async def regenerate(
        self, *, uid: str | None = None, action: str | None = None, id: str | None = None
    ) -> str:
        """See :meth:`Challenges.regenerate`."""

    async def remove(
        self,
        *,
        uid: str | None = None,
        action: str | None = None,
        id: str | None = None,
        token: str | None = None,
    ) -> None:
        """See :meth:`Challenges.remove`."""

    async def reset(self) -> int:
        """See :meth:`Challenges.reset`."""
