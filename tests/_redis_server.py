"""A private ``redis-server`` for tests: start, stop, pause, restart.

Tests that break the server (stop it, freeze it) start their own instance
with this class so the session server shared by the other tests survives.
Only the process started here is ever signalled, by its pid.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

__all__ = ["RedisServer"]

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port(*, cluster: bool = False) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    A cluster node also listens on ``port + 10000`` (its bus port), so Redis
    refuses ports above 55535 there; the kernel's ephemeral range goes higher.
    """
    if not cluster:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 55535)
        if _port_is_free(port) and _port_is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _command(*parts: str) -> bytes:
    """One command in RESP, so any byte of an argument (a password) is safe."""
    encoded = [part.encode() for part in parts]
    return b"".join([b"*%d\r\n" % len(encoded), *(b"$%d\r\n%s\r\n" % (len(e), e) for e in encoded)])


def _ping(port: int, password: str | None = None, timeout: float = 0.2) -> bool:
    """Whether a Redis on ``port`` answers PING with PONG (raw RESP, no client)."""
    request = _command("PING")
    if password is not None:
        request = _command("AUTH", password) + request
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(request)
            reply = b""
            # Bounded: two short replies at most, each read waits <= timeout.
            for _ in range(4):
                chunk = sock.recv(256)
                if not chunk:
                    break
                reply += chunk
                if b"PONG" in reply or reply.startswith(b"-"):
                    break
            return reply.endswith(b"+PONG\r\n")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` subprocess on 127.0.0.1, without persistence.

    Args:
        directory: its working directory (``--dir``); a ``tmp_path``.
        password: if given, the server requires it (``--requirepass``).
        args: extra ``redis-server`` arguments, e.g. ``("--cluster-enabled", "yes")``.

    Attributes:
        port: the TCP port, chosen on the first :meth:`start` and kept by
            :meth:`restart`.
        url: ``redis://127.0.0.1:<port>/0``, with the password if there is one.
        pid: the server's process id while it runs, else ``None``.
    """

    def __init__(
        self, directory: Path, *, password: str | None = None, args: Sequence[str] = ()
    ) -> None:
        self.directory = Path(directory)
        self.password = password
        self.args = tuple(args)
        self.port: int = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL of this server, database 0 (with its password, if any)."""
        auth = "" if self.password is None else f":{quote(self.password, safe='')}@"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The process id of the running server, or ``None``."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the server (on a free port the first time) and wait for PING.

        Raises:
            RuntimeError: it exited, or did not answer within 10 seconds.
        """
        if self._process is not None:
            raise RuntimeError("redis-server already started")
        if not self.port:
            self.port = _free_port(cluster="--cluster-enabled" in self.args)
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / f"redis-{self.port}.log"
        options = {
            "--port": str(self.port),
            "--bind": "127.0.0.1",
            "--save": "",
            "--appendonly": "no",
            "--dir": str(self.directory),
            "--daemonize": "no",
            "--logfile": str(log),
        }
        if self.password is not None:
            options["--requirepass"] = self.password
        command = ["redis-server", *(part for pair in options.items() for part in pair)]
        self._process = subprocess.Popen(
            [*command, *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"redis-server exited at start; see {log}")
            if _ping(self.port, self.password):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING within {START_TIMEOUT} s")

    def stop(self) -> None:
        """Terminate the server and wait; kill it if it does not exit in time."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            # A stopped (SIGSTOP) process would not act on SIGTERM until resumed.
            os.kill(process.pid, signal.SIGCONT)
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)

    def pause(self) -> None:
        """Freeze the server with SIGSTOP: connections hang instead of failing."""
        assert self._process is not None, "not started"
        os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze a paused server with SIGCONT."""
        assert self._process is not None, "not started"
        os.kill(self._process.pid, signal.SIGCONT)

    def restart(self) -> None:
        """Stop the server and start a fresh, empty one on the same port."""
        self.stop()
        self.start()
