"""The session quick start on ``tw.aio``: the same names, as coroutines.

Run it with the same environment as the ``tokenware`` command::

    export TOKENWARE_SECRET_KEY="$(tokenware keygen)"
    python examples/async_sessions.py

``tw.aio`` is an ``AsyncTokenware`` over the *same* store as ``tw``: a session
added here is visible to ``tw.sessions`` and to ``tokenware sessions list``.
Without ``TOKENWARE_SECRET_KEY`` the script passes an explicit SQLite store in
a temporary directory and a throwaway secret instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile

from tokenware import AsyncTokenware, Tokenware, errors


async def demo(atw: AsyncTokenware) -> None:
    """Add a session, authenticate its key, list, delete: all awaited."""
    token = await atw.sessions.add("alice", {"role": "admin"}, ttl=3600)
    print(f"added session {token.id} for {token.owner_id}")

    identity = await atw.authenticate(f"Bearer {token.key}")
    print(f"authenticated {identity.subject} (kind={identity.kind}, attrs={dict(identity.claims)})")

    sessions = await atw.sessions.list("alice")
    print(f"alice has {len(sessions)} session(s): {', '.join(s.id for s in sessions)}")

    await atw.sessions.delete(token.id)
    try:
        await atw.authenticate(f"Bearer {token.key}")
    except errors.InvalidToken as exc:
        print(f"after delete: rejected ({exc.code})")
    print(f"alice has {len(await atw.sessions.list('alice'))} session(s) left")


async def run(tw: Tokenware) -> None:
    """Run the demo on ``tw.aio``, then close both faces of the store."""
    print(f"store: {tw.stores.url}")
    try:
        await demo(tw.aio)
    finally:
        await tw.aio.aclose()
        tw.close()


def main() -> None:
    """Run the demo on the configured store, or on a temporary one."""
    if os.environ.get("TOKENWARE_SECRET_KEY"):
        asyncio.run(run(Tokenware.from_env()))
        return
    print("TOKENWARE_SECRET_KEY is not set: using a temporary SQLite file and secret")
    with tempfile.TemporaryDirectory() as tmp:
        tw = Tokenware(store=f"sqlite:///{tmp}/tokenware.db", secret_key=secrets.token_bytes(32))
        asyncio.run(run(tw))


if __name__ == "__main__":
    main()
