"""A measured run kept small for validation: what `semichat model --validate` reads of it.

`keep(run_dir, dest)` writes `results.json` trimmed to the parameters, the sends, the latency
quantiles and the backend's counts (the per-message tables and Locust's rows dropped), and
`client_percentiles.json` (sends' and history reads' client times, and latency after the
warm-up, `steady.py`): a few kilobytes instead of
the run's events, so the capacity notebook and the tests validate against committed runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from semichat.model.opens import kept_record as opens_record
from semichat.model.overheads import CLIENT_FILE, client_percentiles
from semichat.model.steady import kept_record, warmup_s
from semichat.model.validation import read_results, run_inputs

KEPT = ("params", "sends", "backend", "sqs_requests_per_user_minute")


def keep(run_dir: str | Path, dest: str | Path) -> Path:
    path, results = read_results(run_dir)
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    trimmed = {k: results[k] for k in KEPT if k in results}
    for level in ("wire", "user_view"):
        trimmed[level] = {"latency_ms": results[level]["latency_ms"]}
    (out / "results.json").write_text(json.dumps(trimmed, indent=1) + "\n")
    activity, _, window = run_inputs(results)
    client = client_percentiles(path)
    client["opens"] = opens_record(path)
    if activity.chatting:
        client["steady"] = kept_record(path, warmup_s(window.spawn_s, activity.send_interval_s))
    (out / CLIENT_FILE).write_text(json.dumps(client) + "\n")
    return out
