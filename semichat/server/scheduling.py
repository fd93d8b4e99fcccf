"""How long this process waited for a core: Linux's scheduler statistics.

`/proc/self/task/<tid>/schedstat` holds, per thread, the nanoseconds spent on a CPU, the
nanoseconds spent runnable but waiting in a run queue, and the time slices run (the kernel's
Documentation/scheduler/sched-stats.rst). Their sum over the threads says what share of a core
the process got while it had work: CPU / (CPU + waiting), which the capacity model takes as an
input (`semichat/model/cpu.py`). On a system without them, None.
"""

from __future__ import annotations

from pathlib import Path

TASKS = Path("/proc/self/task")


def run_queue() -> tuple[float, int] | None:
    """Seconds this process's threads have waited runnable for a core, and the turns they got
    on one (time slices), or None if unknown."""
    waited = turns = 0
    try:
        for task in TASKS.iterdir():
            try:
                fields = (task / "schedstat").read_text().split()
            except OSError:
                continue  # a thread that ended meanwhile
            waited += int(fields[1])
            turns += int(fields[2])
    except (OSError, ValueError, IndexError):
        return None
    return round(waited / 1e9, 3), turns
