"""Turning a run directory's raw events into `results.json`, plots and a summary table."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd

from semichat.harness.checker import check, per_message_table
from semichat.harness.checker.log import Level
from semichat.harness.run_record import read_run, resolve_run_dir
from semichat.harness.usage_report import backend_usage

LEVELS: tuple[Level, ...] = ("wire", "user_view")


GAUGES = {"active_polls", "open_streams"}


def server_lives(metrics: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(first, last) `/metrics` of each server process of the run: a crash (the nemesis's
    `crash`) starts a new process whose counters start from zero, so a run's figures are the
    sum over its lives. A life whose last metrics could not be read before the kill is missed."""
    ends = [m for m in metrics.get("crashed", []) if m] + [metrics["after"]]
    starts = [metrics["before"]] + [{} for _ in ends[1:]]
    return list(zip(starts, ends, strict=True))


def _sum_delta(
    lives: list[tuple[dict[str, Any], dict[str, Any]]], section: str, key: str = ""
) -> dict[str, int]:
    total: dict[str, int] = {}
    for start, end in lives:
        first = start.get(section, {}).get(key, {}) if key else start.get(section, {})
        last = end.get(section, {}).get(key, {}) if key else end.get(section, {})
        for k, v in last.items():
            if k not in GAUGES and isinstance(v, int):
                total[k] = total.get(k, 0) + v - int(first.get(k, 0))
    return total


def fault_counts(metrics: dict[str, Any]) -> dict[str, Any]:
    """What the nemesis injected during the run, by kind (`crash` counted by `simulate`), and
    the requests the server refused because SQS refused it, by cause."""
    lives = server_lives(metrics)
    injected = _sum_delta(lives, "faults", "injected")
    if "crashed" in metrics:
        injected["crash"] = len(metrics["crashed"])
    return {
        "spec": metrics["after"].get("faults", {}).get("spec", ""),
        "injected": dict(sorted(injected.items())),
        "refusals": _sum_delta(lives, "refusals"),
    }


def botocore_counts(metrics: dict[str, Any]) -> dict[str, Any]:
    """What botocore did beneath the server during the run (`semichat/aws/wire/counters.py`):
    attempts, retries and the errors that reached the app, each keyed `service.Operation.Code`,
    and the retries and errors summed by code."""
    lives = server_lives(metrics)
    counts: dict[str, Any] = {
        part: {k: n for k, n in sorted(_sum_delta(lives, "botocore", part).items()) if n}
        for part in ("attempts", "retries", "errors")
    }
    for part in ("retries", "errors"):
        by_code: dict[str, int] = {}
        for key, n in counts[part].items():
            code = key.split(".", 2)[-1]
            by_code[code] = by_code.get(code, 0) + n
        counts[f"{part}_by_code"] = dict(sorted(by_code.items()))
    return counts


def sqs_cost(metrics: dict[str, Any], events: pd.DataFrame) -> dict[str, Any]:
    """SQS requests per connected user per minute, from the server's counters.

    Users are those that connected a stream at least once; minutes are the run's span.
    """
    delta = _sum_delta(server_lives(metrics), "sqs")
    minutes = max(1e-9, (metrics["after"]["time"] - metrics["before"]["time"]) / 60)
    users = int(events.loc[events["type"] == "connect", "user"].nunique()) if len(events) else 0
    per_user_minute = delta["requests"] / users / minutes if users else None
    sends = int((events["type"] == "send").sum()) if len(events) else 0
    return {
        "requests": delta,
        "connected_users": users,
        "minutes": round(minutes, 3),
        "per_user_minute": None if per_user_minute is None else round(per_user_minute, 4),
        "per_send": round(delta["requests"] / sends, 2) if sends else None,
        "steady": steady_cost(metrics.get("samples", [])),
    }


def steady_cost(samples: list[dict[str, Any]]) -> dict[str, Any] | None:
    """SQS requests per open stream per minute while the number of open streams held at its
    peak: the cost of holding connections, without the ramp (queue creation) or the drain.

    The window runs from the first to the last sample with at least 99% of the peak."""
    counts = [s["sqs"].get("open_streams", 0) for s in samples]
    if len(samples) < 2 or not max(counts, default=0):
        return None
    floor = 0.99 * max(counts)
    inside = [i for i, c in enumerate(counts) if c >= floor]
    first, last = samples[inside[0]], samples[inside[-1]]
    minutes = (last["time"] - first["time"]) / 60
    if minutes <= 0:
        return None
    streams = sum(counts[i] for i in inside) / len(inside)
    requests = last["sqs"]["requests"] - first["sqs"]["requests"]
    return {
        "open_streams": round(streams, 1),
        "minutes": round(minutes, 3),
        "requests": requests,
        "per_stream_minute": round(requests / streams / minutes, 4),
    }


def locust_summary(run_dir: Path) -> dict[str, Any]:
    """Locust's own aggregate row: only a cross-check, its CSV can miss the run's end."""
    path = run_dir / "locust_stats.csv"
    if not path.exists():
        return {}
    with path.open() as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    keep = ("Request Count", "Failure Count", "Median Response Time", "95%")
    return {name: {k: row.get(k) for k in keep} for name, row in rows.items()}


def write_report(run_dir: Path, drop_truncated: bool = False) -> dict[str, Any]:
    """Judge a finished run directory (or its parent's `latest`); write `results.json` and the
    plots into it."""
    run_dir = resolve_run_dir(run_dir)
    events, results = load_run(run_dir, drop_truncated)
    results["locust"] = locust_summary(run_dir)
    (run_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_plots(run_dir, events, results["run"]["grace_s"])
    return results


def write_plots(run_dir: Path, events: pd.DataFrame, grace_s: float) -> list[Path]:
    from semichat.harness.plots import deliveries_over_time, latency_distribution

    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    tables = {lv: per_message_table(events, grace_s=grace_s, level=lv) for lv in LEVELS}
    return [
        latency_distribution({str(lv): t for lv, t in tables.items()}, plots / "latency.png"),
        deliveries_over_time(events, plots / "deliveries.png"),
    ]


def summary_table(results: dict[str, Any]) -> str:
    """A fixed-width table of the figures a reader looks at first."""
    rows = [
        ("sent", "sent"),
        ("expected", "expected"),
        ("delivered", "delivered"),
        ("lost", "lost"),
        ("late", "late"),
        ("duplicated", "duplicated"),
        ("reordered", "reordered"),
        ("unexpected", "unexpected"),
    ]
    lines = [f"{'':14}{'wire':>12}{'user view':>12}"]
    # The units differ: pairs are (message, user) on the wire, (message, client) in the view.
    lines.append(f"{'unit':14}{'user':>12}{'client':>12}")
    for label, key in rows:
        lines.append(f"{label:14}" + "".join(f"{results[lv].get(key, 0):>12}" for lv in LEVELS))
    for q in ("p50", "p95", "p99", "max"):
        cells = []
        for lv in LEVELS:
            value = results[lv]["latency_ms"].get(q)
            cells.append(f"{'-' if value is None else f'{value:.0f} ms':>12}")
        lines.append(f"{'latency ' + q:14}" + "".join(cells))
    sends = results.get("sends", {})
    lines.append(
        f"sends: {sends.get('attempted', 0)} attempted, {sends.get('ok', 0)} ok, "
        f"{sends.get('failed', 0)} failed, {sends.get('unknown', 0)} unknown"
    )
    clients = results["user_view"].get("clients")
    if clients is not None:
        lines.append(f"clients (tabs) in the user view: {clients}")
    faults = results.get("faults") or {}
    if faults.get("spec") or faults.get("injected"):
        injected = ", ".join(f"{k} {v}" for k, v in faults["injected"].items()) or "nothing"
        lines.append(f"faults injected ({faults['spec'] or 'crash only'}): {injected}")
    botocore = results.get("botocore") or {}
    for part in ("retries", "errors"):
        by_code = botocore.get(f"{part}_by_code")
        if by_code:
            said = ", ".join(f"{k} {v}" for k, v in by_code.items())
            lines.append(
                f"botocore {part} by code{' (reached the app)' * (part == 'errors')}: {said}"
            )
    cost = results.get("sqs_requests_per_user_minute")
    if cost is not None:
        lines.append(f"SQS requests per connected user per minute: {cost}")
    sqs = results.get("sqs") or {}
    if sqs.get("per_send") is not None:
        lines.append(f"SQS requests per send (idle polling included): {sqs['per_send']}")
    steady = sqs.get("steady")
    if steady:
        lines.append(
            f"steady window: {steady['per_stream_minute']} SQS requests per open stream per "
            f"minute ({steady['open_streams']:.0f} streams, {steady['minutes'] * 60:.0f} s)"
        )
    params = results.get("params") or {}
    if params.get("routing"):
        lines.append(f"routing: {params['routing']}")
    if results.get("provisioning"):
        p = results["provisioning"]
        lines.append(f"provisioned ahead: {p['users']} users' queues in {p['seconds']} s")
    return "\n".join(lines)


def load_run(
    run_dir: str | Path, drop_truncated: bool = False
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A run's raw events, and its results judged from them (by `semichat check` and
    `simulate`, and by notebooks, which judge afresh rather than trust `results.json`: they
    show what the current checker says of the recorded history). Raises RunRecordError on a
    record that cannot be judged (`run_record.py`)."""
    record = read_run(run_dir, drop_truncated)
    path, events = record.run_dir, record.events
    results = check(events, grace_s=record.grace_s)
    results["params"] = record.params
    if record.dropped_truncated:
        results["dropped_truncated_lines"] = record.dropped_truncated
    metrics_path = path / "server_metrics.json"
    if metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
        results["sqs"] = sqs_cost(metrics, events)
        results["sqs_requests_per_user_minute"] = results["sqs"]["per_user_minute"]
        # The server's own account of what was done to it, beside (never inside) the checker's
        # verdict from the clients' records.
        results["faults"] = fault_counts(metrics)
        usage = backend_usage(server_lives(metrics))
        if usage is not None:
            usage["emulators"] = emulator_usage(path)
            results["backend"] = usage
        results["botocore"] = botocore_counts(metrics)
    provisioning = path / "provisioning.json"
    if provisioning.exists():
        results["provisioning"] = json.loads(provisioning.read_text())
    return events, results


def emulator_usage(run_dir: Path) -> list[dict[str, float]]:
    """Each emulator process's CPU seconds, run-queue wait and turns over the run (recorded by
    `simulate`): their share of a core, the capacity model's next input (docs/capacity.md)."""
    path = run_dir / "emulator_schedstats.json"
    if not path.is_file():
        return []
    doc = json.loads(path.read_text())
    out = []
    for start, end in zip(doc.get("before", []), doc.get("after", []), strict=False):
        if start and end:
            out.append({k: round(end[k] - start.get(k, 0), 3) for k in end})
    return out


def results_frame(results: dict[str, Any]) -> pd.DataFrame:
    """The two levels side by side, one row per figure."""
    rows = {}
    for level in LEVELS:
        r = results[level]
        flat = {k: v for k, v in r.items() if not isinstance(v, dict | list)}
        flat.update({f"latency {k} (ms)": v for k, v in r["latency_ms"].items()})
        rows[level] = flat
    return pd.DataFrame(rows)
