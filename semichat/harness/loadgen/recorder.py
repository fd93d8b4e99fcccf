"""Client-side event recording: one JSON-lines file per process, appended as things happen.

Nothing is shared through memory, so the record is the same whether Locust runs one process,
several, or a master with workers: the checker reads every file in the run's `events/`. Workers
on other machines (`semichat worker`) keep lines in memory instead and ship them to the master,
which writes them there (`shipping.py`).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any


class Recorder:
    def __init__(self, directory: str | Path) -> None:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.path = path / f"{socket.gethostname()}-{os.getpid()}.jsonl"
        # Line-buffered: a crashed or killed process still leaves every finished line on disk.
        self._file = self.path.open("a", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()

    def record(self, type_: str, **fields: Any) -> dict[str, Any]:
        event = {"type": type_, "t": fields.pop("t", None) or time.time(), **fields}
        self.write(json.dumps(event, separators=(",", ":")))
        return event

    def write(self, line: str) -> None:
        """Keep one event's JSON line (here: append it to this process's file)."""
        with self._lock:
            self._file.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            self._file.close()
