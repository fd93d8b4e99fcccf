"""The suite's children can be interrupted, however the suite was started (tests/conftest.py)."""

from __future__ import annotations

import signal
import subprocess
import sys


def _ignored_signals(pid_status: str) -> int:
    line = next(x for x in pid_status.splitlines() if x.startswith("SigIgn:"))
    return int(line.split()[1], 16)


def test_a_child_of_the_suite_does_not_ignore_sigint() -> None:
    status = subprocess.run(
        [sys.executable, "-c", "print(open('/proc/self/status').read())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert not _ignored_signals(status) & (1 << (signal.SIGINT - 1))


def test_a_suite_started_in_the_background_still_runs_children_that_heed_sigint() -> None:
    # A non-interactive shell starts background jobs with SIGINT ignored; the suite's own
    # configuration undoes that for what it starts.
    script = (
        "import signal, subprocess, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "from tests.conftest import pytest_configure\n"
        "pytest_configure(None)\n"
        "print(subprocess.run([sys.executable, '-c', \"print(open('/proc/self/status').read())\"],"
        " capture_output=True, text=True).stdout)\n"
    )
    status = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert not _ignored_signals(status) & (1 << (signal.SIGINT - 1))
