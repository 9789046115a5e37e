"""Session tokens in a few lines: add, authenticate, list, delete.

Run it with the same environment as the ``tokenware`` command::

    export TOKENWARE_SECRET_KEY="$(tokenware keygen)"
    python examples/sessions_quickstart.py

The store is ``TOKENWARE_STORE_URL`` (default ``sqlite:///tokenware.db`` in the
current directory). Without ``TOKENWARE_SECRET_KEY`` the script passes an
explicit SQLite store in a temporary directory and a throwaway secret instead.
"""

from __future__ import annotations

import os
import secrets
import tempfile

from tokenware import Tokenware, errors


def demo(tw: Tokenware) -> None:
    """Add a session, authenticate its key, list, delete."""
    print(f"store: {tw.stores.url}")

    # The key is known only now: tokenware stores a keyed hash of it, never the key.
    token = tw.sessions.add("alice", {"role": "admin"}, ttl=3600)
    print(f"added session {token.id} for {token.owner_id}")

    # What a web app does with the client's "Authorization: Bearer tws_..." header.
    identity = tw.authenticate(f"Bearer {token.key}")
    print(f"authenticated {identity.subject} (kind={identity.kind}, attrs={dict(identity.claims)})")

    sessions = tw.sessions.list("alice")
    print(f"alice has {len(sessions)} session(s): {', '.join(s.id for s in sessions)}")

    tw.sessions.delete(token.id)
    try:
        tw.authenticate(f"Bearer {token.key}")
    except errors.InvalidToken as exc:
        print(f"after delete: rejected ({exc.code})")
    print(f"alice has {len(tw.sessions.list('alice'))} session(s) left")


def main() -> None:
    """Run the demo on the configured store, or on a temporary one."""
    if os.environ.get("TOKENWARE_SECRET_KEY"):
        with Tokenware.from_env() as tw:
            demo(tw)
        return
    print("TOKENWARE_SECRET_KEY is not set: using a temporary SQLite file and secret")
    with tempfile.TemporaryDirectory() as tmp:
        with Tokenware(
            store=f"sqlite:///{tmp}/tokenware.db", secret_key=secrets.token_bytes(32)
        ) as tw:
            demo(tw)


if __name__ == "__main__":
    main()
