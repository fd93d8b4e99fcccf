"""Scenario `reconnect`: streams are cut at random and reopened while messages keep flowing,
as proxies, deploys and flaky mobile networks do."""

from semichat.loadgen.locust_user import ChatUser


class ReconnectingUser(ChatUser):
    pass  # `semichat simulate --scenario reconnect` sets the cut range
