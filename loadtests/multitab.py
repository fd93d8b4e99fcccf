"""Scenario `multitab`: every user has several tabs open, each tab with its own stream.

With one queue per user, the tabs compete for each notification: a tab that does not receive
it does not refetch, so its view lags until something else makes it refetch.
"""

from semichat.loadgen.locust_user import ChatUser


class MultiTabUser(ChatUser):
    pass  # `semichat simulate --scenario multitab` sets tabs (default 3)
