"""The ``tokenware`` command (also ``python -m tokenware``).

It reads the same environment as :meth:`tokenware.Tokenware.from_env`
(``TOKENWARE_STORE_URL``, default ``sqlite:///tokenware.db``;
``TOKENWARE_SECRET_KEY``, required by every command that touches tokens) and
``--store URL`` overrides the store. Synopsis::

    tokenware [--store URL] [--json] keygen
    tokenware [--store URL] [--json] version
    tokenware [--store URL] [--json] sessions add OWNER [--attrs JSON] [--ttl SECONDS]
    tokenware [--store URL] [--json] sessions list OWNER
    tokenware [--store URL] [--json] sessions get ID
    tokenware [--store URL] [--json] sessions delete ID
    tokenware [--store URL] [--json] sessions reset --yes
    tokenware [--store URL] [--json] hash make VALUE [--ttl SECONDS] [--text]
    tokenware [--store URL] [--json] hash get HANDLE
    tokenware [--store URL] [--json] hash delete HANDLE
    tokenware [--store URL] [--json] pat issue --owner OWNER [--role ROLE]... [--admin]
                                               [--expires 90d] [--name NAME]
    tokenware [--store URL] [--json] pat list [--owner OWNER] [--role ROLE]
    tokenware [--store URL] [--json] pat show|revoke|restore ID
    tokenware [--store URL] [--json] pat update ID [--add-role ROLE]... [--remove-role ROLE]...
    tokenware [--store URL] [--json] pat verify TOKEN
    tokenware [--store URL] demo [--port 8000]

``--store`` and ``--json`` are also accepted after the subcommand.

``demo`` serves the browser demo (:mod:`tokenware.demo`) on
``http://127.0.0.1:8000`` until Ctrl-C; it needs the ``demo`` extra, and
uses ``TOKENWARE_SECRET_KEY`` when set, else a random secret for this run
(never printed).

Exit status: ``0`` success, ``1`` not found, a token that does not verify
(``pat verify``) or another refused request,
``2`` bad usage, invalid arguments or configuration, ``3`` the store is
unavailable or failed. Errors are one line on stderr, never a traceback, and
never contain the secret key, a session key or a stored verifier: the only
secret this command ever prints is the new session key from
``sessions add`` and the new token from ``pat issue`` (once each) and the new
secret from ``keygen``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import json
import math
import os
import secrets
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit

import tokenware
from tokenware.config import DEFAULT_STORE_URL, ENV_PREFIX, settings_from_env
from tokenware.errors import (
    ConfigurationError,
    NotFound,
    StoreError,
    TokenwareError,
    ValidationError,
)
from tokenware.facade import Tokenware
from tokenware.pats import PatRecord
from tokenware.sessions import SessionToken

__all__ = [
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_STORE = 3

PROG = "tokenware"
SECRET_ENV = ENV_PREFIX + "SECRET_KEY"
STORE_ENV = ENV_PREFIX + "STORE_URL"
KEYGEN_BYTES = 32

_MISSING_SECRET = (
    f"{SECRET_ENV} is not set. Generate a secret with `tokenware keygen` and export it:\n"
    f'    export {SECRET_ENV}="$(tokenware keygen)"'
)


class _Exit(Exception):
    """Leave ``main`` with ``code`` after printing ``message`` to stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- argument types ----------------------------------------------------------


def _ttl(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('must be a JSON object, such as \'{"role": "admin"}\'')
    return value


# -- parser ------------------------------------------------------------------


def _common(*, top: bool) -> argparse.ArgumentParser:
    """``--store`` and ``--json``, accepted before and after the subcommand.

    On subparsers the default is SUPPRESS so that a value given before the
    subcommand is not overwritten by the subparser's default.
    """
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--store",
        metavar="URL",
        default=None if top else argparse.SUPPRESS,
        help=f"store URL (overrides {STORE_ENV}; default {DEFAULT_STORE_URL})",
    )
    parent.add_argument(
        "--json",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="print machine-readable JSON",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tokenware`` command."""
    sub_common = _common(top=False)
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[_common(top=True)],
        description=(
            "Manage tokenware session tokens and short-lived values. Reads "
            f"{STORE_ENV} and {SECRET_ENV} like Tokenware.from_env()."
        ),
        epilog=(
            "exit status: 0 ok, 1 not found, 2 usage, invalid argument or configuration, "
            "3 store unavailable or failed"
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    keygen = commands.add_parser(
        "keygen",
        parents=[sub_common],
        help=f"print a new random secret for {SECRET_ENV}",
        description=f"Print a new random {KEYGEN_BYTES}-byte secret, in base64: form.",
    )
    keygen.set_defaults(local=_keygen)

    version = commands.add_parser("version", parents=[sub_common], help="print the version")
    version.set_defaults(local=_version)

    demo = commands.add_parser(
        "demo",
        parents=[sub_common],
        help="serve the browser demo on http://127.0.0.1:8000",
        description=(
            "Serve a page on 127.0.0.1 that logs a demo user in, runs the encrypted "
            "handshake, calls a protected API, issues and revokes a PAT and shows a 429. "
            "Needs the demo extra: pip install 'tokenware[demo]'."
        ),
    )
    demo.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    demo.set_defaults(local=_demo)

    # sessions ---------------------------------------------------------------
    sessions = commands.add_parser(
        "sessions", parents=[sub_common], help="add, list, get and delete session tokens"
    )
    session_commands = sessions.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = session_commands.add_parser(
        "add",
        parents=[sub_common],
        help="create a session and print its key (shown once)",
        description="Create a session for OWNER and print its key. The key is shown only now.",
    )
    add.add_argument("owner", metavar="OWNER", help="who the session belongs to (a user id)")
    add.add_argument(
        "--attrs",
        metavar="JSON",
        type=_json_object,
        default=None,
        help="a JSON object stored with the session",
    )
    add.add_argument(
        "--ttl",
        metavar="SECONDS",
        type=_ttl,
        default=None,
        help=f"lifetime in seconds (default {ENV_PREFIX}SESSION_TTL or 30 days)",
    )
    add.set_defaults(run=_sessions_add)

    list_ = session_commands.add_parser(
        "list", parents=[sub_common], help="list the live sessions of OWNER"
    )
    list_.add_argument("owner", metavar="OWNER")
    list_.set_defaults(run=_sessions_list)

    get = session_commands.add_parser("get", parents=[sub_common], help="show one session")
    get.add_argument("id", metavar="ID", help="the session's public id")
    get.set_defaults(run=_sessions_get)

    delete = session_commands.add_parser("delete", parents=[sub_common], help="delete one session")
    delete.add_argument("id", metavar="ID", help="the session's public id")
    delete.set_defaults(run=_sessions_delete)

    reset = session_commands.add_parser(
        "reset",
        parents=[sub_common],
        help="delete every session and value under the key prefix",
        description=(
            "Delete every session and short-lived value under the configured key prefix "
            f"({ENV_PREFIX}KEY_PREFIX, default tw). Other keys in the store are not touched."
        ),
    )
    reset.add_argument("--yes", action="store_true", help="really delete (required)")
    reset.set_defaults(run=_sessions_reset)

    # hash -------------------------------------------------------------------
    hashes = commands.add_parser(
        "hash", parents=[sub_common], help="store, read and delete short-lived values"
    )
    hash_commands = hashes.add_subparsers(dest="action", metavar="ACTION", required=True)

    make = hash_commands.add_parser(
        "make",
        parents=[sub_common],
        help="store a JSON value and print its handle",
        description="Store VALUE (JSON, or text with --text) and print its handle.",
    )
    make.add_argument("value", metavar="VALUE", help='a JSON value, such as \'{"next": "/"}\'')
    make.add_argument(
        "--ttl",
        metavar="SECONDS",
        type=_ttl,
        default=3600.0,
        help="lifetime in seconds (default 3600)",
    )
    make.add_argument(
        "--text", action="store_true", help="store VALUE as a string instead of parsing JSON"
    )
    make.set_defaults(run=_hash_make)

    hget = hash_commands.add_parser("get", parents=[sub_common], help="print a stored value")
    hget.add_argument("handle", metavar="HANDLE")
    hget.set_defaults(run=_hash_get)

    hdelete = hash_commands.add_parser("delete", parents=[sub_common], help="delete a stored value")
    hdelete.add_argument("handle", metavar="HANDLE")
    hdelete.set_defaults(run=_hash_delete)

    # pat --------------------------------------------------------------------
    pat = commands.add_parser(
        "pat", parents=[sub_common], help="issue, list, show, update, revoke and verify PATs"
    )
    pat_commands = pat.add_subparsers(dest="action", metavar="ACTION", required=True)

    pissue = pat_commands.add_parser(
        "issue",
        parents=[sub_common],
        help="issue a personal access token and print it (shown once)",
        description="Issue a token for --owner and print it. The token is shown only now.",
    )
    pissue.add_argument("--owner", required=True, help="who the token acts for")
    pissue.add_argument(
        "--role", action="append", default=[], metavar="ROLE", help="a role (repeatable)"
    )
    pissue.add_argument("--admin", action="store_true", help="set the admin flag")
    pissue.add_argument(
        "--expires", metavar="DURATION", type=_duration, default=None, help="such as 90d, 12h"
    )
    pissue.add_argument("--name", default=None, help="a label for the token")
    pissue.set_defaults(run=_pat_issue)

    plist = pat_commands.add_parser("list", parents=[sub_common], help="list tokens by id")
    plist.add_argument("--owner", default=None, help="only this owner's tokens")
    plist.add_argument("--role", default=None, help="only tokens with this role")
    plist.set_defaults(run=_pat_list)

    for action, handler, text in (
        ("show", _pat_show, "show one token's record"),
        ("revoke", _pat_revoke, "revoke a token (idempotent)"),
        ("restore", _pat_restore, "restore a revoked token that has not expired"),
    ):
        sub = pat_commands.add_parser(action, parents=[sub_common], help=text)
        sub.add_argument("id", metavar="ID", help="the token id")
        sub.set_defaults(run=handler)

    pupdate = pat_commands.add_parser(
        "update", parents=[sub_common], help="add or remove roles of a token"
    )
    pupdate.add_argument("id", metavar="ID", help="the token id")
    pupdate.add_argument("--add-role", action="append", default=[], metavar="ROLE")
    pupdate.add_argument("--remove-role", action="append", default=[], metavar="ROLE")
    pupdate.set_defaults(run=_pat_update)

    pverify = pat_commands.add_parser(
        "verify", parents=[sub_common], help="verify a token; exit 1 if it does not verify"
    )
    pverify.add_argument("token", metavar="TOKEN")
    pverify.set_defaults(run=_pat_verify)
    return parser


# -- output ------------------------------------------------------------------


def _clean(text: str) -> str:
    """``text`` with control characters escaped, so stored data cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    moment = _dt.datetime.fromtimestamp(epoch, tz=_dt.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _session_dict(token: SessionToken, *, with_key: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if with_key:
        data["key"] = token.key
    data.update(
        id=token.id,
        owner_id=token.owner_id,
        attrs=dict(token.attrs),
        created_at=token.created_at,
        expires_at=token.expires_at,
    )
    return data


def _print_json(value: Any, out: TextIO) -> None:
    print(json.dumps(value, ensure_ascii=False, sort_keys=False), file=out)


def _print_session(token: SessionToken, out: TextIO) -> None:
    attrs = json.dumps(dict(token.attrs), ensure_ascii=True, sort_keys=True)
    print(f"id:       {token.id}", file=out)
    print(f"owner:    {_clean(token.owner_id)}", file=out)
    print(f"attrs:    {attrs}", file=out)
    print(f"created:  {_when(token.created_at)}", file=out)
    print(f"expires:  {_when(token.expires_at)}", file=out)


# -- commands ----------------------------------------------------------------

#: A command that needs no store or secret (``keygen``, ``version``).
LocalHandler = Callable[[argparse.Namespace, TextIO], int]
#: A command run against the configured store.
StoreHandler = Callable[[argparse.Namespace, Tokenware, TextIO], int]


def _keygen(args: argparse.Namespace, out: TextIO) -> int:
    secret = "base64:" + base64.b64encode(secrets.token_bytes(KEYGEN_BYTES)).decode("ascii")
    if args.json:
        _print_json({"secret_key": secret}, out)
    else:
        print(secret, file=out)
    return EXIT_OK


def _version(args: argparse.Namespace, out: TextIO) -> int:
    if args.json:
        _print_json({"version": tokenware.__version__}, out)
    else:
        print(f"tokenware {tokenware.__version__}", file=out)
    return EXIT_OK


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise _Exit(
            EXIT_USAGE, "the demo needs Starlette and uvicorn: pip install 'tokenware[demo]'"
        ) from None
    if not 0 < args.port < 65536:
        raise _Exit(EXIT_USAGE, "--port must be between 1 and 65535")
    environ = dict(os.environ)
    generated = not environ.get(SECRET_ENV)
    if generated:
        # A secret for this run only: tokens die with the process. Never printed.
        environ[SECRET_ENV] = "base64:" + base64.b64encode(secrets.token_bytes(32)).decode()
    from tokenware.demo import serve

    with _open(args, environ) as tw:
        url = f"http://127.0.0.1:{args.port}/"
        store = args.store or environ.get(STORE_ENV) or DEFAULT_STORE_URL
        print(f"tokenware demo on {url} (store {_store_label(store)}); Ctrl-C stops it", file=out)
        if generated:
            print(f"  a random secret for this run ({SECRET_ENV} is not set)", file=out)
        out.flush()
        serve(tw, port=args.port)
    return EXIT_OK


def _store_label(url: str) -> str:
    """The store URL without a password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "?"
    if parts.password:
        return url.replace(parts.password, "***")
    return url


def _sessions_add(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    token = tw.sessions.add(args.owner, args.attrs, ttl=args.ttl)
    if args.json:
        _print_json(_session_dict(token, with_key=True), out)
        return EXIT_OK
    print(f"key:      {token.key}", file=out)
    _print_session(token, out)
    print(
        "The key is shown only this once: tokenware stores a keyed hash of it, never the key.",
        file=sys.stderr,
    )
    return EXIT_OK


def _sessions_list(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    found = tw.sessions.list(args.owner)
    if args.json:
        _print_json([_session_dict(t) for t in found], out)
        return EXIT_OK
    if not found:
        print(f"no live sessions for {_clean(args.owner)!r}", file=sys.stderr)
        return EXIT_OK
    print(f"{'ID':<22}  {'CREATED':<20}  {'EXPIRES':<20}  ATTRS", file=out)
    for token in found:
        attrs = json.dumps(dict(token.attrs), ensure_ascii=True, sort_keys=True)
        print(
            f"{token.id:<22}  {_when(token.created_at):<20}  {_when(token.expires_at):<20}  "
            f"{attrs}",
            file=out,
        )
    return EXIT_OK


def _sessions_get(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    token = tw.sessions.get(args.id)
    if args.json:
        _print_json(_session_dict(token), out)
    else:
        _print_session(token, out)
    return EXIT_OK


def _sessions_delete(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    tw.sessions.delete(args.id)
    if args.json:
        _print_json({"deleted": args.id}, out)
    else:
        print(f"deleted session {_clean(args.id)}", file=out)
    return EXIT_OK


def _sessions_reset(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    count = tw.sessions.reset()
    if args.json:
        _print_json({"deleted": count}, out)
    else:
        print(f"deleted {count} keys under prefix {tw.settings.key_prefix!r}", file=out)
    return EXIT_OK


def _hash_make(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    if args.text:
        value: Any = args.value
    else:
        try:
            value = json.loads(args.value)
        except ValueError:
            raise _Exit(
                EXIT_USAGE,
                "VALUE is not valid JSON; quote a string as '\"text\"' or pass --text",
            ) from None
    handle = tw.sessions.make_hash(value, args.ttl)
    if args.json:
        _print_json({"handle": handle, "ttl": args.ttl}, out)
    else:
        print(handle, file=out)
    return EXIT_OK


def _hash_get(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    value = tw.sessions.get_hash(args.handle)
    if args.json:
        _print_json({"handle": args.handle, "value": value}, out)
    else:
        print(json.dumps(value, ensure_ascii=True), file=out)
    return EXIT_OK


def _hash_delete(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    tw.sessions.delete_hash(args.handle)
    if args.json:
        _print_json({"deleted": args.handle}, out)
    else:
        print("deleted", file=out)
    return EXIT_OK


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration(text: str) -> float:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w`` (or bare seconds) as seconds."""
    unit = text[-1:].lower()
    number = text[:-1] if unit in _UNITS else text
    try:
        value = float(number) * _UNITS.get(unit, 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration such as 90d: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive duration, got {text!r}")
    return value


def _pat_dict(record: PatRecord) -> dict[str, Any]:
    return {
        "token_id": record.token_id,
        "owner": record.owner,
        "is_admin": record.is_admin,
        "roles": list(record.roles),
        "name": record.name,
        "created_at": record.created_at,
        "last_used_at": record.last_used_at,
        "revoked_at": record.revoked_at,
        "expires_at": record.expires_at,
    }


def _print_pat(record: PatRecord, out: TextIO) -> None:
    print(f"id:         {record.token_id}", file=out)
    print(f"owner:      {_clean(record.owner)}", file=out)
    print(f"admin:      {'yes' if record.is_admin else 'no'}", file=out)
    print(f"roles:      {' '.join(record.roles) or '-'}", file=out)
    print(f"name:       {_clean(record.name) if record.name else '-'}", file=out)
    print(f"created:    {_when(record.created_at)}", file=out)
    print(f"last used:  {_when(record.last_used_at)}", file=out)
    print(f"revoked:    {_when(record.revoked_at)}", file=out)
    print(f"expires:    {_when(record.expires_at)}", file=out)


def _pat_out(args: argparse.Namespace, record: PatRecord, out: TextIO) -> int:
    if args.json:
        _print_json(_pat_dict(record), out)
    else:
        _print_pat(record, out)
    return EXIT_OK


def _pat_issue(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    expires_at = None if args.expires is None else tw.settings.clock() + args.expires
    issued = tw.pats.issue(
        args.owner, is_admin=args.admin, roles=args.role, expires_at=expires_at, name=args.name
    )
    if args.json:
        _print_json({"token": issued.token, **_pat_dict(issued.record)}, out)
        return EXIT_OK
    print(f"token:      {issued.token}", file=out)
    _print_pat(issued.record, out)
    print(
        "The token is shown only this once: tokenware stores a keyed hash of it, never the token.",
        file=sys.stderr,
    )
    return EXIT_OK


def _pat_list(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    records = list(tw.pats.list(owner=args.owner, has_role=args.role))
    if args.json:
        _print_json([_pat_dict(r) for r in records], out)
        return EXIT_OK
    if not records:
        print("no personal access tokens", file=sys.stderr)
        return EXIT_OK
    print(f"{'ID':<22}  {'OWNER':<20}  {'STATE':<8}  {'EXPIRES':<20}  ROLES", file=out)
    now = tw.settings.clock()
    for r in records:
        if r.revoked_at is not None:
            state = "revoked"
        elif r.expires_at is not None and r.expires_at <= now:
            state = "expired"
        else:
            state = "active"
        print(
            f"{r.token_id:<22}  {_clean(r.owner)[:20]:<20}  {state:<8}  "
            f"{_when(r.expires_at):<20}  {' '.join(r.roles)}",
            file=out,
        )
    return EXIT_OK


def _pat_show(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    return _pat_out(args, tw.pats.get(args.id), out)


def _pat_revoke(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    return _pat_out(args, tw.pats.revoke(args.id), out)


def _pat_restore(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    return _pat_out(args, tw.pats.restore(args.id), out)


def _pat_update(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    if not args.add_role and not args.remove_role:
        raise _Exit(EXIT_USAGE, "pat update needs --add-role or --remove-role")
    record = tw.pats.get(args.id)
    if args.add_role:
        record = tw.pats.update(args.id, roles={"add": args.add_role})
    if args.remove_role:
        record = tw.pats.update(args.id, roles={"remove": args.remove_role})
    return _pat_out(args, record, out)


def _pat_verify(args: argparse.Namespace, tw: Tokenware, out: TextIO) -> int:
    result = tw.pats.verify(args.token)
    if args.json:
        data: dict[str, Any] = {"valid": result.valid, "reason": result.reason}
        data["record"] = None if result.record is None else _pat_dict(result.record)
        _print_json(data, out)
    elif result.valid and result.record is not None:
        print("valid", file=out)
        _print_pat(result.record, out)
    else:
        print(f"invalid: {result.reason}", file=out)
    return EXIT_OK if result.valid else EXIT_NOT_FOUND


# -- running -----------------------------------------------------------------


def _secrets_in(environ: Mapping[str, str], store: str | None) -> list[str]:
    """Strings that must never appear in an error message."""
    found = []
    raw = environ.get(SECRET_ENV)
    if raw:
        found.append(raw)
        _, _, body = raw.partition(":")
        if body and len(body) >= 8:
            found.append(body)
    for url in (store, environ.get(STORE_ENV)):
        if url:
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                found.append(password)
    return found


def _redact(message: str, hidden: Sequence[str]) -> str:
    for secret in sorted(hidden, key=len, reverse=True):
        message = message.replace(secret, "***")
    return message


def _open(args: argparse.Namespace, environ: Mapping[str, str]) -> Tokenware:
    if not environ.get(SECRET_ENV):
        raise _Exit(EXIT_USAGE, _MISSING_SECRET)
    overrides: dict[str, Any] = {}
    if args.store:
        overrides["store"] = args.store
    try:
        return Tokenware(**settings_from_env(environ, **overrides))
    except ConfigurationError as exc:
        if "secret" in exc.detail.lower():
            raise _Exit(
                EXIT_USAGE, f"{exc.detail}\nRun `tokenware keygen` for a suitable {SECRET_ENV}."
            ) from None
        raise


def _exit_code(exc: TokenwareError) -> int:
    if isinstance(exc, (ValidationError, ConfigurationError)):
        return EXIT_USAGE
    if isinstance(exc, StoreError):
        return EXIT_STORE
    # NotFound and any other refused request.
    return EXIT_NOT_FOUND


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tokenware`` command and return its exit status.

    Args:
        argv: the arguments after the program name (default ``sys.argv[1:]``).

    Returns:
        ``0`` success, ``1`` not found, ``2`` usage, invalid argument or
        configuration, ``3`` the store is unavailable or failed.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    args.json = bool(getattr(args, "json", False))
    args.store = getattr(args, "store", None)
    if args.command == "sessions" and args.action == "reset" and not args.yes:
        print(
            f"{PROG}: error: sessions reset deletes every session and value under the key "
            "prefix; pass --yes to confirm",
            file=sys.stderr,
        )
        return EXIT_USAGE
    environ = os.environ
    hidden = _secrets_in(environ, args.store)
    try:
        local: LocalHandler | None = getattr(args, "local", None)
        if local is not None:
            return local(args, sys.stdout)
        run: StoreHandler = args.run
        with _open(args, environ) as tw:
            return run(args, tw, sys.stdout)
    except _Exit as exc:
        print(f"{PROG}: error: {_redact(exc.message, hidden)}", file=sys.stderr)
        return exc.code
    except NotFound as exc:
        print(f"{PROG}: not found: {_redact(exc.detail, hidden)}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except TokenwareError as exc:
        code = _exit_code(exc)
        label = "store error" if code == EXIT_STORE else "error"
        print(f"{PROG}: {label}: {_redact(exc.detail, hidden)}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130
