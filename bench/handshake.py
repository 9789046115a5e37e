"""Server cost of one TWHS1 handshake next to its bare cryptographic floor.

Run: ``python bench/handshake.py [--n 1000] [--rounds 7]`` (bounded: well under a minute).

Rows, each timed over ``n`` handshakes per round, run in ``--slices`` slices
(default 5) with the rows taking turns slice by slice (order alternating), so
a burst of load elsewhere on the machine hits every row alike:

* ``floor``      what any correct server must do with ``cryptography``: load the
                 client's point, generate an ephemeral P-256 key, ECDH, HKDF-SHA256,
                 AES-256-GCM of the same ~0.7 KB payload, random nonce and IV;
* ``respond``    ``tw.handshake.respond`` on the memory store, without throttles:
                 parse, origin, CSRF signature (itsdangerous) and double-submit
                 check, point validation, the atomic replay guard, the transcript
                 hash, sealing, and building the reply;
* ``respond+rl`` the same with the default per-session GCRA throttle on.

Times are CPU time of this thread (``time.thread_time``), not wall time: on a
busy machine wall time counts the slices other processes run, CPU time does
not (it still feels cache and frequency effects, hence the minimum as well).
Reported per row: the median and the minimum over rounds, and as the verdict
both the ratio of medians and the ratio of minimums.

Every handshake uses a distinct pre-made client key, nonce and CSRF token,
so the replay guard and the throttles see fresh keys, as in production.
Target: ``respond`` within 1.5x of ``floor`` (issue 8).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tokenware import Tokenware
from tokenware.core.handshake import b64u

ORIGIN = "https://app.example.com"
PAYLOAD = "eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9." + "x" * 620 + ".sig"
TARGET = 1.5
#: Wall-clock budget: stop after the round that crosses it.
BUDGET_S = 50.0

Batch = list[tuple[bytes, bytes, str]]
Row = Callable[[Batch, list[str]], None]


def clients(n: int) -> Batch:
    out = []
    for _ in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        epk = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        nonce = os.urandom(16)
        out.append((epk, nonce, f"v1.{b64u(epk)}.{b64u(nonce)}"))
    return out


def floor_op(epk: bytes, nonce: bytes) -> None:
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), epk)
    key = ec.generate_private_key(ec.SECP256R1())
    key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    n_s, iv = os.urandom(16), os.urandom(12)
    z = key.exchange(ec.ECDH(), peer)
    k = HKDF(hashes.SHA256(), 32, nonce + n_s, b"tokenware-hs-v1 key" + bytes(32)).derive(z)
    AESGCM(k).encrypt(iv, PAYLOAD.encode(), bytes(32))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--slices", type=int, default=5, help="interleaved slices per round")
    args = parser.parse_args()
    n, rounds = args.n, args.rounds
    started = time.perf_counter()

    tw = Tokenware(store="memory://", secret_key=b"bench-handshake-secret-0123456789")
    plain = tw.handshake.configure(origins=[ORIGIN], session_rate=None, address_rate=None)
    limited = tw.handshake.configure(origins=[ORIGIN], address_rate=None)

    def run_floor(batch: Batch, csrfs: list[str]) -> None:
        for epk, nonce, _ in batch:
            floor_op(epk, nonce)

    def runner(hs: object) -> Row:
        respond = hs.respond  # type: ignore[attr-defined]

        def run(batch: Batch, csrfs: list[str]) -> None:
            for (_, _, header), csrf in zip(batch, csrfs, strict=True):
                respond(header, csrf_token=csrf, csrf_cookie=csrf, origin=ORIGIN, payload=PAYLOAD)

        return run

    rows: dict[str, Row] = {
        "floor": run_floor,
        "respond": runner(plain),
        "respond+rl": runner(limited),
    }
    # Warm-up: first calls fill caches (derived keys, imports, the memory store).
    for row in rows.values():
        row(clients(20), [tw.handshake.issue_csrf() for _ in range(20)])
    times: dict[str, list[float]] = {name: [] for name in rows}
    slices = max(1, min(args.slices, n))
    for r in range(rounds):
        # Inputs made before the clock starts; then each row's n handshakes
        # run in `slices` slices, rows taking turns slice by slice in
        # alternating order, so load that comes and goes lands on all alike.
        inputs = {
            name: (clients(n), [tw.handshake.issue_csrf() for _ in range(n)]) for name in rows
        }
        spent = dict.fromkeys(rows, 0.0)
        for s in range(slices):
            order = list(rows) if (r + s) % 2 == 0 else list(reversed(rows))
            lo, hi = n * s // slices, n * (s + 1) // slices
            for name in order:
                batch, csrfs = inputs[name]
                t0 = time.thread_time()
                rows[name](batch[lo:hi], csrfs[lo:hi])
                spent[name] += time.thread_time() - t0
        for name in rows:
            times[name].append(spent[name] / n)
        if time.perf_counter() - started > BUDGET_S:
            print(f"(stopped after {r + 1} rounds to stay under a minute)")
            break

    med = {name: statistics.median(values) for name, values in times.items()}
    low = {name: min(values) for name, values in times.items()}
    print(
        f"TWHS1 server CPU time per handshake (thread_time), memory store, "
        f"n={n}, rounds={len(times['floor'])}, slices={slices}"
    )
    print(f"{'row':<12} {'median µs':>10} {'min µs':>9} {'med/floor':>10} {'min/floor':>10}")
    for name in times:
        print(
            f"{name:<12} {med[name] * 1e6:>10.1f} {low[name] * 1e6:>9.1f}"
            f" {med[name] / med['floor']:>10.2f} {low[name] / low['floor']:>10.2f}"
        )
    ratio_med = med["respond"] / med["floor"]
    ratio_min = low["respond"] / low["floor"]
    for what, ratio in (("medians", ratio_med), ("minimums", ratio_min)):
        verdict = "within" if ratio <= TARGET else "ABOVE"
        print(f"respond / floor, ratio of {what}: {ratio:.2f} ({verdict} the {TARGET}x target)")
    print(f"total {time.perf_counter() - started:.1f} s wall")
    tw.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
