"""Settings: one immutable object built from environment variables, then CLI flags.

Every AWS-facing knob lives here so that real AWS needs configuration only: endpoints per
service, region, and the prefixes that name tables and queues.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

Backend = Literal["embedded", "localstack", "aws"]
BACKENDS: tuple[Backend, ...] = ("embedded", "localstack", "aws")
# Where `--backend localstack` gets DynamoDB when no DynamoDB endpoint is given: LocalStack's own
# (Docker), the embedded moto server (host mode: LocalStack's DynamoDB needs a jar it downloads),
# or `auto`: LocalStack's if its health check reports dynamodb available, else embedded.
LocalstackDynamodb = Literal["auto", "localstack", "embedded"]
LOCALSTACK_DYNAMODB: tuple[LocalstackDynamodb, ...] = ("auto", "localstack", "embedded")
LOCALSTACK_ENDPOINT = "http://127.0.0.1:4566"
# demo: the caller says who it is (`x-user-id` or the `uid` cookie), for loopback trials only;
# token: a signed JWT says it (Authorization: Bearer, or the `session` cookie).
AuthMode = Literal["demo", "token"]
AUTH_MODES: tuple[AuthMode, ...] = ("demo", "token")

ENV_PREFIX = "SEMICHAT_"
# The notification routing strategies (`semichat/server/delivery/routing/`); a test keeps
# the two lists equal. Here so that the command line offers them without importing the server.
ROUTINGS = ("per_user_queue", "preprovisioned", "fifo", "sharded", "instance")


@dataclass(frozen=True)
class Settings:
    backend: Backend = "embedded"
    host: str = "127.0.0.1"
    port: int = 8080
    region: str = "us-east-1"
    # One endpoint for both services, or one each; None means the AWS default endpoints.
    endpoint_url: str | None = None
    dynamodb_endpoint: str | None = None
    sqs_endpoint: str | None = None
    localstack_endpoint: str = LOCALSTACK_ENDPOINT
    localstack_dynamodb: LocalstackDynamodb = "auto"
    table_prefix: str = "semichat-"
    queue_prefix: str = "semichat-"
    routing: str = "per_user_queue"
    # Routing `sharded`: how many shared queues users are hashed over.
    shards: int = 4
    # Routing `instance`: how long a connection-registry entry lives unless refreshed (every
    # third of it), and how often each instance looks for dead instances' queues to delete.
    registry_ttl_seconds: float = 90.0
    janitor_seconds: float = 300.0
    # SQS caps long polls at 20 s; the seed design uses the cap.
    wait_seconds: int = 20
    # aiohttp-sse pings at 15 s by default; proxies and Locust's 60 s network timeout want less.
    heartbeat_seconds: float = 10.0
    # Every waiting stream holds one pooled connection during its long poll, so the pool must be
    # at least the number of streams one process serves, plus headroom for sends and history.
    max_pool_connections: int = 2000
    visibility_timeout: int = 30
    # Attempts botocore makes of a DynamoDB call, the first included: 10 is its legacy mode's
    # DynamoDB policy as it ships (`semichat/aws/clients.py`); tests shorten it.
    dynamodb_max_attempts: int = 10
    # Rotate streams after this long (0: never), as serverless platforms and proxies cut long
    # responses anyway; the client reconnects at once on the `retry:` hint.
    stream_max_seconds: float = 0.0
    # A long poll still waiting when its stream closes: let it finish and hand back what it got
    # (True), or cancel it (False), which on the backend can swallow a notification for
    # `visibility_timeout`. Kept as a switch so the harness can measure both.
    release_orphaned_polls: bool = True
    history_default_limit: int = 50
    history_max_limit: int = 200
    max_text_chars: int = 4000
    max_body_bytes: int = 64 * 1024
    # A send that stored its message but could not fan out may be re-fanned by a retry after this.
    fanout_lease_seconds: float = 10.0
    create_tables: bool = field(default=False)
    auth: AuthMode = "demo"
    # Demo identity is a claim anyone can make: `serve` binds it to a loopback address only,
    # unless this is set on purpose.
    insecure_demo_auth_on_public_address: bool = False
    # Token mode verifies HS256 with a shared secret (the file wins over the variable), or
    # RS256/ES256 against an identity provider's JWKS URL (Cognito and the like); not both.
    auth_secret: str | None = field(default=None, repr=False)
    auth_secret_file: str | None = None
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    # The claim holding the user id (Cognito: `sub`, or `cognito:username`).
    auth_user_claim: str = "sub"
    # Origins allowed to make cookie-authenticated writes, comma-separated; empty: same origin.
    allowed_origins: str = ""
    # Per-process limits (several processes each enforce their own).
    max_streams_per_user: int = 8
    # Streams one process admits; -1: from what a stream of the routing holds (a long poll:
    # the pool less 500, so 1,500; `instance` and `sharded`: open files and memory; see
    # `semichat/server/trust/capacity.py`); 0: no cap.
    max_streams: int = -1
    sends_per_second: float = 5.0
    send_burst: int = 10
    # Faults to inject on purpose (`semichat/server/faults/nemesis.py`), e.g. `sqs` or
    # `duplicate=0.05,seed=7`; empty: none.
    faults: str = ""
    # The embedded backend's data: "" keeps it in memory only (gone when `serve` stops); a
    # folder keeps tables and queues across restarts (`semichat/emulator/persistence.py`).
    data_dir: str = ""
    # How many server processes share the port (`serve --processes N`, SO_REUSEPORT): the parent
    # starts that many children, and each child knows it is one of them.
    processes: int = 1

    @property
    def dynamodb_url(self) -> str | None:
        return self.dynamodb_endpoint or self.endpoint_url

    @property
    def sqs_url(self) -> str | None:
        return self.sqs_endpoint or self.endpoint_url

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced; None values are ignored (unset CLI flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read `SEMICHAT_<FIELD>` variables, converted to each field's type."""
        settings = cls(**env_values(cls, ENV_PREFIX, environ))
        if settings.backend not in BACKENDS:
            raise ValueError(
                f"SEMICHAT_BACKEND must be one of {BACKENDS}, not {settings.backend!r}"
            )
        if settings.auth not in AUTH_MODES:
            raise ValueError(f"SEMICHAT_AUTH must be one of {AUTH_MODES}, not {settings.auth!r}")
        if settings.localstack_dynamodb not in LOCALSTACK_DYNAMODB:
            raise ValueError(
                f"SEMICHAT_LOCALSTACK_DYNAMODB must be one of {LOCALSTACK_DYNAMODB}, "
                f"not {settings.localstack_dynamodb!r}"
            )
        return settings


def settings_env(settings: Settings) -> dict[str, str]:
    """`settings` as the `SEMICHAT_<FIELD>` variables that `Settings.from_env` reads back
    (None fields left out): how `serve --processes N` hands its settings to its children."""
    values: dict[str, str] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is not None:
            values[ENV_PREFIX + f.name.upper()] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
    return values


def env_values(cls: Any, prefix: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The fields of dataclass `cls` found as `<prefix><FIELD>` variables, each converted to
    the type of the field's default."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(cls):
        name = prefix + f.name.upper()
        if name in env:
            values[f.name] = _convert(name, env[name], f.default)
    return values


def _convert(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"{name} must be a boolean, not {raw!r}")
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    return raw
