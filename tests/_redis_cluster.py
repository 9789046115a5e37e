"""A private Redis Cluster for tests: 3 primaries and 3 replicas on loopback.

Six :class:`~_redis_server.RedisServer` processes with ``--cluster-enabled``
on free ports (each below 55535, so its bus port ``port + 10000`` is valid),
joined by ``redis-cli --cluster create ... --cluster-replicas 1``. Only the
processes started here are ever signalled, by their pid.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from _redis_server import RedisServer, _command

__all__ = ["RedisCluster"]

#: Seconds for ``redis-cli --cluster create`` and for the cluster to agree.
CREATE_TIMEOUT = 60.0
READY_TIMEOUT = 30.0


def _info(port: int, section: str = "CLUSTER INFO", timeout: float = 0.5) -> str:
    """The text reply of ``CLUSTER INFO`` / ``CLUSTER NODES`` (raw RESP), or ''."""
    request = _command(*section.split())
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(request)
            reply = b""
            for _ in range(64):  # bounded: a bulk string of a few KiB at most
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
                if reply.startswith(b"$") and b"\r\n" in reply:
                    size = int(reply[1 : reply.index(b"\r\n")])
                    if len(reply) >= reply.index(b"\r\n") + 2 + size:
                        break
                elif reply.startswith(b"-"):
                    break
            return reply.decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


class RedisCluster:
    """Six cluster-enabled redis-servers: 3 primaries, each with a replica.

    Args:
        directory: a ``tmp_path``; each node gets a sub-directory.
        node_timeout: ``cluster-node-timeout`` in ms: how long a primary may be
            unreachable before its replica is promoted.

    Attributes:
        nodes: the six servers (``redis-cli`` picks which become primaries).
        url: ``redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...`` (every node).
    """

    def __init__(self, directory: Path, *, node_timeout: int = 1000) -> None:
        self.directory = Path(directory)
        self.nodes: list[RedisServer] = []
        self.node_timeout = node_timeout

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL listing every node as a seed."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> None:
        """Start the six nodes, create the cluster and wait until all report ok.

        Raises:
            RuntimeError: a node did not start, ``redis-cli`` failed, or the
                cluster did not reach ``cluster_state:ok`` in time.
        """
        try:
            for n in range(6):
                directory = self.directory / f"node{n}"
                directory.mkdir(parents=True, exist_ok=True)
                node = RedisServer(
                    directory,
                    args=(
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", str(directory / "nodes.conf"),
                        "--cluster-node-timeout", str(self.node_timeout),
                    ),
                )  # fmt: skip
                self.nodes.append(node)
                node.start()
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            options = ["--cluster-replicas", "1", "--cluster-yes"]
            create = subprocess.run(
                ["redis-cli", "--cluster", "create", *addresses, *options],
                capture_output=True,
                timeout=CREATE_TIMEOUT,
                check=False,
            )
            if create.returncode != 0:
                raise RuntimeError(
                    "redis-cli --cluster create failed: " + create.stdout.decode()[-2000:]
                )
            self.wait_ok(self.nodes)
        except BaseException:
            self.stop()
            raise

    def wait_ok(self, nodes: list[RedisServer], timeout: float = READY_TIMEOUT) -> None:
        """Wait until every node in ``nodes`` reports ``cluster_state:ok``
        and sees the same number of known nodes with every slot assigned."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            infos = [_info(node.port) for node in nodes]
            if all(
                "cluster_state:ok" in info and "cluster_slots_ok:16384" in info for info in infos
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"the cluster did not reach cluster_state:ok within {timeout} s")

    def roles(self) -> dict[int, str]:
        """``{port: "master" | "slave"}`` for every running node, from CLUSTER NODES."""
        roles: dict[int, str] = {}
        for node in self.nodes:
            if node.pid is None:
                continue
            for line in _info(node.port, "CLUSTER NODES").splitlines():
                fields = line.split()
                if len(fields) > 2 and "myself" in fields[2]:
                    roles[node.port] = "master" if "master" in fields[2] else "slave"
        return roles

    def primary_for(self, port_of_slot_owner: int) -> RedisServer:
        """The node listening on ``port_of_slot_owner``."""
        return next(n for n in self.nodes if n.port == port_of_slot_owner)

    def stop(self) -> None:
        """Stop every node this object started (each by its pid)."""
        for node in self.nodes:
            node.stop()


def replicated(cluster: Any, timeout: float = 10.0) -> None:
    """Wait until every replica of ``cluster`` has every write of its primary
    (replication offsets equal); skips killed nodes."""
    import redis

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lagging = 0
        for node in cluster.nodes:
            if node.pid is None:
                continue
            client = redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=1)
            info = client.info("replication")
            client.close()
            if info.get("role") == "master":
                for name, replica in info.items():
                    if name.startswith("slave") and isinstance(replica, dict):
                        lagging += replica["offset"] != info["master_repl_offset"]
        if not lagging:
            return
        time.sleep(0.05)
    raise AssertionError("replicas did not catch up")
