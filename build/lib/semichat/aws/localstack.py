"""LocalStack as a backend: which of its services are up, and where DynamoDB comes from.

With Docker, LocalStack serves SQS and DynamoDB. In host mode (`localstack/host.sh`, no Docker)
it serves SQS only, because its DynamoDB needs a jar it downloads at first use; DynamoDB then
comes from the embedded moto server. Its health endpoint says which services it runs.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from semichat.settings import Settings

HEALTH_PATH = "/_localstack/health"
HEALTH_TIMEOUT_S = 3.0
# "available": enabled, not yet used; "running": started by a first request.
UP_STATES = frozenset({"available", "running"})


class LocalstackUnavailable(RuntimeError):
    pass


async def health(endpoint: str) -> dict[str, Any]:
    """LocalStack's health document (`{"services": {"sqs": "available", ...}, "version"}`)."""
    url = endpoint.rstrip("/") + HEALTH_PATH
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)) as http,
            http.get(url) as resp,
        ):
            resp.raise_for_status()
            return dict(await resp.json(content_type=None))
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise LocalstackUnavailable(
            f"LocalStack is not answering at {url} ({type(exc).__name__}: {exc}); "
            "start it with `make localstack` (or localstack/host.sh start)"
        ) from None


def service_up(doc: dict[str, Any], service: str) -> bool:
    return doc.get("services", {}).get(service) in UP_STATES


async def dynamodb_endpoint(settings: Settings) -> str | None:
    """Where `--backend localstack` gets DynamoDB when no DynamoDB endpoint was given:
    LocalStack's endpoint, or None for "start the embedded backend".

    `auto` asks LocalStack's health check, which also makes a LocalStack that is not running fail
    here, with a hint, rather than at the first request.
    """
    if settings.localstack_dynamodb == "embedded":
        return None
    if settings.localstack_dynamodb == "localstack":
        return settings.localstack_endpoint
    doc = await health(settings.localstack_endpoint)
    if settings.sqs_url in (None, settings.localstack_endpoint) and not service_up(doc, "sqs"):
        raise LocalstackUnavailable(
            f"LocalStack at {settings.localstack_endpoint} does not serve SQS "
            f"(health: {doc.get('services', {}).get('sqs', 'absent')!r})"
        )
    return settings.localstack_endpoint if service_up(doc, "dynamodb") else None
