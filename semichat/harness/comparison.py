"""Strategies side by side: a sweep's runs grouped by cell, with their spread, and the
conclusion the numbers support, written from the numbers themselves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from semichat.harness.plots import save_figure, subplots

CELL = ["routing", "faults", "users"]
INTEGRITY = ["view_lost", "view_duplicated", "view_reordered"]
WIRE = ["wire_lost", "wire_duplicated", "wire_reordered", "wire_late"]
LATENCY = ["view_p50_ms", "view_p99_ms", "wire_p50_ms", "wire_p99_ms"]
COST = ["sqs_per_message", "sqs_per_user_minute", "queues_created"]


def judged(summary: pd.DataFrame) -> pd.DataFrame:
    return summary[summary["judged"].astype(bool)] if "judged" in summary else summary


def spread(summary: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Per cell: median, min and max of each column over the repeats, and how many runs."""
    present = [c for c in columns if c in summary]
    return judged(summary).groupby(CELL)[present].agg(["median", "min", "max", "count"])


def integrity(summary: pd.DataFrame) -> pd.DataFrame:
    """Per cell: runs, failed runs, and the user view's and the wire's anomalies summed."""
    runs = summary.groupby(CELL).agg(
        runs=("cell", "count"), failed=("ok", lambda s: int((~s).sum()))
    )
    counts = judged(summary).groupby(CELL)[[c for c in INTEGRITY + WIRE if c in summary]].sum()
    return runs.join(counts)


def latency_plot(summary: pd.DataFrame, path: Path, column: str = "view_p99_ms") -> Path:
    """One bar per cell at the median over repeats, whiskers from min to max."""
    s = spread(summary, [column])[column]
    fig, ax = subplots()
    labels = [" / ".join(str(x) for x in idx) for idx in s.index]
    err = [s["median"] - s["min"], s["max"] - s["median"]]
    ax.bar(labels, s["median"], yerr=err, capsize=4)
    ax.set_ylabel("ms")
    ax.tick_params(axis="x", rotation=30)
    title = f"{column}: median over repeats, whiskers min to max"
    return save_figure(fig, ax, title, None, path)


def conclusion(summary: pd.DataFrame) -> str:
    """What the numbers say, each claim quoting its figures."""
    j = judged(summary)
    if j.empty:
        return "No run was judged: there is nothing to conclude."
    lines = []
    whole = j.groupby("routing")[INTEGRITY].sum().sum(axis=1)
    for routing, bad in whole.items():
        runs = int((j["routing"] == routing).sum())
        verdict = "kept the user view whole" if bad == 0 else f"showed {int(bad)} view anomalies"
        lines.append(f"- `{routing}` {verdict} over {runs} run(s).")
    faulty = j[j["faults"] != "none"]
    if not faulty.empty:
        dup = int(faulty["wire_duplicated"].sum())
        reo = int(faulty["wire_reordered"].sum())
        lines.append(
            f"- With faults injected the wire showed {dup} duplicated and {reo} reordered "
            "pairs in all; the figures above say how much of that reached the user view."
        )
    p99 = j.groupby("routing")["view_p99_ms"].median().dropna().sort_values()
    if len(p99):
        best, worst = p99.index[0], p99.index[-1]
        lines.append(
            f"- Median user-view p99: lowest `{best}` at {p99.iloc[0]:.0f} ms, highest "
            f"`{worst}` at {p99.iloc[-1]:.0f} ms."
        )
    cost = j.groupby("routing")["sqs_per_user_minute"].median().dropna().sort_values()
    if len(cost):
        lines.append(
            "- SQS requests per connected user per minute (median): "
            + ", ".join(f"`{r}` {v:.2f}" for r, v in cost.items())
            + "."
        )
    return "\n".join(lines)
