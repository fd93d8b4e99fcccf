"""`semichat check RUN_DIR`: judge any recorded run and print its delivery table.

The same verdict ends `semichat simulate`: the table, the run directory, and exit status 1 when a
message never reached an open tab's view (2 when the record cannot be judged).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from semichat.harness.report import summary_table, write_report
from semichat.harness.run_record import RunRecordError, resolve_run_dir


def verdict(run_dir: Path, results: dict[str, Any]) -> int:
    """Print the delivery table of judged results; 0 when nothing was lost in the user view."""
    print(summary_table(results))
    if results.get("dropped_truncated_lines"):
        print(f"dropped {results['dropped_truncated_lines']} truncated last line(s)")
    print(f"run directory: {run_dir}")
    lost = results["user_view"]["lost"]
    if lost:
        print(f"FAIL: {lost} (message, tab) pair(s) never reached an open tab's view")
        return 1
    return 0


def check_run(path: str | Path, drop_truncated: bool = False) -> int:
    """Judge the run at `path`, write `results.json` and the plots there, print the verdict."""
    try:
        run_dir = resolve_run_dir(path)
        results = write_report(run_dir, drop_truncated)
    except RunRecordError as exc:
        print(f"semichat check: {exc}", file=sys.stderr)
        return 2
    return verdict(run_dir, results)
