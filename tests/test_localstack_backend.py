"""`--backend localstack` resolves an endpoint per service: SQS from LocalStack, DynamoDB from
LocalStack when its health check reports it (Docker), else from the embedded backend (host mode).

A fake health endpoint stands in for LocalStack, so these tests need no LocalStack running.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from semichat.aws.localstack import LocalstackUnavailable
from semichat.backends import with_backend
from semichat.settings import Settings

HOST_MODE = {"sqs": "available", "dynamodb": "disabled"}
DOCKER = {"sqs": "running", "dynamodb": "available"}


async def fake_localstack(aiohttp_server: Any, services: dict[str, str]) -> str:
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"services": services, "version": "fake"})

    app = web.Application()
    app.router.add_get("/_localstack/health", health)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def test_docker_localstack_serves_both(aiohttp_server: Any) -> None:
    endpoint = await fake_localstack(aiohttp_server, DOCKER)
    settings = Settings(backend="localstack", localstack_endpoint=endpoint)
    async with with_backend(settings) as resolved:
        assert resolved.sqs_url == resolved.dynamodb_url == endpoint


async def test_host_mode_takes_dynamodb_from_the_embedded_backend(aiohttp_server: Any) -> None:
    endpoint = await fake_localstack(aiohttp_server, HOST_MODE)
    settings = Settings(backend="localstack", localstack_endpoint=endpoint)
    async with with_backend(settings) as resolved:
        assert resolved.sqs_url == endpoint
        assert resolved.dynamodb_url is not None
        assert resolved.dynamodb_url.startswith("http://127.0.0.1:")
        assert resolved.dynamodb_url != endpoint


async def test_explicit_dynamodb_endpoint_wins_without_asking_localstack() -> None:
    # Nothing listens on port 9: asking LocalStack would fail.
    settings = Settings(
        backend="localstack",
        localstack_endpoint="http://127.0.0.1:9",
        dynamodb_endpoint="http://127.0.0.1:8000",
    )
    async with with_backend(settings) as resolved:
        assert resolved.dynamodb_url == "http://127.0.0.1:8000"
        assert resolved.sqs_url == "http://127.0.0.1:9"


async def test_forcing_localstack_dynamodb_skips_the_probe() -> None:
    settings = Settings(
        backend="localstack",
        localstack_endpoint="http://127.0.0.1:9",
        localstack_dynamodb="localstack",
    )
    async with with_backend(settings) as resolved:
        assert resolved.sqs_url == resolved.dynamodb_url == "http://127.0.0.1:9"


async def test_localstack_not_running_fails_with_a_hint() -> None:
    settings = Settings(backend="localstack", localstack_endpoint="http://127.0.0.1:9")
    with pytest.raises(LocalstackUnavailable, match="make localstack"):
        async with with_backend(settings):
            pass


async def test_localstack_without_sqs_is_refused(aiohttp_server: Any) -> None:
    endpoint = await fake_localstack(aiohttp_server, {"sqs": "disabled", "dynamodb": "running"})
    with pytest.raises(LocalstackUnavailable, match="does not serve SQS"):
        async with with_backend(Settings(backend="localstack", localstack_endpoint=endpoint)):
            pass
