"""Loopback ports handed from one process to another without a race.

Picking a free port (bind to 0, close, pass the number on) leaves a gap in which any other
process may take it: on a busy machine, outgoing connections draw from the same ephemeral range.
Here a port stays held until the process it was chosen for has it:
- `reserve`: a bound, not listening, SO_REUSEPORT socket. A server started with `--reuse-port`
  binds beside it, and nothing else can: the port stays ours across the server's restarts, for
  as long as the reservation is open.
- `unused_fixed_port`: for listeners that cannot share a port (Locust's ZeroMQ master), a port
  outside the kernel's ephemeral range, which no outgoing connection takes on its own.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Below the ephemeral range (32768-60999 by default on Linux) and above most registered services.
FIXED_LOW, FIXED_HIGH = 20000, 32767
FIXED_ATTEMPTS = 50


def reserve(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Hold `port` (0: a free one) on `host` until the returned socket is closed."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = EPHEMERAL_RANGE_FILE.read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def unused_fixed_port(host: str = "127.0.0.1", rng: random.Random | None = None) -> int:
    """A port free now, chosen at random outside the ephemeral range: only another process
    choosing the same number on purpose could take it before its listener binds."""
    rng = rng or random.Random()
    low, high = _ephemeral_range()
    candidates = [p for p in range(FIXED_LOW, FIXED_HIGH + 1) if not low <= p <= high]
    for port in rng.sample(candidates, FIXED_ATTEMPTS):
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port among {FIXED_ATTEMPTS} tried in {FIXED_LOW}-{FIXED_HIGH}")
