"""How long a process waited for a core: Linux's scheduler statistics.

`/proc/<pid>/task/<tid>/schedstat` holds, per thread, the nanoseconds spent on a CPU, the
nanoseconds spent runnable but waiting in a run queue, and the time slices run (the kernel's
Documentation/scheduler/sched-stats.rst). Their sum over the threads says what share of a core
the process got while it had work: CPU / (CPU + waiting), which the capacity model takes as an
input (`semichat/model/cpu.py`). The server reports its own in `/metrics`; a simulation records
its emulators' (`harness/simulate.py`). On a system without them, None.
"""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def schedstat(pid: int | str = "self") -> dict[str, float] | None:
    """A process's CPU seconds, seconds waiting runnable for a core and turns on one (time
    slices), summed over its threads; None if unknown (not Linux, or the process is gone)."""
    on_cpu = waited = turns = 0
    try:
        for task in (PROC / str(pid) / "task").iterdir():
            try:
                fields = (task / "schedstat").read_text().split()
            except OSError:
                continue  # a thread that ended meanwhile
            on_cpu += int(fields[0])
            waited += int(fields[1])
            turns += int(fields[2])
    except (OSError, ValueError, IndexError):
        return None
    return {
        "cpu_s": round(on_cpu / 1e9, 3),
        "cpu_wait_s": round(waited / 1e9, 3),
        "cpu_turns": turns,
    }


def run_queue() -> tuple[float, int] | None:
    """Seconds this process's threads have waited runnable for a core, and the turns they got
    on one, or None if unknown."""
    got = schedstat()
    return None if got is None else (got["cpu_wait_s"], int(got["cpu_turns"]))
