"""The chat server a simulation starts: its own process, over a backend that outlives it.

The embedded backend runs apart (`semichat backend`), so that the nemesis's `crash` can kill the
server with SIGKILL and start it again on the same port over the same tables and queues, as a
deploy or an out-of-memory kill does to a real one.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from semichat import ports, processes
from semichat.harness.server_metrics import fleet_metrics, get_json

SERVER_START_TIMEOUT_S = 90.0


class ServerStartError(Exception):
    """The server did not come up healthy."""


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGINT (Locust and the server stop cleanly on it), then as `processes.stop` does."""
    processes.stop(proc, timeout, signal.SIGINT)


class ServerProcess:
    """`semichat serve` on a fixed port; `crash()` kills it outright and starts it again."""

    def __init__(
        self,
        backend: str,
        run_dir: Path,
        faults: str = "",
        endpoint_url: str | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.backend = backend
        self.extra_args = extra_args or []
        self.run_dir = run_dir
        self.faults = faults
        self.endpoint_url = endpoint_url
        # Held from here to stop(): the server binds beside it (`--reuse-port`), and no other
        # process can take the port before it does, nor while a crashed server comes back.
        self._reservation = ports.reserve("127.0.0.1")
        self.port = ports.port_of(self._reservation)
        self.proc: subprocess.Popen[bytes] | None = None
        self.lives = 0
        # How many processes serve the port (`--processes N` in extra_args): /metrics is summed.
        self.processes = 1
        # The last /metrics of each server life that ended in a crash: its counters die with it.
        self.crashed_metrics: list[Any] = []

    @property
    def target(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = processes.semichat_command("serve", "--port", str(self.port), "--reuse-port")
        # The simulated users say who they are with x-user-id: demo identity, on loopback.
        cmd += ["--backend", self.backend, "--auth", "demo", *self.extra_args]
        if self.endpoint_url:
            cmd += ["--endpoint-url", self.endpoint_url]
        if self.faults:
            cmd += ["--faults", self.faults]
        return cmd

    def start(self) -> None:
        """Start the server and wait until it answers `/healthz`; a restart (`crash`) keeps
        its port, where its clients reconnect."""
        self.lives += 1
        said = self._launch()
        if said is not None:
            tail = said.strip().splitlines()[-3:]
            raise ServerStartError(f"server exited early: {' | '.join(tail)}")

    def _launch(self) -> str | None:
        """Runs `semichat serve` until healthy (None) or until it exits (what it wrote)."""
        path = self.run_dir / "server.log"
        with path.open("ab") as log:
            start = log.tell()
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                with path.open("rb") as log:
                    log.seek(start)
                    return log.read().decode(errors="replace")
            try:
                get_json(f"{self.target}/healthz", timeout=1)
                return None
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise ServerStartError(f"server not healthy after {SERVER_START_TIMEOUT_S} s")

    def crash(self) -> float:
        """SIGKILL the server, then start it again; returns how long it was away (s)."""
        assert self.proc is not None
        try:
            self.crashed_metrics.append(fleet_metrics(self.target, self.processes))
        except (OSError, ValueError, KeyError):
            self.crashed_metrics.append(None)
        killed = time.monotonic()
        self.proc.kill()
        self.proc.wait(10)
        self.start()
        return time.monotonic() - killed

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        self._reservation.close()
