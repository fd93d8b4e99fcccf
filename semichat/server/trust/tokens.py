"""Signed identity tokens (JWT, via PyJWT): issuing them for trials, verifying them on requests.

Two ways to verify, chosen by settings, never both:
- a shared secret (HS256), from `--auth-secret-file PATH` or `SEMICHAT_AUTH_SECRET`; `semichat
  token USER` issues such tokens;
- an identity provider's JWKS URL (RS256 or ES256, e.g. Cognito's
  `https://cognito-idp.REGION.amazonaws.com/POOL/.well-known/jwks.json`), with the issuer and
  audience the provider puts in its tokens.

The algorithm list is fixed per way, never read from the token, so `alg: none` and an HS256 token
signed with a provider's public key are refused.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from semichat.settings import Settings

SECRET_ALGORITHMS = ["HS256"]
JWKS_ALGORITHMS = ["RS256", "ES256"]
# RFC 7518 3.2: an HS256 key must be at least as long as the hash (32 bytes).
MIN_SECRET_BYTES = 32
# Clocks of the issuer and this server may differ a little.
LEEWAY_S = 10
DEFAULT_TTL_S = 3600


class TokenConfigError(ValueError):
    """Token mode is misconfigured: a start-up error, worded for the operator."""


class InvalidToken(Exception):
    """The token does not prove who the caller is; the message says why, never the token."""


@dataclass(frozen=True)
class VerifiedToken:
    user_id: str
    expires_at: int


def load_secret(settings: Settings) -> bytes | None:
    """The shared secret: the file's contents (stripped of its trailing newline), else the
    `SEMICHAT_AUTH_SECRET` value, else None."""
    if settings.auth_secret_file:
        try:
            raw = Path(settings.auth_secret_file).read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise TokenConfigError(
                f"cannot read --auth-secret-file {settings.auth_secret_file}: {exc.strerror}"
            ) from None
    elif settings.auth_secret:
        raw = settings.auth_secret.encode()
    else:
        return None
    if len(raw) < MIN_SECRET_BYTES:
        raise TokenConfigError(
            f"the auth secret must be at least {MIN_SECRET_BYTES} bytes "
            "(e.g. `openssl rand -hex 32 > secret`)"
        )
    return raw


def issue_token(
    settings: Settings, user_id: str, ttl_s: float = DEFAULT_TTL_S, now: float | None = None
) -> str:
    """An HS256 token for `user_id`, valid for `ttl_s` seconds (negative: already expired)."""
    secret = load_secret(settings)
    if secret is None:
        raise TokenConfigError(
            "no secret: give --auth-secret-file PATH or set SEMICHAT_AUTH_SECRET"
        )
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        settings.auth_user_claim: user_id,
        "iat": issued,
        "exp": issued + int(ttl_s),
    }
    if settings.auth_issuer:
        claims["iss"] = settings.auth_issuer
    if settings.auth_audience:
        claims["aud"] = settings.auth_audience
    return jwt.encode(claims, secret, algorithm=SECRET_ALGORITHMS[0])


class TokenVerifier:
    """Checks signature, expiry, issuer and audience; returns the user id the token carries."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._secret = load_secret(settings)
        self._jwks: jwt.PyJWKClient | None = None
        if self._secret is not None and settings.auth_jwks_url:
            raise TokenConfigError("give a shared secret or --auth-jwks-url, not both")
        if settings.auth_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.auth_jwks_url, cache_keys=True)
        elif self._secret is None:
            raise TokenConfigError(
                "--auth token needs --auth-secret-file PATH, SEMICHAT_AUTH_SECRET "
                "or --auth-jwks-url"
            )

    async def verify(self, token: str) -> VerifiedToken:
        if self._jwks is not None:
            key, algorithms = await self._signing_key(token), JWKS_ALGORITHMS
        else:
            key, algorithms = self._secret, SECRET_ALGORITHMS
        return self._decode(token, key, algorithms)

    async def _signing_key(self, token: str) -> Any:
        assert self._jwks is not None
        try:
            # PyJWKClient fetches with urllib: off the event loop (it caches keys by kid).
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError:
            raise InvalidToken("cannot fetch the identity provider's keys") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {exc}") from None
        return signing_key.key

    def _decode(self, token: str, key: Any, algorithms: list[str]) -> VerifiedToken:
        settings = self._settings
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=settings.auth_audience,
                issuer=settings.auth_issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", settings.auth_user_claim]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {exc}") from None
        user = claims[settings.auth_user_claim]
        if not isinstance(user, str):
            raise InvalidToken(f"invalid token: claim {settings.auth_user_claim} is not a string")
        return VerifiedToken(user_id=user, expires_at=int(claims["exp"]))
