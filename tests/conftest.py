"""Shared fixtures: a real backend over HTTP, and the app on a real socket in front of it.

The session `backend` fixture is parametrised, so every test that uses it runs twice:
- `embedded`: a moto server (`semichat backend`) for SQS and DynamoDB;
- `localstack`: SQS from LocalStack in host mode on 127.0.0.1:4566 (started by
  `localstack/host.sh` unless already up, and stopped again at the end if started here), and
  DynamoDB from a moto server, as `semichat serve --backend localstack` does without Docker.

Each test gets its own table and queue prefixes, so tests share one backend process without
seeing each other's data.

Every test is marked by what it needs (see `pytest_collection_modifyitems`): `backend` (a moto
server or the app in front of one), `localstack`, `browser` (Chromium). `make test-unit` runs the
rest: `pytest -m "not backend and not browser and not localstack"`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp.test_utils import TestClient
from filelock import FileLock

from semichat.aws.localstack import HEALTH_PATH, service_up
from semichat.emulator.backend import start_backend_process as _start_moto
from semichat.emulator.backend import stop_backend_process as _stop
from semichat.server.api.app import create_app
from semichat.settings import LOCALSTACK_ENDPOINT, Settings

from . import hypothesis_profiles  # noqa: F401  (registers the `quick` profile)
from .ci import in_ci


def pytest_configure(config: pytest.Config) -> None:
    # A suite started in the background by a non-interactive shell (`make test &`, a CI runner's
    # script) inherits SIGINT ignored, and so would every process it starts: the tests that end
    # `simulate --web` or Locust's web UI with Ctrl-C then waited 180 s for processes deaf to
    # it. Python's own handler here is reset to the default at each child's exec.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


BACKEND_START_TIMEOUT_S = 60
BACKEND_NAMES = ("embedded", "localstack")
ROOT = Path(__file__).resolve().parent.parent
HOST_SCRIPT = ROOT / "localstack" / "host.sh"
# host.sh's state folder; the mark says this test run started LocalStack (and must stop it).
LOCALSTACK_STATE = ROOT / ".localstack"
STARTED_BY_TESTS = LOCALSTACK_STATE / "started-by-tests"
# A first start installs .localstack-venv (about a minute here) before LocalStack starts.
LOCALSTACK_START_TIMEOUT_S = 600
LOCALSTACK_STOP_TIMEOUT_S = 60
# Fixtures that start or reach a backend process (moto server, the app over one, a served CLI,
# a whole simulated run), and the one that starts Chromium. Test modules' own fixtures are
# listed here by name, so that a new test using them is marked without a decorator.
BACKEND_FIXTURES = frozenset(
    {
        "backend",
        "quiet_backend",
        "moto_endpoint",
        "embedded_endpoint",
        "served",
        "chat_run",
        "faulty_run",
        "fault_run",
        "moto_sqs",
        "locust_target",
        "gap_run",
        "stall_fault_run",
        "stalled_proxy_run",
    }
)
# Fixtures that start heavy processes of their own (Node.js for the CDK, a notebook kernel).
# ... and whole simulations (`semichat simulate`: a backend, a server and Locust each).
SLOW_FIXTURES = frozenset(
    {
        "synthesis",
        "template",
        "deployments",
        "walkthrough",
        "app_run",
        "fault_run",
        "faulty_run",
        "chat_run",
        "distributed_run",
        "locust_target",
        "gap_run",
        "stall_fault_run",
        "stalled_proxy_run",
    }
)
BROWSER_FIXTURES = frozenset({"browser"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by the processes it needs, from the fixtures it uses (transitively)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.backend)  # the browser tests serve the chat too
        if fixtures & BACKEND_FIXTURES:
            item.add_marker(pytest.mark.backend)
        if fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "localstack" in callspec.id:
            item.add_marker(pytest.mark.localstack)


@dataclass(frozen=True)
class Backend:
    name: str
    dynamodb_endpoint: str
    sqs_endpoint: str


def localstack_sqs_up() -> bool:
    try:
        with urllib.request.urlopen(LOCALSTACK_ENDPOINT + HEALTH_PATH, timeout=2) as resp:
            return service_up(json.load(resp), "sqs")
    except (OSError, ValueError):
        return False


def _localstack_unavailable(why: str) -> None:
    message = (
        f"LocalStack (SQS on {LOCALSTACK_ENDPOINT}) is unavailable: {why}\n"
        "Fix: `make localstack` (localstack/host.sh start) needs Python 3.12 or 3.13 for its "
        "virtual environment, or a Docker engine; see .localstack/localstack.log."
    )
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextmanager
def localstack_running() -> Iterator[None]:
    """LocalStack's SQS up for the block. Under pytest-xdist every worker asks: the first to
    find it down starts it, under a file lock, and leaves a mark; the run's last act
    (`pytest_sessionfinish` in the controller) stops what a test run started."""
    LOCALSTACK_STATE.mkdir(exist_ok=True)
    with FileLock(LOCALSTACK_STATE / "tests.lock", timeout=LOCALSTACK_START_TIMEOUT_S + 60):
        if not localstack_sqs_up():
            _start_localstack()
            STARTED_BY_TESTS.write_text(str(os.getpid()))
    yield


def _start_localstack() -> None:
    try:
        result = subprocess.run(
            [str(HOST_SCRIPT), "start"],
            capture_output=True,
            text=True,
            timeout=LOCALSTACK_START_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        subprocess.run([str(HOST_SCRIPT), "stop"], timeout=LOCALSTACK_STOP_TIMEOUT_S)
        _localstack_unavailable(f"not up after {LOCALSTACK_START_TIMEOUT_S} s")
    if result.returncode != 0:
        _localstack_unavailable(result.stderr.strip()[-2000:])


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop LocalStack if this run started it: once, in the controller (or a run without
    workers), after every worker has finished."""
    if hasattr(session.config, "workerinput") or not STARTED_BY_TESTS.exists():
        return
    STARTED_BY_TESTS.unlink()
    subprocess.run([str(HOST_SCRIPT), "stop"], timeout=LOCALSTACK_STOP_TIMEOUT_S)


@pytest.fixture(scope="session", params=BACKEND_NAMES)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The backend under test; test ids end in `[embedded]` or `[localstack]`."""
    if request.param == "embedded":
        proc, endpoint = _start_moto()
        try:
            yield Backend("embedded", endpoint, endpoint)
        finally:
            _stop(proc)
        return
    with localstack_running():
        proc, endpoint = _start_moto()
        try:
            yield Backend(
                "localstack", dynamodb_endpoint=endpoint, sqs_endpoint=LOCALSTACK_ENDPOINT
            )
        finally:
            _stop(proc)


@pytest.fixture(scope="module")
def embedded_endpoint() -> Iterator[str]:
    """An embedded backend of the module's own, apart from the backend under test."""
    proc, endpoint = _start_moto()
    try:
        yield endpoint
    finally:
        _stop(proc)


@pytest.fixture
def quiet_backend(backend: Backend) -> Iterator[Backend]:
    """A backend of its own, for tests whose timing other tests' leftover load would blur:
    moto keeps serving a long poll whose client went away until its wait runs out.

    Under `localstack` only DynamoDB is fresh: LocalStack's SQS is shared, but it serves each
    long poll on its own gateway thread (1,000 by default), so leftover polls do not queue
    new requests behind them the way they do in moto.
    """
    proc, endpoint = _start_moto()
    sqs_endpoint = endpoint if backend.name == "embedded" else backend.sqs_endpoint
    try:
        yield Backend(backend.name, dynamodb_endpoint=endpoint, sqs_endpoint=sqs_endpoint)
    finally:
        _stop(proc)


def make_settings(backend: Backend) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    return Settings(
        backend="localstack" if backend.name == "localstack" else "embedded",
        dynamodb_endpoint=backend.dynamodb_endpoint,
        sqs_endpoint=backend.sqs_endpoint,
        table_prefix=prefix,
        queue_prefix=prefix,
        create_tables=True,
        heartbeat_seconds=1.0,
        # Tests send in bursts a person never would; test_limits.py turns the limit back on.
        sends_per_second=0.0,
    )


@pytest.fixture
def settings(backend: Backend) -> Settings:
    return make_settings(backend)


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient[Any, Any]:
    app = create_app(settings)
    return await aiohttp_client(app, server_kwargs={"handler_cancellation": True})


def emulator_client(service: str, endpoint: str, **kwargs: Any) -> Any:
    """A boto3 client for a test backend (emulators take any credentials)."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        **kwargs,
    )


@pytest.fixture
def sqs(backend: Backend) -> Any:
    return emulator_client("sqs", backend.sqs_endpoint)


@pytest.fixture
def dynamodb(backend: Backend) -> Any:
    return emulator_client("dynamodb", backend.dynamodb_endpoint)
