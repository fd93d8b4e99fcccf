"""Plots of a run, written as PNG files (matplotlib's Agg backend, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

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
    return save_figure(fig, ax, "Delivery latency", "lower right", path)


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
    return save_figure(fig, ax, "Deliveries over time", "upper right", path)


def subplots(figsize: tuple[float, float] = (7, 4)) -> tuple[Figure, Axes]:
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def save_figure(fig: Figure, ax: Axes, title: str, legend_at: str | None, path: Path) -> Path:
    """Finish a figure the one way (grid, legend, title, layout) and write it as PNG."""
    ax.grid(True, alpha=0.3)
    if legend_at and ax.get_legend_handles_labels()[0]:
        ax.legend(loc=legend_at)  # type: ignore[call-overload]
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
