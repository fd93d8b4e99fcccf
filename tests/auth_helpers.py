"""Token-mode settings and credentials for tests."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import jwt

from semichat.settings import Settings

SECRET = "test-secret-" + "x" * 60


def token_settings(settings: Settings, **overrides: Any) -> Settings:
    return replace(settings, auth="token", auth_secret=SECRET, **overrides)


def make_token(
    user: str = "alice",
    *,
    ttl: float = 600,
    key: str | bytes | None = SECRET,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    now = int(time.time())
    payload = {"sub": user, "iat": now, "exp": now + int(ttl), **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def credentials(mode: str, user: str) -> dict[str, str]:
    """Headers that make a request come from `user` in `mode` (the token as a bearer)."""
    return {"x-user-id": user} if mode == "demo" else bearer(make_token(user))
