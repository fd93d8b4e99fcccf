"""Locust's web UI under `semichat simulate --web`, driven in Chromium: the user starts a run in
the form, and the Delivery tab shows the checker's figures for the run so far, updating as it
goes; Ctrl-C then judges the run. Everything listens on 127.0.0.1; every wait is bounded."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from semichat import ports

from .process_dump import wait_or_explain
from .test_browser import ARTIFACTS, UI_TIMEOUT_MS, browser, http_ok, wait_until

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared with the widget's tests

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 180.0
FIGURES_TIMEOUT_MS = 90_000


class WebSimulation:
    """`semichat simulate --web` as a user starts it, in its own process group."""

    def __init__(self, out: Path) -> None:
        self.port = ports.unused_fixed_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = ARTIFACTS / "logs" / f"simulate-web-{self.port}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        args = ["simulate", "--web", "--web-port", str(self.port), "--users", "4"]
        args += ["--out", str(out)]
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "semichat", *args],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"simulate --web exited:\n{self.log.read_text()[-2000:]}")
            return http_ok(self.url)

        wait_until(up, STARTUP_TIMEOUT_S, "Locust's web UI")

    def interrupt(self) -> int:
        """Ctrl-C in its terminal, as a user ends the session: SIGINT to the whole process
        group (simulate, Locust, the server and its backend); its exit status."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return wait_or_explain(self.proc, 180, "simulate --web after Ctrl-C", self.log)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture
def web_simulation(tmp_path: Path) -> Iterator[WebSimulation]:
    sim = WebSimulation(tmp_path / "runs")
    try:
        sim.wait_ready()
        yield sim
    finally:
        sim.kill()


def _cell(page, figure: str, column: int) -> int:
    row = page.get_by_role("row", name=re.compile(rf"^{re.escape(figure)}\b"))
    text = row.get_by_role("cell").nth(column).inner_text().strip()
    return int(text) if text.isdigit() else -1


def test_the_delivery_tab_shows_the_run_so_far_and_updates(
    browser, web_simulation: WebSimulation, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(web_simulation.url)
    page.get_by_role("button", name="Start").click()
    page.get_by_role("tab", name="Delivery").click()
    expect(page.get_by_role("columnheader", name="Wire (per user)")).to_be_visible()

    # The figures appear ...
    page.wait_for_function(
        """() => [...document.querySelectorAll('tr')].some(r =>
               r.cells.length > 2 && r.cells[0].innerText.trim() === 'delivered' &&
               parseInt(r.cells[1].innerText) > 0)""",
        timeout=FIGURES_TIMEOUT_MS,
    )
    first = _cell(page, "sent", 1)
    assert first > 0
    # ... and update while the run goes on.
    page.wait_for_function(
        f"""() => [...document.querySelectorAll('tr')].some(r =>
               r.cells.length > 2 && r.cells[0].innerText.trim() === 'sent' &&
               parseInt(r.cells[1].innerText) > {first})""",
        timeout=FIGURES_TIMEOUT_MS,
    )
    # Locust's own statistics carry the latencies as entries of their own.
    page.get_by_role("tab", name="Statistics").click()
    expect(page.get_by_role("row", name=re.compile(r"^WIRE notification"))).to_be_visible(
        timeout=UI_TIMEOUT_MS
    )
    page.close()

    assert web_simulation.interrupt() == 0, web_simulation.log.read_text()[-2000:]
    out = web_simulation.log.read_text()
    assert "latency p50" in out and "run directory:" in out
    assert list((tmp_path / "runs" / "chat").glob("*/results.json"))
