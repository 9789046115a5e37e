# ruff: noqa: E402 - imports follow the sys.path fix below
"""Soak: a bounded load run against live tokenware apps, watching the server's memory.

Each run starts one server as a subprocess on a free 127.0.0.1 port and stops
it by pid:

    asgi   Starlette + tokenware.asgi.TokenwareMiddleware on uvicorn (1 process)
    wsgi   Flask + tokenware.wsgi.TokenwareMiddleware on gunicorn (sync, 1 worker,
           no --max-requests, so a leak cannot hide behind worker recycling)

on the embedded SQLite store (a fresh file per run) and, with ``--redis``, on a
redis-server this script starts on a free port and kills by pid at the end.

Traffic, a fixed schedule of 20 requests repeated by every connection:

    cold      4/20  GET /api/me, a JWT never sent before (the verification
                    cache, 1024 entries, fills and must stay bounded)
    warm      4/20  GET /api/me, the same JWT every time
    pat       3/20  GET /api/me, one of 200 personal access tokens (store read)
    session   3/20  GET /api/me, one of 200 session tokens (store read)
    bad       2/20  GET /api/me, forged, expired or unknown tokens -> 401
    limited   2/20  GET /api/limited, the warm JWT, throttled at 20/second -> 429s
    public    2/20  GET /public/ping, no token

The load generator is wrk (``-t2 -c32``, a generated Lua script that counts
statuses) when it is installed, else a bounded Python client (threads over
http.client). Both stop at ``--seconds`` or after ``--max-rps * --seconds``
requests, whichever comes first; the server is pinned to CPU 0 and wrk to CPU 1
when ``taskset`` exists.

Per run it prints requests/s, responses by status, failures (any 5xx, any
other unexpected status, connection errors and timeouts, a traceback in the
server's log, more 401s than bad tokens sent) and the server's RSS
(``VmRSS`` of the process that serves: uvicorn's, gunicorn's worker) after a
warm-up, every second during the run, and at the end. RSS is "flat" when the
end minus the warm value is below max(5 MB, 5 % of the warm value).
Exit status 1 if any run has a failure or RSS growth beyond that.

Usage: python bench/soak.py [--seconds 45] [--redis] [--quick] [--client wrk|python]

With the defaults the whole run takes under 2 minutes (the measured time is
split so that all runs together stay within --budget, 80 s, after a 5 s warm-up each).
"""

from __future__ import annotations

import sys

# bench/ holds http.py: drop this directory from sys.path, or it would shadow
# the standard library's http package (http.client below, and httpx's).
_HERE = __import__("os").path.dirname(__import__("os").path.abspath(__file__))
sys.path[:] = [p for p in sys.path if __import__("os").path.abspath(p or ".") != _HERE]

import argparse
import contextlib
import datetime
import http.client
import importlib.util
import os
import platform
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "hex:" + "5e" * 32
ISSUER = "https://soak.local"
AUDIENCE = "soak"
LIMIT = "20/second"  # the throttled route: well below what it receives
TOKENS_PER_KIND = 200  # PATs and session tokens, each
JWT_CACHE = 1024  # Tokenware(jwt_cache_size=...) default
MB = 1024 * 1024

#: Request kinds, in the order of the schedule every connection repeats.
WEIGHTS = {"cold": 4, "warm": 4, "pat": 3, "session": 3, "bad": 2, "limited": 2, "public": 2}
SCHEDULE = [kind for kind, weight in WEIGHTS.items() for _ in range(weight)]
#: Statuses expected by design, per kind; anything else is a failure.
EXPECTED = {"bad": {401}, "limited": {200, 429}}

COMMON = r"""
import os

from tokenware import ThrottleRule, Tokenware

tw = Tokenware(store=os.environ["SOAK_STORE"], secret_key=os.environ["SOAK_SECRET"],
               issuer=os.environ["SOAK_ISSUER"], audience=os.environ["SOAK_AUDIENCE"],
               key_prefix=os.environ["SOAK_PREFIX"])
OPTIONS = dict(tokenware=tw, protect=["/api/"], public=["/public/"],
               throttle=[ThrottleRule(os.environ["SOAK_LIMIT"], prefix="/api/limited")],
               script_path=None, handshake_path=None, jwks_path=None)
"""

ASGI_APP = (
    COMMON
    + r"""
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tokenware.asgi import TokenwareMiddleware


async def me(request):
    return PlainTextResponse(request.scope["tokenware.identity"].subject)


async def ping(request):
    return PlainTextResponse("pong")


app = TokenwareMiddleware(
    Starlette(routes=[Route("/api/me", me), Route("/api/limited", me),
                      Route("/public/ping", ping)]),
    **OPTIONS,
)
"""
)

WSGI_APP = (
    COMMON
    + r"""
from flask import Flask, request

from tokenware.wsgi import TokenwareMiddleware

app = Flask(__name__)


@app.get("/api/me")
@app.get("/api/limited")
def me():
    return request.environ["tokenware.identity"].subject


@app.get("/public/ping")
def ping():
    return "pong"


app.wsgi_app = TokenwareMiddleware(app.wsgi_app, **OPTIONS)
"""
)

#: wrk script: every thread walks the schedule; ``response`` counts statuses and
#: stops the thread at its request budget; ``done`` prints the counts.
WRK_LUA = r"""
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function lines(name)
  local t = {}
  for line in io.lines(os.getenv("SOAK_DIR") .. "/" .. name) do
    if #line > 0 then t[#t + 1] = "Bearer " .. line end
  end
  return t
end

function init(args)
  cold = lines(os.getenv("SOAK_COLD") .. "-" .. tid .. ".txt")
  warm = lines("warm.txt")[1]
  pats = lines("pat.txt")
  sessions = lines("session.txt")
  bad = lines("bad.txt")
  budget = tonumber(os.getenv("SOAK_BUDGET"))
  schedule = {SCHEDULE_LIST}
  n, ci, pi, si, bi, answered, wrapped = 0, 0, 0, 0, 0, 0, 0
  sent, statuses = {}, {}
end

function request()
  n = n + 1
  local kind = schedule[(n - 1) % #schedule + 1]
  sent[kind] = (sent[kind] or 0) + 1
  local path, auth = "/api/me", nil
  if kind == "cold" then
    ci = ci + 1
    if ci > #cold then ci, wrapped = 1, wrapped + 1 end
    auth = cold[ci]
  elseif kind == "warm" then auth = warm
  elseif kind == "pat" then pi = pi % #pats + 1; auth = pats[pi]
  elseif kind == "session" then si = si % #sessions + 1; auth = sessions[si]
  elseif kind == "bad" then bi = bi % #bad + 1; auth = bad[bi]
  elseif kind == "limited" then path, auth = "/api/limited", warm
  else path = "/public/ping" end
  if auth then return wrk.format("GET", path, {["Authorization"] = auth}) end
  return wrk.format("GET", path)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  answered = answered + 1
  if answered >= budget then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SOAKLUA errors %d %d %d %d\n", e.connect, e.read, e.write, e.timeout))
  io.write(string.format("SOAKLUA duration %d\n", summary.duration))
  for _, t in ipairs(threads) do
    for status, count in pairs(t:get("statuses")) do
      io.write(string.format("SOAKLUA status %d %d\n", status, count))
    end
    for kind, count in pairs(t:get("sent")) do
      io.write(string.format("SOAKLUA sent %s %d\n", kind, count))
    end
    io.write(string.format("SOAKLUA wrapped %d\n", t:get("wrapped")))
  end
end
"""

WRK_THREADS = 2
WRK_CONNECTIONS = 32
PY_THREADS = 8


# -- processes -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() else []


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen within {timeout:g} s")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], *, group: bool) -> None:
    """SIGTERM our own child (and, with ``group``, its session), then SIGKILL."""
    kill: Callable[[int, int], None] = os.killpg if group else os.kill
    with contextlib.suppress(ProcessLookupError):
        kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A private redis-server on a free port, killed by pid on exit."""
    if shutil.which("redis-server") is None:
        sys.exit("--redis: redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", str(workdir), "--maxmemory-policy", "noeviction",
           "--logfile", str(workdir / "redis.log")]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc, "redis-server", 10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc, group=False)


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (gunicorn's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def rss(pid: int) -> int:
    """``VmRSS`` of ``pid`` in bytes (0 when the process is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Server:
    app: str  # "asgi" or "wsgi"
    port: int
    pid: int  # the serving process
    master: int  # the process we started (gunicorn's arbiter; uvicorn: pid)
    log: Path


def launch(
    app: str, env: dict[str, str], workdir: Path, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """Start the server on a free port; once more on another port if it exits at start
    (another process may take a port between :func:`free_port` and the bind)."""
    for attempt in (1, 2):
        port = free_port()
        if app == "asgi":
            parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
            cmd = [sys.executable, "-m", "uvicorn", "soak_asgi:app", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", "1", "--loop", "asyncio", "--http",
                   parser, "--no-access-log", "--log-level", "warning"]  # fmt: skip
        else:
            cmd = [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "sync", "-b",
                   f"127.0.0.1:{port}", "--log-level", "warning", "soak_wsgi:app"]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen([*pin(0), *cmd], env=env, cwd=workdir, stdout=out,
                                    stderr=out, start_new_session=True)  # fmt: skip
        try:
            wait_port(port, proc, f"{app} server")
            return proc, port
        except RuntimeError as exc:
            exited = proc.poll() is not None  # else it hung: no second try
            stop(proc, group=True)
            tail = log.read_text("utf-8", "replace").strip().splitlines()[-15:]
            if attempt == 2 or not exited:
                raise RuntimeError("\n    ".join([str(exc), *tail])) from None
            print(f"  {exc} ({tail[-1] if tail else 'no output'}); again on another port")
    raise AssertionError("unreachable")


@contextlib.contextmanager
def server(app: str, store: str, prefix: str, workdir: Path) -> Iterator[Server]:
    env = {**os.environ, "SOAK_STORE": store, "SOAK_SECRET": SECRET, "SOAK_ISSUER": ISSUER,
           "SOAK_AUDIENCE": AUDIENCE, "SOAK_PREFIX": prefix, "SOAK_LIMIT": LIMIT,
           "PYTHONPATH": f"{workdir}{os.pathsep}{ROOT}"}  # fmt: skip
    log = workdir / f"{app}-{prefix}.log"
    proc, port = launch(app, env, workdir, log)
    try:
        pid = proc.pid
        if app == "wsgi":
            deadline = time.monotonic() + 10
            while not (workers := children(proc.pid)):
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn started no worker")
                time.sleep(0.05)
            pid = workers[0]
        yield Server(app, port, pid, proc.pid, log)
    finally:
        stop(proc, group=True)  # our child and its session only (gunicorn's worker)


# -- tokens ----------------------------------------------------------------


@dataclass
class Tokens:
    warm: str
    pats: list[str]
    sessions: list[str]
    bad: list[str]
    cold_warmup: list[str]
    cold: list[str]


def make_jwts(count: int, *, start: int = 0) -> list[str]:
    """``count`` distinct access tokens, signed as the servers' ``tw.jwt`` would."""
    from tokenware import Tokenware
    from tokenware.core.jwt import AccessTokenCodec

    with Tokenware(store="memory://", secret_key=SECRET, issuer=ISSUER, audience=AUDIENCE) as tw:
        codec = AccessTokenCodec.from_settings(tw.settings)
    now = time.time()
    return [
        codec.encode(f"user{start + i}", now=now, ttl=900, jti=uuid.uuid4().hex)
        for i in range(count)
    ]


def seed(store: str, prefix: str) -> tuple[list[str], list[str]]:
    """Issue the PATs and session tokens into ``store``, where the server will read them."""
    from tokenware import Tokenware

    with Tokenware(store=store, secret_key=SECRET, issuer=ISSUER, audience=AUDIENCE,
                   key_prefix=prefix) as tw:  # fmt: skip
        pats = [tw.pats.issue(f"pat-user{i}").token for i in range(TOKENS_PER_KIND)]
        sessions = [str(tw.sessions.add(f"session-user{i}").key) for i in range(TOKENS_PER_KIND)]
    return pats, sessions


def bad_tokens() -> list[str]:
    """Tokens every server must answer with 401: forged, expired, unknown, malformed."""
    from tokenware import Tokenware
    from tokenware.core.jwt import AccessTokenCodec

    with Tokenware(store="memory://", secret_key=SECRET, issuer=ISSUER, audience=AUDIENCE) as tw:
        codec = AccessTokenCodec.from_settings(tw.settings)
        unknown_pat = tw.pats.generate().token  # well formed, never registered
    head, body, sig = make_jwts(1)[0].split(".")
    other_body = make_jwts(1)[0].split(".")[1]
    return [
        f"{head}.{body}.{sig[:8]}{'A' if sig[8] != 'A' else 'B'}{sig[9:]}",  # forged
        f"{head}.{other_body}.{sig}",  # a signature over another payload
        codec.encode("old", now=time.time() - 7200, ttl=60, jti=uuid.uuid4().hex),  # expired
        unknown_pat,  # a store read that finds nothing
        unknown_pat[:-1] + ("a" if unknown_pat[-1] != "a" else "b"),  # bad checksum
        "tws_" + "A" * 43,  # unknown session
        "not-a-token",
    ]


# -- load ------------------------------------------------------------------


@dataclass
class Load:
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    #: Answers that are not 5xx but not by design either: "what: count".
    unexpected: Counter[str] = field(default_factory=Counter)
    connection_errors: int = 0
    wrapped: int = 0

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())


def write_tokens(workdir: Path, tokens: Tokens, cold: list[str], name: str, parts: int) -> None:
    (workdir / "warm.txt").write_text(tokens.warm + "\n")
    (workdir / "pat.txt").write_text("\n".join(tokens.pats) + "\n")
    (workdir / "session.txt").write_text("\n".join(tokens.sessions) + "\n")
    (workdir / "bad.txt").write_text("\n".join(tokens.bad) + "\n")
    for part in range(parts):
        (workdir / f"{name}-{part}.txt").write_text("\n".join(cold[part::parts]) + "\n")


def run_wrk(port: int, seconds: float, budget: int, workdir: Path, cold: str) -> Load:
    lua = workdir / "soak.lua"
    lua.write_text(WRK_LUA.replace("SCHEDULE_LIST", ", ".join(f'"{k}"' for k in SCHEDULE)))
    env = {**os.environ, "SOAK_DIR": str(workdir), "SOAK_COLD": cold,
           "SOAK_BUDGET": str(max(1, budget // WRK_THREADS))}  # fmt: skip
    cmd = [*pin(1), "wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}",
           f"-d{max(1, round(seconds))}s", "--timeout", "5s", "-s", str(lua),
           f"http://127.0.0.1:{port}/"]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 30)
    if out.returncode != 0 or "SOAKLUA duration" not in out.stdout:
        raise RuntimeError(f"wrk failed: {out.stdout}{out.stderr}")
    load = Load()
    for line in out.stdout.splitlines():
        parts = line.split()
        if not parts or parts[0] != "SOAKLUA":
            continue
        if parts[1] == "errors":
            load.connection_errors += sum(int(n) for n in parts[2:])
        elif parts[1] == "duration":
            load.seconds = int(parts[2]) / 1e6
        elif parts[1] == "status":
            load.statuses[int(parts[2])] += int(parts[3])
        elif parts[1] == "sent":
            load.sent[parts[2]] += int(parts[3])
        elif parts[1] == "wrapped":
            load.wrapped += int(parts[2])
    # wrk cannot tell which request an answer belongs to: statuses are judged
    # by totals (a good token answered 401 shows as more 401s than bad sent).
    for status, count in load.statuses.items():
        if status not in (200, 401, 429) and status < 500:
            load.unexpected[f"status {status}"] += count
    # Requests still in flight when wrk stopped were counted as sent, not answered.
    extra_401 = load.statuses[401] - load.sent["bad"]
    if extra_401 > 0:
        load.unexpected["401 beyond the bad tokens sent"] += extra_401
    extra_429 = load.statuses[429] - load.sent["limited"]
    if extra_429 > 0:
        load.unexpected["429 beyond the throttled requests sent"] += extra_429
    return load


def run_python(port: int, seconds: float, budget: int, tokens: Tokens, cold: list[str]) -> Load:
    """The fallback generator: threads over http.client, exact per-kind counts."""
    load = Load()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    per_thread = max(1, budget // PY_THREADS)

    def worker(part: int) -> None:
        mine = cold[part::PY_THREADS]
        statuses: Counter[tuple[str, int]] = Counter()
        errors = wrapped = ci = pi = si = bi = 0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for n in range(per_thread):
            if time.monotonic() >= deadline:
                break
            kind = SCHEDULE[n % len(SCHEDULE)]
            path, auth = "/api/me", None
            if kind == "cold":
                if ci >= len(mine):
                    ci, wrapped = 0, wrapped + 1
                auth, ci = mine[ci], ci + 1
            elif kind in ("warm", "limited"):
                auth = tokens.warm
                path = "/api/limited" if kind == "limited" else path
            elif kind == "pat":
                auth, pi = tokens.pats[pi % len(tokens.pats)], pi + 1
            elif kind == "session":
                auth, si = tokens.sessions[si % len(tokens.sessions)], si + 1
            elif kind == "bad":
                auth, bi = tokens.bad[bi % len(tokens.bad)], bi + 1
            else:
                path = "/public/ping"
            headers = {"Authorization": f"Bearer {auth}"} if auth else {}
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                statuses[kind, response.status] += 1
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
        conn.close()
        with lock:
            load.connection_errors += errors
            load.wrapped += wrapped
            for (kind, status), count in statuses.items():
                load.statuses[status] += count
                load.sent[kind] += count
                if status not in EXPECTED.get(kind, {200}) and status < 500:
                    load.unexpected[f"{kind} answered {status}"] += count

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(PY_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    load.seconds = time.monotonic() - started
    return load


# -- one run ---------------------------------------------------------------


@dataclass
class Result:
    name: str
    load: Load
    warm_rss: int
    samples: list[int]
    end_rss: int
    tracebacks: int
    worker_changed: bool
    budget: int = 0
    warmup: Load = field(default_factory=Load)
    failures: list[str] = field(default_factory=list)

    @property
    def growth(self) -> int:
        return self.end_rss - self.warm_rss

    @property
    def limit(self) -> int:
        return max(5 * MB, self.warm_rss // 20)

    @property
    def flat(self) -> bool:
        return self.growth < self.limit


def sanity(port: int, tokens: Tokens) -> None:
    """One request of each kind answers as designed before any load."""
    cases = [("/public/ping", None, 200), ("/api/me", tokens.warm, 200),
             ("/api/me", tokens.cold_warmup[0], 200), ("/api/me", tokens.pats[0], 200),
             ("/api/me", tokens.sessions[0], 200), ("/api/me", None, 401)]  # fmt: skip
    cases += [("/api/me", bad, 401) for bad in tokens.bad]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for path, token, expected in cases:
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
            response = conn.getresponse()
            body = response.read()
            if response.status != expected:
                raise RuntimeError(f"GET {path}: expected {expected}, got {response.status}: "
                                   f"{body[:200]!r}")  # fmt: skip
    finally:
        conn.close()


def soak(app: str, store_kind: str, store_url: str, args: argparse.Namespace, tokens: Tokens,
         workdir: Path, run_no: int) -> Result:  # fmt: skip
    name = f"{app}/{store_kind}"
    prefix = f"soak{run_no}x{uuid.uuid4().hex[:6]}"
    if store_kind == "sqlite":
        store_url = f"sqlite:///{workdir / f'soak-{run_no}.db'}"
    tokens.pats, tokens.sessions = seed(store_url, prefix)
    budget = int(args.max_rps * args.seconds)
    use_wrk = args.client == "wrk"
    if use_wrk:
        write_tokens(workdir, tokens, tokens.cold_warmup, "cold-warmup", WRK_THREADS)
        write_tokens(workdir, tokens, tokens.cold, "cold", WRK_THREADS)
    with server(app, store_url, prefix, workdir) as srv:
        sanity(srv.port, tokens)
        warm_budget = int(args.max_rps * args.warmup)
        if use_wrk:
            warmup = run_wrk(srv.port, args.warmup, warm_budget, workdir, "cold-warmup")
        else:
            warmup = run_python(srv.port, args.warmup, warm_budget, tokens, tokens.cold_warmup)
        time.sleep(0.2)
        warm_rss = rss(srv.pid)
        samples: list[int] = []
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(1.0):
                samples.append(rss(srv.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            if use_wrk:
                load = run_wrk(srv.port, args.seconds, budget, workdir, "cold")
            else:
                load = run_python(srv.port, args.seconds, budget, tokens, tokens.cold)
        finally:
            stop_sampling.set()
            sampler.join()
        time.sleep(0.2)
        end_rss = rss(srv.pid)
        worker_changed = srv.pid not in (srv.master, *children(srv.master))
        log_text = srv.log.read_text("utf-8", "replace")
    result = Result(name, load, warm_rss, samples, end_rss,
                    log_text.count("Traceback"), worker_changed, budget, warmup)  # fmt: skip
    for phase, part in (("", load), ("warm-up: ", warmup)):
        five = sum(n for status, n in part.statuses.items() if status >= 500)
        if five:
            result.failures.append(f"{phase}{five} responses 5xx")
        if part.unexpected:
            listed = ", ".join(f"{what}: {n}" for what, n in sorted(part.unexpected.items()))
            result.failures.append(f"{phase}unexpected answers: {listed}")
        if part.connection_errors:
            result.failures.append(f"{phase}{part.connection_errors} connection errors or timeouts")
    if result.tracebacks:
        result.failures.append(f"{result.tracebacks} tracebacks in the server log ({srv.log})")
    if worker_changed:
        result.failures.append("the serving process died or was replaced during the run")
    if load.answered == 0:
        result.failures.append("no responses")
    if load.statuses[429] == 0:
        result.failures.append("the throttled route never answered 429")
    if not result.flat:
        result.failures.append(
            f"RSS grew {result.growth / MB:+.1f} MB (limit {result.limit / MB:.1f} MB)"
        )
    return result


def report(result: Result) -> None:
    load = result.load
    rps = load.answered / load.seconds if load.seconds else 0.0
    statuses = " ".join(f"{s}={n}" for s, n in sorted(load.statuses.items()))
    sent = " ".join(f"{k}={load.sent[k]}" for k in WEIGHTS)
    five = sum(n for s, n in load.statuses.items() if s >= 500)
    during = (
        f"{min(result.samples) / MB:.1f}-{max(result.samples) / MB:.1f} MB"
        if result.samples
        else "n/a"
    )
    verdict = "flat" if result.flat else "GROWING"
    print(f"SOAK {result.name}: {rps:,.0f} req/s, {load.answered} responses in "
          f"{load.seconds:.1f} s; statuses {statuses}; failures {len(result.failures)} "
          f"(5xx {five}, connection errors {load.connection_errors}); "
          f"RSS warm {result.warm_rss / MB:.1f} MB, during {during}, "
          f"end {result.end_rss / MB:.1f} MB, growth {result.growth / MB:+.1f} MB "
          f"(limit {result.limit / MB:.1f} MB): {verdict}")  # fmt: skip
    print(f"  sent by kind: {sent}; cold tokens reused: {load.wrapped} times; warm-up: "
          f"{result.warmup.answered} responses, {result.warmup.sent['cold']} of them cold JWTs "
          f"(the verification cache holds {JWT_CACHE})")  # fmt: skip
    if load.answered >= result.budget * 0.98:
        print("  the request bound (--max-rps x seconds) was reached: req/s is a floor")
    if result.samples:
        print("  RSS every second (MB): " + " ".join(f"{s / MB:.1f}" for s in result.samples))
    for failure in result.failures:
        print(f"  FAILURE: {failure}")


def commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5)  # fmt: skip
        if out.returncode == 0:
            return out.stdout.strip()
    return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None,
                        help="measured seconds per run (default: --budget split over the runs, "
                             "at most 45)")  # fmt: skip
    parser.add_argument("--warmup", type=float, default=None, help="seconds (default 5)")
    parser.add_argument(
        "--budget",
        type=float,
        default=80.0,
        help="measured seconds of all runs together when --seconds is not given",
    )
    parser.add_argument(
        "--max-rps",
        type=float,
        default=6000.0,
        help="request bound: at most this many requests per second of a run",
    )
    parser.add_argument("--redis", action="store_true", help="also run on a private redis-server")
    parser.add_argument("--quick", action="store_true", help="a few seconds per run (smoke test)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--only", default="", help="substring filter on run names (asgi/sqlite)")
    args = parser.parse_args()

    runs = [(app, store) for store in ("sqlite", "redis") if store == "sqlite" or args.redis
            for app in ("asgi", "wsgi") if args.only in f"{app}/{store}"]  # fmt: skip
    if not runs:
        parser.error("--only matches no run")
    if args.seconds is None:
        args.seconds = 3.0 if args.quick else min(45.0, args.budget / len(runs))
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 5.0
    if not (0 < args.seconds <= 120 and 0 < args.warmup <= 30 and 0 < args.max_rps <= 50000):
        parser.error("bounded: --seconds <= 120, --warmup <= 30, --max-rps <= 50000")
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "python"
    elif args.client == "wrk" and shutil.which("wrk") is None:
        parser.error("wrk is not installed (apt-get install -y wrk)")
    missing = [m for m in ("uvicorn", "starlette", "gunicorn", "flask")
               if importlib.util.find_spec(m) is None]  # fmt: skip
    if missing:
        sys.exit(f"missing: {', '.join(missing)} (pip install -e '.[test]')")

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="tw-soak-"))
    (workdir / "soak_asgi.py").write_text(ASGI_APP)
    (workdir / "soak_wsgi.py").write_text(WSGI_APP)
    cold_count = int(args.max_rps * args.seconds * WEIGHTS["cold"] / len(SCHEDULE)) + 64
    warm_count = int(args.max_rps * args.warmup * WEIGHTS["cold"] / len(SCHEDULE)) + 64
    cold = make_jwts(cold_count + warm_count + 1)
    tokens = Tokens(warm=cold[0], pats=[], sessions=[], bad=bad_tokens(),
                    cold_warmup=cold[1 : warm_count + 1], cold=cold[warm_count + 1 :])  # fmt: skip
    print(f"tokenware soak, commit {commit()}, {datetime.date.today()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")  # fmt: skip
    print(f"client {args.client}; {args.warmup:g} s warm-up + {args.seconds:g} s per run, "
          f"at most {args.max_rps:g} req/s x seconds requests; {len(tokens.cold)} fresh JWTs "
          f"per run; throttled route {LIMIT}")  # fmt: skip

    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server(workdir)) if args.redis else ""
        for run_no, (app, store) in enumerate(runs):
            try:
                result = soak(app, store, redis_url, args, tokens, workdir, run_no)
            except Exception as exc:  # one broken server must not hide the others
                print(f"SOAK {app}/{store}: FAILED to run: {exc}", flush=True)
                results.append(Result(f"{app}/{store}", Load(), 0, [], 0, 0, False,
                                      failures=[f"did not run: {exc}"]))  # fmt: skip
                continue
            report(result)
            results.append(result)
            sys.stdout.flush()
    shutil.rmtree(workdir, ignore_errors=True)
    bad = [r.name for r in results if r.failures]
    print(f"SOAK verdict: {'FAIL (' + ', '.join(bad) + ')' if bad else 'PASS'} "
          f"in {time.monotonic() - started:.0f} s")  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
