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
# # Capacity: each strategy from 1k to 1M users
#
# A discrete-event model (SimPy) of each strategy's delivery path simulates one server
# process's share of the users and scales it (`semichat.model`, docs/capacity.md says how).
# First, how far it can be trusted: the model of each committed measured run beside what that
# run counted. Then requests, servers, latency and cost against users, with the first
# documented limit each strategy meets marked, and the managed alternatives priced beside.

# %% tags=["parameters"]
validation_dir = "../benchmarks/results/capacity"
profile_path = "../semichat/model/profiles/embedded.json"
users = [1_000, 10_000, 100_000, 1_000_000]
messages_per_user_day = 50.0
connected_hours_per_day = 8.0
conversation_size = 3
tabs = 1

# %%
# %matplotlib inline
from pathlib import Path

import pandas as pd
from IPython.display import display

from semichat.model.inputs import Activity
from semichat.model.plots import capacity_plot
from semichat.model.profile import load_profile
from semichat.model.tables import estimates, first_limits, frame, validation_frame

pd.options.display.float_format = "{:,.2f}".format

# %% [markdown]
# ## Validation: model | measured | ratio, per committed run
# Runs of the `chat` scenario on the embedded backend (`semichat simulate`, kept small by
# `semichat.model.records.keep`); each modelled with that run's own per-operation latency.

# %%
runs = sorted(p for p in Path(validation_dir).iterdir() if (p / "results.json").is_file())
validation = validation_frame(runs)
keep = [
    "sends",
    "sqs:SendMessage",
    "sqs:ReceiveMessage.messages",
    "dynamodb:TransactWriteItems",
    "dynamodb:Query",
    "dynamodb:BatchWriteItem",
    "dynamodb read units",
    "dynamodb write units",
    "user_view p50 (ms)",
    "user_view p99 (ms)",
]
chosen = validation[validation["figure"].isin(keep)]
display(chosen.pivot(index="figure", columns="run", values="ratio"))

# %% [markdown]
# ## Every strategy at every size
# Activity: each user sends `messages_per_user_day` over `connected_hours_per_day`, in
# conversations of `conversation_size`. Latency from `profile_path` (measured on the embedded
# backend: a 2-core machine, so an upper bound for AWS's).

# %%
send_interval = connected_hours_per_day * 3600 / messages_per_user_day
activity = Activity(
    users=max(users),
    conversation_size=conversation_size,
    send_interval_s=send_interval,
    tabs=tabs,
    connected_hours_per_day=connected_hours_per_day,
)
found = estimates(activity, users, load_profile(profile_path))
table = frame(found)
display(table.pivot(index="users", columns="routing", values="dollars"))

# %%
display(table.pivot(index="users", columns="routing", values="processes"))
columns = [
    "routing",
    "users",
    "dollars",
    "api_gateway_websocket_dollars",
    "appsync_realtime_dollars",
    "view_p50",
    "view_p99",
    "sqs_requests_per_s",
]
display(table[columns])

# %% [markdown]
# ## The first documented limit each strategy meets

# %%
limits = first_limits(found)
display(limits[limits["first"]][["routing", "limit", "users_at", "source"]])
display(limits[["routing", "limit", "users_at", "note"]])

# %%
figure = capacity_plot(table)
