"""AWS clients: one aiobotocore client per service and process, configured in one place."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from semichat.aws.latency import LatencyProfile, install_latency
from semichat.aws.wire import Decisions, WireCounters, install_wire_faults
from semichat.settings import Settings


# Sent as the whole User-Agent. botocore otherwise assembles its own from a dozen sanitized
# components twice for every call: 9 % of `semichat serve`'s CPU at 100 chatting users
# (py-spy --gil), where the server's one core is the bottleneck.
def _user_agent() -> str:
    try:
        return f"semichat/{version('semichat')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "semichat"


USER_AGENT = _user_agent()

# Emulators accept any credentials; real AWS takes them from the usual chain.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


@dataclass(frozen=True)
class AwsClients:
    dynamodb: Any
    sqs: Any


def retries(settings: Settings, service: str) -> dict[str, Any]:
    """botocore's retry policy per service, each as botocore ships it for that service.

    SQS: standard mode, 3 attempts in all (the mode's documented default; `total_max_attempts`
    counts the first attempt, where the older `max_attempts` key counts retries only and gave 4).
    DynamoDB: legacy mode, whose policy for DynamoDB (botocore/data/_retry.json) is 10 attempts
    with a 50 ms base doubling each time, 25.55 s of back-off at most: boto3's default mode, and
    the one that retries DynamoDB throttling longest. `dynamodb_max_attempts` changes the count.
    """
    if service == "dynamodb":
        return {"mode": "legacy", "total_max_attempts": settings.dynamodb_max_attempts}
    return {"mode": "standard", "total_max_attempts": 3}


def client_config(settings: Settings, service: str = "sqs") -> AioConfig:
    """Pool, timeouts and retries for one client.

    A long poll keeps its connection for up to `wait_seconds`, so the read timeout must exceed
    it and the pool must hold one connection per waiting stream: aiobotocore's default of 10
    would make the 11th stream queue for a free connection for up to 20 s.
    """
    return AioConfig(
        max_pool_connections=settings.max_pool_connections,
        connect_timeout=5,
        read_timeout=settings.wait_seconds + 10,
        retries=retries(settings, service),
        user_agent=USER_AGENT,
        # botocore checks every call's parameters against the service model before sending: 6.6 %
        # of the server's CPU at 100 chatting users. The server builds every call itself from
        # input its handlers validated, and AWS validates each request again (a
        # ValidationException is a ClientError like any other), so it is skipped, as botocore's
        # documentation offers "for performance reasons".
        parameter_validation=False,
    )


def _credentials(settings: Settings) -> dict[str, str]:
    if settings.backend == "aws" and not (settings.dynamodb_url or settings.sqs_url):
        return {}
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        return {}
    return dict(EMULATOR_CREDENTIALS)


@asynccontextmanager
async def open_clients(
    settings: Settings,
    *,
    nemesis: Decisions | None = None,
    counters: WireCounters | None = None,
    latency: LatencyProfile | None = None,
    seed: int | None = None,
    on_delay: Callable[[str], None] | None = None,
) -> AsyncIterator[AwsClients]:
    """Both clients; with `counters`, botocore's attempts, retries and errors are counted; with
    `nemesis`, its wire faults answer some attempts (`semichat/aws/wire/`); with `latency`, every
    attempt of their calls takes the profile's time (`aws/latency.py`), drawn from a generator
    seeded by `seed` and the service, and each attempt slowed down is told to `on_delay`."""
    session = get_session()
    creds = _credentials(settings)
    async with AsyncExitStack() as stack:
        clients = {}
        for service, endpoint in (("dynamodb", settings.dynamodb_url), ("sqs", settings.sqs_url)):
            client = await stack.enter_async_context(
                session.create_client(
                    service,
                    region_name=settings.region,
                    endpoint_url=endpoint,
                    config=client_config(settings, service),
                    **creds,
                )
            )
            # Counters first: they then count the attempts a fault answers too.
            if counters is not None:
                counters.install(client, service)
            if nemesis is not None:
                install_wire_faults(client, service, nemesis)
            if latency is not None:
                rng = random.Random(None if seed is None else f"{seed}:{service}")
                install_latency(client, service, latency, rng, on_delay)
            clients[service] = client
        yield AwsClients(**clients)
