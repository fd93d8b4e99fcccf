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
# # What each strategy costs a month
#
# Requests and dollars for 1k to 1M users, from request rates **measured** in sweeps: SQS
# requests per idle connected user-minute (an `idle` sweep) and per message (a `chat` sweep,
# net of the idle polling during it). Activity and prices are parameters; the prices' sources
# and dates are in `semichat.harness.cost.Prices`. DynamoDB units per message follow the
# server's code path (`semichat.harness.cost.DYNAMODB_UNITS`: the history read strongly
# consistent, 1 unit, as `store.history` reads it), checked against the units a run's server
# counted (`results.json` `backend`; docs/capacity.md). The capacity notebook models the same
# activity per strategy instead of multiplying rates.

# %% tags=["parameters"]
idle_sweep = "../benchmarks/results/sweeps/idle"
chat_sweep = "../benchmarks/results/sweeps/strategies"
messages_per_user_day = 50.0
connected_hours_per_day = 8.0
recipients_per_message = 3.0
users = [1_000, 10_000, 100_000, 1_000_000]

# %%
import pandas as pd
from IPython.display import display

from semichat.harness.cost import Activity, Prices, measured_rates, monthly_cost
from semichat.harness.sweep import summarise

rates = measured_rates(summarise(idle_sweep), summarise(chat_sweep))
rates

# %%
activity = Activity(messages_per_user_day, connected_hours_per_day, recipients_per_message)
costs = monthly_cost(rates, users, activity, Prices())
pd.options.display.float_format = "{:,.2f}".format
display(costs.pivot(index="users", columns="routing", values="dollars"))

# %%
costs.pivot(index="users", columns="routing", values="sqs_requests")
