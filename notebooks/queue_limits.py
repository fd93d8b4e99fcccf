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
# # Where one queue per user breaks
#
# A ramp of distinct users' queues against an SQS endpoint: CreateQueue latency and
# throttling, time from a new user's CreateQueue to their first notification, ListQueues' cut
# at 1,000 (AWS and moto return the first 1,000 without a `NextToken` unless `MaxResults` is
# given), and the emulator's memory as queues grow. With no `endpoint` it starts the embedded
# backend (moto) for the ramp; point it at LocalStack (`http://127.0.0.1:4566`) for thousands.
# The app itself never lists queues except `/healthz`'s one-queue probe: nothing in it
# depends on the cut.

# %% tags=["parameters"]
endpoint = ""
queues = 1200
step = 200
users = [1_000, 10_000, 100_000, 1_000_000]
processes = 4
quota = 2

# %%
# %matplotlib inline
import boto3
import pandas as pd

from semichat.emulator.backend import start_backend_process, stop_backend_process
from semichat.harness.queue_limits import Ramp, queues_needed, quota_hit, ramp

started = None
if not endpoint:
    started, endpoint = start_backend_process()
sqs = boto3.client(
    "sqs",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)
try:
    steps = ramp(sqs, Ramp(queues=queues, step=step), started.pid if started else None)
finally:
    if started is not None:
        stop_backend_process(started)
steps

# %%
ax = steps.plot(x="queues", y=["create_p50_ms", "create_p99_ms", "first_notification_ms"])
ax.set_ylabel("ms")

# %% [markdown]
# ## An account's queue quota, reached
# The nemesis's `queue_quota` makes SQS refuse CreateQueue past `quota` queues (as an
# organisation's guardrail would): with one queue per user, the next new user's stream gets a
# JSON 503 naming the quota, while the first users chat on.

# %%
pd.set_option("display.max_colwidth", 200)
quota_hit(quota, quota + 2)

# %% [markdown]
# ## Queues each strategy holds

# %%
pd.DataFrame({n: queues_needed(n, processes) for n in users})
