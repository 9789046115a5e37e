"""``tw.pats``: personal access tokens (the @access-tokens successor).

The rules live in :mod:`tokenware.core.pat`; this module runs them with the
sync or the async driver. ``tw.pats`` is a :class:`Pats`; ``tw.aio.pats`` is
the same class over the async driver, typed as :class:`AsyncPats`: every
method is a coroutine, and ``list`` is an async iterator.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, cast

from tokenware.core.encoding import Random
from tokenware.core.flow import done
from tokenware.core.pat import (
    GeneratedPat,
    IssuedPat,
    PatRecord,
    PatRules,
    PatVerification,
    check_owner,
    check_role,
)
from tokenware.errors import ConfigurationError, ValidationError
from tokenware.sessions import Runner

__all__ = ["AsyncPats", "GeneratedPat", "IssuedPat", "PatRecord", "PatVerification", "Pats"]

#: Records fetched per store round trip while listing.
PAGE_SIZE = 100


class _Unset:
    """Marks an ``update`` argument that was not given (``None`` means "clear")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class Pats:
    """Personal access tokens: issue, verify, register, update, revoke, restore, list.

    Every method raises :class:`~tokenware.errors.StoreUnavailable` when the
    store cannot answer, :class:`~tokenware.errors.NotFound` for an unknown
    token id and :class:`~tokenware.errors.ValidationError` (naming the
    field) for bad arguments. ``verify`` reports a bad token in its result
    instead of raising.

    Args:
        rules: the PAT flows (keys, prefixes).
        run: the sync driver (``tw.pats``) or the async one (``tw.aio.pats``).
        clock: time source for every expiry decision.
        rand: source of random bytes for ids and secrets.
    """

    def __init__(
        self,
        rules: PatRules,
        run: Runner,
        clock: Callable[[], float],
        rand: Random = secrets.token_bytes,
    ) -> None:
        if not callable(rand):
            raise ConfigurationError("random must be a callable like secrets.token_bytes")
        self._rules = rules
        self._run = run
        self._clock = clock
        self._rand = rand
        self._async = False

    def _with_runner(self, run: Runner) -> AsyncPats:
        """This service over the async driver (``tw.aio.pats``)."""
        twin = copy.copy(self)
        twin._run = run
        twin._async = True
        return cast(AsyncPats, twin)

    def generate(self, token_id: str | None = None) -> GeneratedPat:
        """A new token, its id and its verifier, without storing anything.

        Pass the three to :meth:`register` (or keep them for later).

        Args:
            token_id: a chosen 22-character base62 id (default: random).
        """
        return self._run(done(self._rules.generate(token_id, rand=self._rand)))  # type: ignore[no-any-return]

    def issue(
        self,
        owner: str,
        *,
        is_admin: bool = False,
        roles: Iterable[str] = (),
        expires_at: float | None = None,
        name: str | None = None,
    ) -> IssuedPat:
        """Create a token for ``owner``.

        Args:
            owner: who the token acts for (a user or service id).
            is_admin: the admin flag.
            roles: at most 50 roles of ``[a-z0-9:._-]{1,100}``.
            expires_at: expiry in seconds since the epoch, or ``None``.
            name: a free-text label.

        Returns:
            The token (``twp_...``, shown this once; only a keyed hash is
            stored) and its record.
        """
        flow = self._rules.issue(
            owner,
            is_admin=is_admin,
            roles=roles,
            expires_at=expires_at,
            name=name,
            now=self._clock(),
            rand=self._rand,
        )
        return self._run(flow)  # type: ignore[no-any-return]

    def register(
        self,
        token_id: str,
        secret_phc: str,
        owner: str,
        *,
        is_admin: bool = False,
        roles: Iterable[str] = (),
        expires_at: float | None = None,
        name: str | None = None,
    ) -> PatRecord:
        """Store a token generated elsewhere, by its id and verifier.

        ``secret_phc`` is one of :meth:`generate`'s verifiers or an
        @access-tokens ``$scrypt$ln=…,r=…,p=…$salt$hash`` string (``ln ≤ 17``,
        ``r ≤ 8``, ``p ≤ 2``), re-hashed to HMAC on the first successful verify.

        Raises:
            Conflict: the token id already exists.
        """
        flow = self._rules.register(
            token_id,
            secret_phc,
            owner,
            is_admin=is_admin,
            roles=roles,
            expires_at=expires_at,
            name=name,
            now=self._clock(),
        )
        return self._run(flow)  # type: ignore[no-any-return]

    def verify(self, token: str) -> PatVerification:
        """Check a token; the reason of a failure is in the result.

        A token of the wrong shape or checksum costs no store call.
        """
        return self._run(self._rules.verify(token, now=self._clock()))  # type: ignore[no-any-return]

    def get(self, token_id: str) -> PatRecord:
        """The record of ``token_id``."""
        return self._run(self._rules.get(token_id))  # type: ignore[no-any-return]

    def update(
        self,
        token_id: str,
        *,
        owner: str = UNSET,
        is_admin: bool = UNSET,
        roles: Iterable[str] | Mapping[str, Iterable[str]] = UNSET,
        expires_at: float | None = UNSET,
    ) -> PatRecord:
        """Change some fields atomically; fields not given are kept.

        Args:
            roles: a list replaces the roles; ``{"add": [...]}`` or
                ``{"remove": [...]}`` changes them (both at once is a
                ``ValidationError``).
            expires_at: a time, or ``None`` to clear the expiry.
        """
        changes = {
            name: value
            for name, value in (
                ("owner", owner),
                ("is_admin", is_admin),
                ("roles", roles),
                ("expires_at", expires_at),
            )
            if value is not UNSET
        }
        return self._run(self._rules.update(token_id, changes))  # type: ignore[no-any-return]

    def revoke(self, token_id: str, *, expires_at: float | None = None) -> PatRecord:
        """Revoke now (idempotent). ``expires_at`` may bring the expiry earlier, never later."""
        flow = self._rules.revoke(token_id, expires_at=expires_at, now=self._clock())
        return self._run(flow)  # type: ignore[no-any-return]

    def restore(self, token_id: str) -> PatRecord:
        """Undo a revoke (idempotent), keeping the expiry.

        Raises:
            Conflict: the token has expired.
        """
        return self._run(self._rules.restore(token_id, now=self._clock()))  # type: ignore[no-any-return]

    def list(
        self,
        *,
        owner: str | None = None,
        has_role: str | None = None,
        after_token_id: str | None = None,
        limit: int | None = None,
    ) -> Iterator[PatRecord]:
        """Records sorted by token id: all, or ``owner``'s, optionally with a role.

        Pagination is stable: pass the last ``token_id`` seen as
        ``after_token_id`` to continue. Arguments are checked at the call.
        Records are fetched ``PAGE_SIZE`` at a time after one read of the
        index sets.
        """
        args = _list_args(owner, has_role, after_token_id, limit)
        if self._async:
            return cast(Iterator[PatRecord], self._alist(*args))
        return self._list(*args)

    def _list(
        self, owner: str | None, has_role: str | None, after: str | None, limit: int | None
    ) -> Iterator[PatRecord]:
        ids: list[str] = self._run(self._rules.list_ids(owner, after))
        left = limit
        for start in range(0, len(ids), PAGE_SIZE):
            page = ids[start : start + PAGE_SIZE]
            records: list[PatRecord] = self._run(self._rules.load_many(page, owner, has_role))
            for record in records:
                if left is not None:
                    if left <= 0:
                        return
                    left -= 1
                yield record
            if left is not None and left <= 0:
                return

    async def _alist(
        self, owner: str | None, has_role: str | None, after: str | None, limit: int | None
    ) -> AsyncIterator[PatRecord]:
        ids: list[str] = await self._run(self._rules.list_ids(owner, after))
        left = limit
        for start in range(0, len(ids), PAGE_SIZE):
            page = ids[start : start + PAGE_SIZE]
            records: list[PatRecord] = await self._run(self._rules.load_many(page, owner, has_role))
            for record in records:
                if left is not None:
                    if left <= 0:
                        return
                    left -= 1
                yield record
            if left is not None and left <= 0:
                return

    def __repr__(self) -> str:
        return f"Pats(prefix={self._rules.prefix!r}, token_prefix={self._rules.token_prefix!r})"


def _list_args(
    owner: str | None, has_role: str | None, after: str | None, limit: int | None
) -> tuple[str | None, str | None, str | None, int | None]:
    if owner is not None:
        owner = check_owner(owner)
    if has_role is not None:
        has_role = check_role(has_role, "has_role")
    if after is not None and not isinstance(after, str):
        raise ValidationError("after_token_id must be a string or None")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError(f"limit must be a positive integer or None, got {limit!r}")
    return owner, has_role, after, limit


class AsyncPats(Protocol):
    """The methods of :class:`Pats` as coroutines (``tw.aio.pats``)."""

    async def generate(self, token_id: str | None = None) -> GeneratedPat:
        """See :meth:`Pats.generate`."""

    async def issue(
        self,
        owner: str,
        *,
        is_admin: bool = False,
        roles: Iterable[str] = (),
        expires_at: float | None = None,
        name: str | None = None,
    ) -> IssuedPat:
        """See :meth:`Pats.issue`."""

    async def register(
        self,
        token_id: str,
        secret_phc: str,
        owner: str,
        *,
        is_admin: bool = False,
        roles: Iterable[str] = (),
        expires_at: float | None = None,
        name: str | None = None,
    ) -> PatRecord:
        """See :meth:`Pats.register`."""

    async def verify(self, token: str) -> PatVerification:
        """See :meth:`Pats.verify`."""

    async def get(self, token_id: str) -> PatRecord:
        """See :meth:`Pats.get`."""

    async def update(
        self,
        token_id: str,
        *,
        owner: str = ...,
        is_admin: bool = ...,
        roles: Iterable[str] | Mapping[str, Iterable[str]] = ...,
        expires_at: float | None = ...,
    ) -> PatRecord:
        """See :meth:`Pats.update`."""

    async def revoke(self, token_id: str, *, expires_at: float | None = None) -> PatRecord:
        """See :meth:`Pats.revoke`."""

    async def restore(self, token_id: str) -> PatRecord:
        """See :meth:`Pats.restore`."""

    def list(
        self,
        *,
        owner: str | None = None,
        has_role: str | None = None,
        after_token_id: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[PatRecord]:
        """See :meth:`Pats.list` (an async iterator: ``async for``)."""
