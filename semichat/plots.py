"""Plots of a run, written as PNG files (matplotlib's Agg backend, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

LEVEL_LABELS = {"wire": "wire (SSE notification)", "user_view": "user view (after refetch)"}


def latency_distribution(tables: dict[str, pd.DataFrame], path: Path) -> Path:
    """Empirical CDF of send-to-receipt latency, one line per level."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for level, table in tables.items():
        values = np.sort(table.loc[table["expected"], "latency_ms"].dropna().to_numpy())
        if len(values):
            ax.step(
                values,
                np.arange(1, len(values) + 1) / len(values),
                where="post",
                label=f"{LEVEL_LABELS[level]} (n={len(values)})",
            )
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("latency from send to receipt (ms)")
    ax.set_ylabel("fraction of deliveries")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("Delivery latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def deliveries_over_time(events: pd.DataFrame, path: Path) -> Path:
    """Sends, wire notifications and view updates per second across the run."""
    fig, ax = plt.subplots(figsize=(7, 4))
    if len(events):
        start = events["t"].min()
        for kind, label in (
            ("send", "sends"),
            ("notification", "notifications"),
            ("view", "messages shown"),
            ("disconnect", "disconnects"),
        ):
            times = events.loc[events["type"] == kind, "t"] - start
            if len(times):
                counts = times.astype(int).value_counts().sort_index()
                ax.plot(counts.index, counts.to_numpy(), label=label, drawstyle="steps-mid")
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("events per second")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    ax.set_title("Deliveries over time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
