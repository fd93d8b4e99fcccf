# ---
# jupyter:
#   jupytext:
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
# # Delivery behaviour of one run
#
# What simulated users saw in one `semichat simulate` run, judged from what the clients recorded
# (never from the server): at the **wire** (raw SSE notifications) and in the **user view** (after
# de-duplication and history refetch). Set `run_dir` to any run directory, e.g.
# `runs/chat/latest`.

# %% tags=["parameters"]
run_dir = "../tests/data/runs/chat-small"

# %%
# %matplotlib inline
from pathlib import Path

from semichat.harness.checker import per_message_table
from semichat.harness.plots import deliveries_over_time, latency_distribution
from semichat.harness.report import load_run, results_frame, summary_table

events, results = load_run(run_dir)
print(summary_table(results))

# %% [markdown]
# ## Both levels side by side

# %%
results_frame(results)

# %% [markdown]
# ## Latency and deliveries over time

# %%
from IPython.display import Image, display

out = Path(run_dir) / "plots"
out.mkdir(exist_ok=True)
tables = {level: per_message_table(events, level=level) for level in ("wire", "user_view")}
display(Image(filename=latency_distribution(tables, out / "latency.png")))
display(Image(filename=deliveries_over_time(events, out / "deliveries.png")))

# %% [markdown]
# ## Pairs that were lost, duplicated or reordered at the wire

# %%
wire = tables["wire"]
wire[wire["lost"] | (wire["deliveries"] > 1) | wire["reordered"]].head(20)

# %% [markdown]
# ## Cost: SQS requests

# %%
results.get("sqs", {})
