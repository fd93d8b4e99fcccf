"""Shared fixtures: a real backend over HTTP, and the app on a real socket in front of it.

Each test gets its own table and queue prefixes, so tests share one backend process without
seeing each other's data.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aiohttp.test_utils import TestClient

from semichat.app import create_app
from semichat.settings import Settings

BACKEND_START_TIMEOUT_S = 60


@dataclass(frozen=True)
class Backend:
    name: str
    dynamodb_endpoint: str
    sqs_endpoint: str


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "semichat", "backend", "--port", "0"], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], BACKEND_START_TIMEOUT_S)
    if not ready:
        proc.kill()
        raise RuntimeError("embedded backend did not start")
    return proc, json.loads(proc.stdout.readline())["endpoint"]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="session")
def backend() -> Iterator[Backend]:
    proc, endpoint = _start_moto()
    try:
        yield Backend("embedded", endpoint, endpoint)
    finally:
        _stop(proc)


@pytest.fixture
def quiet_backend() -> Iterator[Backend]:
    """A backend of its own, for tests whose timing other tests' leftover load would blur:
    moto keeps serving a long poll whose client went away until its wait runs out."""
    proc, endpoint = _start_moto()
    try:
        yield Backend("embedded", endpoint, endpoint)
    finally:
        _stop(proc)


def make_settings(backend: Backend) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    return Settings(
        backend="embedded",
        dynamodb_endpoint=backend.dynamodb_endpoint,
        sqs_endpoint=backend.sqs_endpoint,
        table_prefix=prefix,
        queue_prefix=prefix,
        create_tables=True,
        heartbeat_seconds=1.0,
    )


@pytest.fixture
def settings(backend: Backend) -> Settings:
    return make_settings(backend)


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient[Any, Any]:
    app = create_app(settings)
    return await aiohttp_client(app, server_kwargs={"handler_cancellation": True})


@pytest.fixture
def sqs(backend: Backend) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=backend.sqs_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def dynamodb(backend: Backend) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=backend.dynamodb_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
