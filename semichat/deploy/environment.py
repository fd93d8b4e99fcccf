"""The server's environment on each compute tier: `SEMICHAT_*` settings, and the adapter's.

Only what differs from the image's own (`Dockerfile`: `SEMICHAT_BACKEND=aws`, port 8080) and from
the settings' defaults is worth stating, plus every timeout, so that the template shows them.
Values are strings; `region` and the token parameters may be CDK tokens, resolved at deploy.
"""

from __future__ import annotations

from dataclasses import dataclass

from semichat.deploy.config import DeployConfig
from semichat.deploy.pairings import Pairing
from semichat.deploy.timeouts import ServerTimeouts

PORT = 8080
HEALTH_PATH = "/healthz"
# Fargate: the ALB reaches the task on its own address. Lambda: the Web Adapter runs beside the
# server in the same environment and calls it on loopback.
HOSTS = {"fargate": "0.0.0.0", "lambda": "127.0.0.1"}
# AWS Lambda Web Adapter (an extension in the image, `/opt/extensions/lambda-adapter`): stream
# the response as written (the function URL's RESPONSE_STREAM), forward to the server's port,
# and start forwarding once `/healthz` answers below 500 (its default path `/` is the widget's
# page, which answers before DynamoDB and SQS do).
ADAPTER = {
    "AWS_LWA_INVOKE_MODE": "response_stream",
    "AWS_LWA_PORT": str(PORT),
    "AWS_LWA_READINESS_CHECK_PATH": HEALTH_PATH,
}


@dataclass(frozen=True)
class TokenIssuer:
    """Where tokens are checked in `token` mode (CloudFormation parameters at deploy)."""

    jwks_url: str
    issuer: str
    audience: str


def server_environment(
    pairing: Pairing,
    config: DeployConfig,
    timeouts: ServerTimeouts,
    *,
    region: str,
    tokens: TokenIssuer | None,
) -> dict[str, str]:
    host = HOSTS[pairing.deployment]
    env = {
        "SEMICHAT_ROUTING": pairing.routing,
        "SEMICHAT_REGION": region,
        "SEMICHAT_TABLE_PREFIX": config.table_prefix,
        "SEMICHAT_QUEUE_PREFIX": config.queue_prefix,
        "SEMICHAT_HOST": host,
        "SEMICHAT_PORT": str(PORT),
        "SEMICHAT_STREAM_MAX_SECONDS": f"{timeouts.stream_max_seconds:g}",
        "SEMICHAT_HEARTBEAT_SECONDS": f"{timeouts.heartbeat_seconds:g}",
        "SEMICHAT_WAIT_SECONDS": f"{timeouts.wait_seconds:g}",
        "SEMICHAT_AUTH": config.auth,
    }
    if config.auth == "token":
        assert tokens is not None, "token mode needs where to check tokens"
        env |= {
            "SEMICHAT_AUTH_JWKS_URL": tokens.jwks_url,
            "SEMICHAT_AUTH_ISSUER": tokens.issuer,
            "SEMICHAT_AUTH_AUDIENCE": tokens.audience,
        }
    elif host != HOSTS["lambda"]:
        # The server refuses demo identity on a public address unless told by name; the stack
        # only allows it behind `allowed-cidr` (config.py).
        env["SEMICHAT_INSECURE_DEMO_AUTH_ON_PUBLIC_ADDRESS"] = "true"
    if pairing.deployment == "lambda":
        env |= ADAPTER
    elif config.processes > 1:
        env["SEMICHAT_PROCESSES"] = str(config.processes)
    return env
