"""The server a simulation starts: a port taken before the server binds it costs another port,
not the run; any other early exit says what the server said."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from semichat.harness.server_process import ServerProcess, ServerStartError, get_json


def test_a_first_start_on_a_taken_port_moves_to_a_free_one(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = ServerProcess("embedded", tmp_path)
        server.port = taken.getsockname()[1]  # as if another process took it meanwhile
        try:
            server.start()
            assert server.port != taken.getsockname()[1]
            assert server.target == f"http://127.0.0.1:{server.port}"
            assert get_json(f"{server.target}/healthz")
            assert server.lives == 1
        finally:
            server.stop()
    assert "address already in use" in (tmp_path / "server.log").read_text()


def test_any_other_early_exit_raises_with_what_the_server_said(tmp_path: Path) -> None:
    server = ServerProcess("embedded", tmp_path, extra_args=["--routing", "nowhere"])
    with pytest.raises(ServerStartError, match="invalid choice: 'nowhere'"):
        server.start()
