"""Settings from the environment and the command line."""

from __future__ import annotations

import pytest

from semichat.cli import build_parser, settings_from_args
from semichat.settings import Settings


def test_environment_overrides_defaults_with_types() -> None:
    s = Settings.from_env(
        {
            "SEMICHAT_BACKEND": "aws",
            "SEMICHAT_PORT": "9000",
            "SEMICHAT_HEARTBEAT_SECONDS": "2.5",
            "SEMICHAT_CREATE_TABLES": "yes",
            "SEMICHAT_SQS_ENDPOINT": "http://127.0.0.1:4566",
        }
    )
    assert (s.backend, s.port, s.heartbeat_seconds, s.create_tables) == ("aws", 9000, 2.5, True)
    assert s.sqs_url == "http://127.0.0.1:4566"
    assert s.dynamodb_url is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SEMICHAT_PORT": "eighty"}, "SEMICHAT_PORT"),
        ({"SEMICHAT_BACKEND": "azure"}, "SEMICHAT_BACKEND"),
        ({"SEMICHAT_CREATE_TABLES": "maybe"}, "boolean"),
    ],
)
def test_bad_environment_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_cli_flags_win_and_backends_pick_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMICHAT_PORT", "9000")
    args = build_parser().parse_args(["serve", "--port", "8081", "--backend", "localstack"])
    s = settings_from_args(args)
    assert s.port == 8081
    assert s.sqs_url == s.dynamodb_url == "http://127.0.0.1:4566"
    assert s.create_tables is True

    aws = settings_from_args(build_parser().parse_args(["serve", "--backend", "aws"]))
    assert aws.sqs_url is None
    assert aws.create_tables is False
