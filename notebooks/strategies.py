# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Delivery strategies side by side
#
# Every strategy under the same load, with and without injected faults, repeated: what users
# saw (the **user view**), what the wire suffered, latency with its spread over repeats, and
# what SQS was asked. Set `sweep_dir` to a directory written by `semichat sweep`. The
# conclusion at the end is written from the numbers, so it changes when they do.

# %% tags=["parameters"]
sweep_dir = "../benchmarks/results/sweeps/strategies"

# %%
# %matplotlib inline
from pathlib import Path

from IPython.display import Image, Markdown, display

from semichat.harness.comparison import (
    COST,
    LATENCY,
    conclusion,
    integrity,
    latency_plot,
    spread,
)
from semichat.harness.sweep import print_table, summarise

summary = summarise(sweep_dir)
print(print_table(summary))

# %% [markdown]
# ## Integrity: the user view, then the wire
# Counts are summed over the repeats of each cell; `failed` counts runs that did not finish.

# %%
integrity(summary)

# %% [markdown]
# ## Latency, median over repeats with min and max

# %%
spread(summary, LATENCY)

# %%
plots = Path(sweep_dir) / "plots"
plots.mkdir(exist_ok=True)
display(Image(filename=latency_plot(summary, plots / "view_p99.png")))

# %% [markdown]
# ## Cost: SQS requests per message and per connected user-minute

# %%
spread(summary, COST)

# %% [markdown]
# ## What the numbers say

# %%
display(Markdown(conclusion(summary)))
