"""Waiting for a process to exit, and saying why when it does not: a test that times out on a
child process shows where the child (and its children) stood, from py-spy, instead of only
`TimeoutExpired`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

DUMP_TIMEOUT_S = 30


def stacks(pid: int) -> str:
    """py-spy's dump of `pid` and of each of its descendants (their Python stacks)."""
    try:
        family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return f"pid {pid} is gone"
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    parts = []
    for proc in family:
        try:
            cmd = " ".join(proc.cmdline())[:200]
        except psutil.Error:
            continue
        try:
            dump = subprocess.run(
                [py_spy, "dump", "--pid", str(proc.pid)],
                capture_output=True,
                text=True,
                timeout=DUMP_TIMEOUT_S,
            )
            text = dump.stdout or dump.stderr
        except (OSError, subprocess.TimeoutExpired) as exc:
            text = f"(py-spy: {exc})"
        parts.append(f"--- pid {proc.pid}: {cmd}\n{text}")
    return "\n".join(parts)


def wait_or_explain(
    proc: subprocess.Popen[Any], timeout: float, what: str, log: Path | None = None
) -> int:
    """`proc.wait(timeout)`; past it, fail with the stacks of `proc`'s family and the tail of
    `log` (the caller still stops the process)."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
        raise AssertionError(
            f"{what}: still running after {timeout:.0f} s\n{stacks(proc.pid)}\n--- log tail\n{tail}"
        ) from None
