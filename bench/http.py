# ruff: noqa: E402 - imports follow the sys.path fix below
"""HTTP throughput of tokenware's middleware next to bare apps and peers, with wrk.

One run of several rounds. Each round starts a fresh server of every row
(a subprocess on a free loopback port, stopped by pid; idle ones cost
nothing), then cycles through all rows and modes in short wrk slices, the
order reversed on every other slice, so the machine's drift (this is a shared
VM whose speed wanders by tens of percent within minutes) lands on every row
alike:

    starlette bare                      uvicorn, 1 worker, asyncio loop, httptools if present
    starlette + tokenware JWT (HS256)   tokenware.asgi.TokenwareMiddleware
    starlette + tokenware PAT (memory)  same middleware, PATs issued in the server
    starlette + AuthenticationMiddleware with a PyJWT backend (+ @requires)
    flask bare                          gunicorn sync, 1 worker
    flask + tokenware JWT               tokenware.wsgi.TokenwareMiddleware
    ... + @requires                     the same with tokenware.requires("read") on the view
    flask + flask-jwt-extended          @jwt_required()

Each authenticated row is measured *warm* (every request carries the same
token, so a verification cache may help) and *cold* (a wrk Lua script cycles
through a file of distinct tokens, more than any cache holds). Bare rows send
the warm token too. Prints median req/s (min-max over rounds) and the ratio
to the bare app of the same framework, measured in the same run, and the
server's CPU time per request (from /proc, user + system of its processes),
whose ratio to bare is what throughput becomes on a quiet machine where the
server is CPU-bound; it is far less disturbed than req/s by other load.

Usage: python bench/http.py [--rounds 3] [--slices 5] [--duration 1] [--tokens 5000]

Only loopback traffic; every wrk call is bounded by ``-d``; the server is
pinned to CPU 0 and wrk to CPU 1 when ``taskset`` exists. A row whose peer
package is missing is skipped with a message.
"""

from __future__ import annotations

import sys

# This file is named http.py: drop its directory from sys.path, or it would
# shadow the standard library's http package (httpx imports http.client).
_HERE = __import__("os").path.dirname(__import__("os").path.abspath(__file__))
sys.path[:] = [p for p in sys.path if __import__("os").path.abspath(p or ".") != _HERE]

import argparse
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-only HS256 key, 32 bytes long!!"
SECRET = "hex:" + "42" * 32
ISSUER = "https://bench.local"
AUDIENCE = "bench"


STARLETTE_APPS = r"""
import os
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

KEY = os.environ["BENCH_KEY"].encode()
ISSUER = os.environ["BENCH_ISSUER"]
AUDIENCE = os.environ["BENCH_AUDIENCE"]
KIND = os.environ["BENCH_APP"]


async def hello(request):
    return PlainTextResponse("hello")


routes = [Route("/", hello)]

if KIND == "bare":
    app = Starlette(routes=routes)
elif KIND.startswith("tokenware"):
    from tokenware import Tokenware, requires
    from tokenware.asgi import TokenwareMiddleware

    tw = Tokenware(store="memory://", secret_key=os.environ["BENCH_SECRET"],
                   issuer=ISSUER, audience=AUDIENCE, jwt_key=KEY)
    pat_file = os.environ.get("BENCH_PAT_FILE")
    if pat_file:
        count = int(os.environ["BENCH_PAT_COUNT"])
        tokens = [tw.pats.issue(f"user{i}", roles=["read"]).token for i in range(count)]
        with open(pat_file + ".tmp", "w") as f:
            f.write("\n".join(tokens) + "\n")
        os.replace(pat_file + ".tmp", pat_file)
    if KIND == "tokenware+requires":
        routes = [Route("/", requires("read")(hello))]
    app = TokenwareMiddleware(Starlette(routes=routes), tokenware=tw, protect=["/"],
                              script_path=None, handshake_path=None, jwks_path=None)
elif KIND == "authmw":
    import jwt
    from starlette.authentication import (AuthCredentials, AuthenticationBackend,
                                          AuthenticationError, SimpleUser, requires)
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware

    class PyJWTBackend(AuthenticationBackend):
        async def authenticate(self, conn):
            header = conn.headers.get("authorization")
            if not header:
                return None
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer":
                return None
            try:
                claims = jwt.decode(token, KEY, algorithms=["HS256"], issuer=ISSUER,
                                    audience=AUDIENCE)
            except jwt.PyJWTError as exc:
                raise AuthenticationError("invalid token") from exc
            return AuthCredentials(["authenticated"]), SimpleUser(claims["sub"])

    @requires("authenticated")
    async def protected(request):
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/", protected)],
                    middleware=[Middleware(AuthenticationMiddleware, backend=PyJWTBackend())])
"""

FLASK_APPS = r"""
import os
from flask import Flask

KEY = os.environ["BENCH_KEY"]
ISSUER = os.environ["BENCH_ISSUER"]
AUDIENCE = os.environ["BENCH_AUDIENCE"]
KIND = os.environ["BENCH_APP"]
app = Flask(__name__)

if KIND == "fjwt":
    from flask_jwt_extended import JWTManager, jwt_required

    app.config.update(JWT_SECRET_KEY=KEY, JWT_ALGORITHM="HS256", JWT_DECODE_ISSUER=ISSUER,
                      JWT_DECODE_AUDIENCE=AUDIENCE, JWT_TOKEN_LOCATION=["headers"])
    JWTManager(app)

    @app.get("/")
    @jwt_required()
    def hello():
        return "hello"
elif KIND == "tokenware+requires":
    from tokenware import requires

    @app.get("/")
    @requires("read")
    def hello():
        return "hello"
else:
    @app.get("/")
    def hello():
        return "hello"

if KIND.startswith("tokenware"):
    from tokenware import Tokenware
    from tokenware.wsgi import TokenwareMiddleware

    tw = Tokenware(store="memory://", secret_key=os.environ["BENCH_SECRET"],
                   issuer=ISSUER, audience=AUDIENCE, jwt_key=KEY.encode())
    app.wsgi_app = TokenwareMiddleware(app.wsgi_app, tokenware=tw, protect=["/"],
                                       script_path=None, handshake_path=None, jwks_path=None)
"""

#: uvicorn's HTTP parser: httptools (as in reference/baselines.md) when installed.
HTTP_PARSER = "httptools" if importlib.util.find_spec("httptools") else "h11"

CYCLE_LUA = r"""
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
end
local i = math.random(#tokens)
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/", {["Authorization"] = tokens[i]})
end
"""


@dataclass(frozen=True)
class Config:
    """One server configuration."""

    name: str
    framework: str  # "starlette" or "flask"
    app: str  # BENCH_APP value
    needs: tuple[str, ...] = ()
    pat: bool = False
    auth: bool = True


CONFIGS = [
    Config("starlette bare", "starlette", "bare", auth=False),
    Config("starlette + tokenware JWT", "starlette", "tokenware"),
    Config("starlette + tokenware JWT + @requires", "starlette", "tokenware+requires"),
    Config("starlette + tokenware PAT (memory)", "starlette", "tokenware", pat=True),
    Config("starlette + AuthenticationMiddleware PyJWT", "starlette", "authmw", ("jwt",)),
    Config("flask bare", "flask", "bare", ("gunicorn",), auth=False),
    Config("flask + tokenware JWT", "flask", "tokenware", ("gunicorn",)),
    Config("flask + tokenware JWT + @requires", "flask", "tokenware+requires", ("gunicorn",)),
    Config("flask + flask-jwt-extended", "flask", "fjwt", ("gunicorn", "flask_jwt_extended")),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() else []


@contextlib.contextmanager
def server(
    config: Config, workdir: Path, pat_file: Path | None, pats: int
) -> Iterator[tuple[int, int]]:
    """Start ``config`` on a free loopback port; stop it by pid on exit.

    Yields ``(port, pid)``; the pid leads the server's process group.
    """
    port = free_port()
    env = {
        **os.environ,
        "BENCH_APP": config.app,
        "BENCH_KEY": KEY,
        "BENCH_SECRET": SECRET,
        "BENCH_ISSUER": ISSUER,
        "BENCH_AUDIENCE": AUDIENCE,
        "PYTHONPATH": f"{workdir}{os.pathsep}{ROOT}",
    }
    if pat_file is not None:
        env["BENCH_PAT_FILE"] = str(pat_file)
        env["BENCH_PAT_COUNT"] = str(pats)
    if config.framework == "starlette":
        cmd = [sys.executable, "-m", "uvicorn", "bench_starlette:app", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--loop", "asyncio", "--http", HTTP_PARSER,
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
    else:
        cmd = [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "sync", "-b",
               f"127.0.0.1:{port}", "--log-level", "warning", "bench_flask:app"]  # fmt: skip
    proc = subprocess.Popen([*pin(0), *cmd], env=env, cwd=workdir, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{config.name}: server exited with {proc.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{config.name}: server did not start")
            time.sleep(0.1)
        if pat_file is not None:
            while not pat_file.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("PAT file never written")
                time.sleep(0.1)
        yield port, proc.pid
    finally:
        # Our own child and its session only (gunicorn forks a worker).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        if pat_file is not None:
            pat_file.unlink(missing_ok=True)


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the processes of group ``pgid``
    (uvicorn; gunicorn's master and worker), from /proc; 0.0 where /proc is absent."""
    total = 0
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # After the command: state ppid pgrp session ... utime (11) stime (12).
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def check(port: int, token: str, auth: bool) -> None:
    """200 with the token; for protected rows 401 without it."""
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
        ok = c.get("/", headers={"Authorization": f"Bearer {token}"})
        if ok.status_code != 200:
            raise RuntimeError(f"expected 200 with a token, got {ok.status_code}: {ok.text[:200]}")
        if auth and c.get("/").status_code not in (401, 403):
            raise RuntimeError("a protected route answered without a token")


def wrk(port: int, duration: float, *, token: str | None = None, tokens: Path | None = None,
        lua: Path | None = None) -> tuple[float, int]:  # fmt: skip
    cmd = [*pin(1), "wrk", "-t2", "-c32", f"-d{max(1, round(duration))}s", "--timeout", "5s"]
    env = dict(os.environ)
    if tokens is not None and lua is not None:
        cmd += ["-s", str(lua)]
        env["BENCH_TOKENS"] = str(tokens)
    elif token is not None:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    cmd.append(f"http://127.0.0.1:{port}/")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 30)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stdout}{out.stderr}")
    if "Non-2xx" in out.stdout:
        raise RuntimeError(f"non-2xx responses:\n{out.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    count = re.search(r"(\d+) requests in", out.stdout)
    if match is None or count is None:
        raise RuntimeError(out.stdout)
    return float(match.group(1)), int(count.group(1))


def make_jwts(count: int) -> list[str]:
    from tokenware import Tokenware

    with Tokenware(store="memory://", secret_key=SECRET, issuer=ISSUER, audience=AUDIENCE,
                   jwt_key=KEY.encode()) as tw:  # fmt: skip
        return [tw.jwt.issue(f"user{i}", scopes=["read"]).access_token for i in range(count)]


@dataclass
class Live:
    """A running server of one round and what its wrk runs send."""

    config: Config
    port: int
    pgid: int
    tokens: list[str]
    token_file: Path


def start_round(
    stack: contextlib.ExitStack,
    configs: list[Config],
    args: argparse.Namespace,
    workdir: Path,
    jwts: list[str],
    jwt_file: Path,
) -> list[Live]:
    """Start a fresh server of every configuration (idle ones cost nothing), check
    each answers 200 with a token (401/403 without, when protected), warm it up."""
    live = []
    for config in configs:
        pat_file = workdir / "pats.txt" if config.pat else None
        try:
            port, pgid = stack.enter_context(
                server(config, workdir, pat_file, min(args.tokens, 2000))
            )
            if pat_file is not None:
                tokens = pat_file.read_text().split()
                token_file = workdir / "pats-copy.txt"
                token_file.write_text("\n".join(tokens) + "\n")
            else:
                tokens, token_file = jwts, jwt_file
            check(port, tokens[0], config.auth)
            wrk(port, args.warmup, token=tokens[0])
        except Exception as exc:  # one broken server must not lose the run
            print(f"  {config.name} FAILED to start: {exc}", flush=True)
            continue
        live.append(Live(config, port, pgid, tokens, token_file))
    return live


def measure_slice(
    server_: Live,
    mode: str,
    args: argparse.Namespace,
    lua: Path,
    totals: dict[tuple[str, str], list[float]],
) -> None:
    """One wrk slice of ``mode`` against a running server; adds requests,
    seconds and server CPU seconds to ``totals``."""
    before = group_cpu(server_.pgid)
    started = time.monotonic()
    if mode == "warm":
        _, count = wrk(server_.port, args.duration, token=server_.tokens[0])
    else:
        _, count = wrk(server_.port, args.duration, tokens=server_.token_file, lua=lua)
    elapsed = time.monotonic() - started
    used = group_cpu(server_.pgid) - before
    acc = totals.setdefault((server_.config.name, mode), [0.0, 0.0, 0.0])
    acc[0] += count
    acc[1] += min(elapsed, max(1, round(args.duration)))  # wrk's own -d, not its exit
    acc[2] += used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per wrk slice")
    parser.add_argument("--slices", type=int, default=5, help="slices per mode per round")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--tokens", type=int, default=5000, help="distinct tokens for cold runs")
    parser.add_argument("--only", default="", help="substring filter on configuration names")
    args = parser.parse_args()
    if not (
        0 < args.rounds <= 10
        and 0 < args.duration <= 30
        and 0 < args.slices <= 20
        and 0 < args.tokens <= 50000
    ):
        parser.error("bounded: rounds <= 10, duration <= 30 s, slices <= 20, tokens <= 50000")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")

    configs = []
    for config in CONFIGS:
        if args.only and args.only not in config.name:
            continue
        missing = [m for m in (*config.needs, config.framework) if not importlib.util.find_spec(m)]
        if missing:
            print(f"skipping {config.name!r}: missing {', '.join(missing)}")
            continue
        configs.append(config)

    workdir = Path(tempfile.mkdtemp(prefix="tw-bench-http-"))
    (workdir / "bench_starlette.py").write_text(STARLETTE_APPS)
    (workdir / "bench_flask.py").write_text(FLASK_APPS)
    lua = workdir / "cycle.lua"
    lua.write_text(CYCLE_LUA)
    jwts = make_jwts(args.tokens)
    jwt_file = workdir / "jwts.txt"
    jwt_file.write_text("\n".join(jwts) + "\n")
    print(f"uvicorn --http {HTTP_PARSER} --loop asyncio; gunicorn sync x1")
    print(f"{len(jwts)} distinct JWTs; wrk -t2 -c32, {args.slices} slices of"
          f" {args.duration:g} s per row and mode in each of {args.rounds} rounds,"
          f" {os.cpu_count()} CPUs (server on CPU 0, wrk on CPU 1)")  # fmt: skip

    results: dict[tuple[str, str], dict[int, float]] = {}
    cpu: dict[tuple[str, str], dict[int, float]] = {}
    for round_no in range(args.rounds):
        with contextlib.ExitStack() as stack:
            live = start_round(stack, configs, args, workdir, jwts, jwt_file)
            totals: dict[tuple[str, str], list[float]] = {}
            for slice_no in range(args.slices):
                flip = (round_no + slice_no) % 2 == 1
                for server_ in reversed(live) if flip else live:
                    modes = ["warm", "cold"] if server_.config.auth else ["warm"]
                    for mode in reversed(modes) if flip else modes:
                        try:
                            measure_slice(server_, mode, args, lua, totals)
                        except Exception as exc:
                            print(f"  {server_.config.name} [{mode}] FAILED: {exc}", flush=True)
        for (name, mode), (count, seconds, used) in totals.items():
            rps = count / seconds if seconds else 0.0
            cpu_us = used / max(count, 1) * 1e6
            results.setdefault((name, mode), {})[round_no] = rps
            cpu.setdefault((name, mode), {})[round_no] = cpu_us
            print(f"  round {round_no + 1}: {name} [{mode}] {rps:,.0f} req/s, "
                  f"server CPU {cpu_us:.1f} us/request", flush=True)  # fmt: skip

    print()
    print("Ratios: of medians, and the median of per-round ratios (each round's bare run")
    print("is the reference; this absorbs the machine's drift between rounds).")
    print("| configuration | mode | median req/s | min-max | ratio of medians | per-round ratio |")
    print("|---|---|---:|---:|---:|---:|")
    bare_name = {c.framework: c.name for c in configs if not c.auth}
    for config in configs:
        for mode in ("warm", "cold"):
            by_round = results.get((config.name, mode))
            if not by_round:
                continue
            samples = list(by_round.values())
            median = statistics.median(samples)
            base = results.get((bare_name.get(config.framework, ""), "warm"))
            per_round = [rps / base[r] for r, rps in by_round.items() if base and r in base]
            if base and per_round:
                ratio = f"{median / statistics.median(base.values()):.2f}"
                low, high = min(per_round), max(per_round)
                spread = f"{statistics.median(per_round):.2f} ({low:.2f}-{high:.2f})"
            else:
                ratio = spread = "n/a (no bare row)"
            print(f"| {config.name} | {mode} | {median:,.0f} | {min(samples):,.0f}-"
                  f"{max(samples):,.0f} | {ratio} | {spread} |")  # fmt: skip
    print()
    print("Server CPU per request (user + system of the server's processes over each wrk")
    print("run, divided by the requests served): what throughput is made of when the server")
    print("is the bottleneck, and much less disturbed by other load on the machine. The")
    print("ratio is bare CPU/request over this row's: the throughput ratio a quiet,")
    print("CPU-bound server gives.")
    print("| configuration | mode | median CPU us/request | min-max | ratio to bare |")
    print("|---|---|---:|---:|---:|")
    cpu_median = {key: statistics.median(v.values()) for key, v in cpu.items()}
    for config in configs:
        for mode in ("warm", "cold"):
            values = cpu.get((config.name, mode))
            if not values:
                continue
            base_cpu = cpu_median.get((bare_name.get(config.framework, ""), "warm"))
            ratio = f"{base_cpu / cpu_median[(config.name, mode)]:.2f}" if base_cpu else "n/a"
            print(f"| {config.name} | {mode} | {cpu_median[(config.name, mode)]:.1f} | "
                  f"{min(values.values()):.1f}-{max(values.values()):.1f} | {ratio} |")  # fmt: skip
    by_name = {(n, m): statistics.median(v.values()) for (n, m), v in results.items()}
    tw_cold = by_name.get(("starlette + tokenware JWT", "cold"))
    peer_cold = by_name.get(("starlette + AuthenticationMiddleware PyJWT", "cold"))
    if tw_cold and peer_cold:
        print(f"\ncold: tokenware JWT / AuthenticationMiddleware PyJWT = {tw_cold / peer_cold:.2f}"
              " (req/s)")  # fmt: skip
    tw_cpu = cpu_median.get(("starlette + tokenware JWT", "cold"))
    peer_cpu = cpu_median.get(("starlette + AuthenticationMiddleware PyJWT", "cold"))
    if tw_cpu and peer_cpu:
        print(f"cold: AuthenticationMiddleware PyJWT / tokenware JWT = {peer_cpu / tw_cpu:.2f}"
              " (server CPU per request)")  # fmt: skip
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
