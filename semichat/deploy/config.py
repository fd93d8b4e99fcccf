"""What a deployer chooses, read from the CDK app's context (`cdk deploy -c semichat:KEY=VALUE`).

- `semichat:stream-max-seconds` (300): the one setting every timeout is derived from
  (`timeouts.py`);
- `semichat:auth` (`token`): `token`, the server verifies each request's token against the keys
  at the stack parameter `AuthJwksUrl`; `demo`, the caller names itself (the harness's mode),
  for load tests only;
- `semichat:allowed-cidr` (none): who may reach the endpoint; required with `demo` (on Lambda,
  whose function URL cannot filter callers, only `0.0.0.0/0`);
- `semichat:tasks` (2; `sharded`: 1): Fargate tasks;
- `semichat:processes` (1): server processes per Fargate task (`serve --processes P`, one vCPU
  each: 1, 2 or 4);
- `semichat:table-prefix`, `semichat:queue-prefix` (`semichat-`): as the `Semichat` stack's
  `TablePrefix` and `QueuePrefix`;
- `semichat:certificate-arn` (none): an ACM certificate; the ALB then listens on HTTPS 443
  instead of HTTP 80.

Everything is decided at synthesis, so `make synth` judges exactly what would be deployed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from semichat.deploy.timeouts import DEFAULT_STREAM_MAX_SECONDS

PREFIX = "semichat:"
KEYS = (
    "stream-max-seconds",
    "auth",
    "allowed-cidr",
    "tasks",
    "processes",
    "table-prefix",
    "queue-prefix",
    "certificate-arn",
)
Auth = Literal["token", "demo"]
ANYONE = "0.0.0.0/0"


class DeployConfigError(ValueError):
    """A choice that cannot be deployed; its message is one line saying why."""


@dataclass(frozen=True)
class DeployConfig:
    stream_max_seconds: float = DEFAULT_STREAM_MAX_SECONDS
    auth: Auth = "token"
    allowed_cidr: str | None = None
    tasks: int | None = None
    processes: int = 1
    table_prefix: str = "semichat-"
    queue_prefix: str = "semichat-"
    certificate_arn: str | None = None

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> DeployConfig:
        """From `get(key)` (the app's `node.try_get_context`); context given with `-c` is a
        string, context from cdk.json or a test may be typed."""
        values = {key: get(PREFIX + key) for key in KEYS}
        given = values["auth"] or "token"
        if given not in ("token", "demo"):
            raise DeployConfigError(f"{PREFIX}auth must be token or demo, not {given!r}")
        auth: Auth = "demo" if given == "demo" else "token"
        cidr = values["allowed-cidr"] or None
        if cidr is not None:
            try:
                ipaddress.ip_network(cidr)
            except ValueError as exc:
                raise DeployConfigError(f"{PREFIX}allowed-cidr: {exc}") from None
        if auth == "demo" and cidr is None:
            raise DeployConfigError(
                f"{PREFIX}auth=demo trusts whatever user id a caller claims: say who may call "
                f"with -c {PREFIX}allowed-cidr=ADDRESS/32"
            )
        tasks = _whole(values, "tasks", 0)
        processes = _whole(values, "processes", 1)
        return cls(
            stream_max_seconds=_number(values, "stream-max-seconds", DEFAULT_STREAM_MAX_SECONDS),
            auth=auth,
            allowed_cidr=cidr,
            tasks=tasks or None,
            processes=processes or 1,
            table_prefix=values["table-prefix"] or cls.table_prefix,
            queue_prefix=values["queue-prefix"] or cls.queue_prefix,
            certificate_arn=values["certificate-arn"] or None,
        )

    def context(self) -> dict[str, str]:
        """The `-c` values that give this config back (defaults left out)."""
        out = {}
        for key in KEYS:
            value = getattr(self, key.replace("-", "_"))
            if value != getattr(DeployConfig, key.replace("-", "_")):
                out[PREFIX + key] = f"{value:g}" if isinstance(value, float) else str(value)
        return out


def _whole(values: dict[str, Any], key: str, default: int) -> int:
    number = _number(values, key, default)
    if number < 0 or number != int(number):
        raise DeployConfigError(f"{PREFIX}{key} must be a whole number, not {number:g}")
    return int(number)


def _number(values: dict[str, Any], key: str, default: float) -> float:
    raw = values[key]
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise DeployConfigError(f"{PREFIX}{key} must be a number, not {raw!r}") from None
