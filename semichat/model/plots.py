"""Cost, latency and servers against users, one line per strategy, each first limit marked."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

PANELS = (
    ("dollars", "dollars a month"),
    ("view_p99", "user-view p99 (ms)"),
    ("processes", "server processes"),
)


def capacity_plot(table: pd.DataFrame) -> Figure:
    fig, axes = plt.subplots(1, len(PANELS), figsize=(15, 4.2))
    for ax, (column, label) in zip(axes, PANELS, strict=True):
        for routing, rows in table.groupby("routing"):
            line = ax.plot(rows["users"], rows[column], marker="o", label=str(routing))[0]
            at = rows["first_limit_users"].dropna()
            if len(at):
                ax.axvline(float(at.iloc[0]), color=line.get_color(), linestyle=":", alpha=0.7)
        ax.set_xscale("log")
        if column != "view_p99":
            ax.set_yscale("log")
        ax.set_xlabel("users connected at once")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("dotted: the first documented limit each strategy meets")
    fig.tight_layout()
    return fig
