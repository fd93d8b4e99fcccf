"""The server a simulation starts: its port is held from the moment it is chosen, so no other
process can take it before the server binds it or while a crashed server comes back; any other
early exit says what the server said."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from semichat import ports
from semichat.harness.server_metrics import get_json
from semichat.harness.server_process import ServerProcess, ServerStartError


def _taken_by_another(port: int) -> bool:
    """Whether another process's bind fails (SO_REUSEADDR: a closed server's connections in
    TIME_WAIT do not count as taking the port)."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            other.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def test_the_port_is_held_before_the_start_and_across_a_crash(tmp_path: Path) -> None:
    server = ServerProcess("embedded", tmp_path)
    try:
        assert _taken_by_another(server.port)  # held before the server binds it
        server.start()
        assert get_json(f"{server.target}/healthz")
        port = server.port
        server.crash()  # killed, then started again on the same, still-held port
        assert server.port == port and server.lives == 2
        assert get_json(f"{server.target}/healthz")
    finally:
        server.stop()
    assert not _taken_by_another(port)  # and let go at the end


def test_a_reservation_refuses_other_binds_but_admits_a_reuse_port_listener() -> None:
    with ports.reserve() as held:
        port = ports.port_of(held)
        assert _taken_by_another(port)
        with socket.socket() as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen()
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                conn, _ = listener.accept()
                conn.close()


def test_a_fixed_port_lies_outside_the_ephemeral_range() -> None:
    low, high = ports._ephemeral_range()
    for _ in range(20):
        port = ports.unused_fixed_port()
        assert not low <= port <= high
        assert ports.FIXED_LOW <= port <= ports.FIXED_HIGH
        assert not _taken_by_another(port)


def test_any_other_early_exit_raises_with_what_the_server_said(tmp_path: Path) -> None:
    server = ServerProcess("embedded", tmp_path, extra_args=["--routing", "nowhere"])
    try:
        with pytest.raises(ServerStartError, match="invalid choice: 'nowhere'"):
            server.start()
    finally:
        server.stop()
