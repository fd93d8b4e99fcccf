"""`semichat worker`: a Locust worker for a master started by `semichat simulate
--expect-workers N`, on this machine or another.

It needs no run directory and no shared files: the scenario comes from the master (Locust's
`-f -`) unless `--scenario` names one shipped in this package, the run's settings arrive with
the master's spawn message, and the recorded events go back to the master
(`loadgen/shipping.py`). Locust numbers its workers, and user ids carry that number, so they
stay unique across workers.
"""

from __future__ import annotations

import subprocess
import sys

from semichat.harness.scenarios import scenario_file


def worker_command(master_host: str, master_port: int, scenario: str | None) -> list[str]:
    locustfile = str(scenario_file(scenario)) if scenario else "-"
    return [
        *[sys.executable, "-m", "locust", "-f", locustfile, "--worker"],
        *["--master-host", master_host, "--master-port", str(master_port)],
        *["--loglevel", "WARNING"],
    ]


def run_worker(master_host: str, master_port: int, scenario: str | None) -> int:
    """Run until the master ends the run (or Locust gives up connecting to it)."""
    # Locust is a process of its own: importing it monkey-patches everything with gevent.
    proc = subprocess.Popen(worker_command(master_host, master_port, scenario))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait(15)
