"""A command that starts processes stops them when it is stopped with SIGTERM, as with Ctrl-C
(`semichat.processes.unwind_on_sigterm`: `semichat` itself and the benchmarks)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

from .test_processes import alive

_COMMAND = """
import subprocess, sys, time
from semichat.processes import unwind_on_sigterm
if sys.argv[1] == "unwind":
    unwind_on_sigterm()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
try:
    print(child.pid, flush=True)  # inside: a SIGTERM from now on must reach the `finally`
    time.sleep(120)
finally:
    child.terminate()
    child.wait()
"""


def _stopped(mode: str) -> tuple[int, int]:
    """(the command's exit status, its child's pid) once the command is gone."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _COMMAND, mode], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    proc.send_signal(signal.SIGTERM)
    return proc.wait(30), child


def test_a_command_stopped_with_sigterm_stops_what_it_started() -> None:
    status, child = _stopped("unwind")
    assert status == 128 + signal.SIGTERM
    assert not alive(child)


def test_without_it_the_child_outlives_the_command() -> None:
    """The control: Python's default for SIGTERM skips `finally`, so the child runs on."""
    status, child = _stopped("default")
    try:
        assert status == -signal.SIGTERM
        assert alive(child)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
