"""Who is calling, and whether a cookie-carried request may change anything.

`demo` mode believes the `x-user-id` header or the `uid` cookie (loopback trials only; `serve`
refuses a public address). `token` mode believes only a verified token, sent as
`Authorization: Bearer` or in the HttpOnly `session` cookie (EventSource cannot send headers).

CSRF: a browser attaches cookies to requests other sites make it send, so a cookie-authenticated
request that changes state must be JSON (a cross-site form or no-cors fetch cannot send
`application/json` without a CORS preflight, which this server never grants) and carry an allowed
`Origin` (the server's own unless `allowed_origins` says otherwise). Headers (`x-user-id`,
`Authorization`) are never attached by the browser on its own, so they need neither check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, Protocol

from aiohttp import web

from semichat.server.errors import BadRequest, Forbidden, Unauthorized
from semichat.server.identity import USER_COOKIE, USER_HEADER, validate_user_id
from semichat.server.metrics import LimitCounters
from semichat.server.trust.tokens import InvalidToken, TokenVerifier, VerifiedToken
from semichat.settings import Settings

SESSION_COOKIE = "session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Via = Literal["header", "cookie"]


@dataclass(frozen=True)
class Identity:
    user_id: str
    # "cookie": the browser may have attached it on its own, so writes need the CSRF checks.
    via: Via


class Authenticator(Protocol):
    mode: str

    async def identify(self, request: web.Request) -> Identity | None:
        """The caller, None if it presented nothing; raises Unauthorized for a bad credential."""
        ...


class DemoAuthenticator:
    """The seed's identity: whatever the caller claims."""

    mode = "demo"

    async def identify(self, request: web.Request) -> Identity | None:
        value = request.headers.get(USER_HEADER)
        if value:
            return Identity(validate_user_id(value), "header")
        value = request.cookies.get(USER_COOKIE)
        if value:
            return Identity(validate_user_id(value), "cookie")
        return None


class TokenAuthenticator:
    mode = "token"

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def identify(self, request: web.Request) -> Identity | None:
        authorization = request.headers.get("Authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("Authorization must be `Bearer <token>`")
            return Identity((await self.verify(token.strip())).user_id, "header")
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return Identity((await self.verify(cookie)).user_id, "cookie")
        return None

    async def verify(self, token: str) -> VerifiedToken:
        try:
            verified = await self._verifier.verify(token)
        except InvalidToken as exc:
            raise Unauthorized(str(exc)) from None
        return VerifiedToken(validate_token_user(verified.user_id), verified.expires_at)


def validate_token_user(user_id: str) -> str:
    try:
        return validate_user_id(user_id)
    except BadRequest:
        raise Unauthorized("the token's user id is not a valid user id") from None


def make_authenticator(settings: Settings) -> Authenticator:
    if settings.auth == "token":
        return TokenAuthenticator(TokenVerifier(settings))
    return DemoAuthenticator()


class RequestGuard:
    """Authenticates a request and applies the CSRF rules; counts what it refuses."""

    def __init__(
        self, authenticator: Authenticator, settings: Settings, counters: LimitCounters
    ) -> None:
        self.authenticator = authenticator
        self._origins = frozenset(
            o.strip().rstrip("/") for o in settings.allowed_origins.split(",")
        )
        self._origins -= {""}
        self._counters = counters

    @property
    def mode(self) -> str:
        return self.authenticator.mode

    async def identify(self, request: web.Request) -> Identity | None:
        try:
            return await self.authenticator.identify(request)
        except Unauthorized:
            self._counters.auth_rejected += 1
            raise

    async def authenticate(self, request: web.Request) -> str:
        """The caller's user id: 401 without a valid identity, 403 for a cross-site write."""
        identity = await self.identify(request)
        if identity is None:
            self._counters.auth_rejected += 1
            raise Unauthorized(self._missing_message())
        if identity.via == "cookie" and request.method not in SAFE_METHODS:
            self.check_same_site_write(request)
        return identity.user_id

    async def bearer_token(self, request: web.Request) -> tuple[VerifiedToken, str]:
        """The verified bearer token of a sign-in and its raw text (token mode only)."""
        authenticator = self.authenticator
        if not isinstance(authenticator, TokenAuthenticator):
            raise BadRequest("this server runs in demo mode: there is no session to start")
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not raw.strip():
                raise Unauthorized("send the token as Authorization: Bearer <token>")
            return await authenticator.verify(raw.strip()), raw.strip()
        except Unauthorized:
            self._counters.auth_rejected += 1
            raise

    def check_same_site_write(self, request: web.Request) -> None:
        if request.content_type != "application/json":
            self._counters.csrf_rejected += 1
            raise Forbidden("a cookie-authenticated write must be Content-Type: application/json")
        origin = request.headers.get("Origin")
        if origin is None or origin.rstrip("/") not in self._allowed(request):
            self._counters.csrf_rejected += 1
            raise Forbidden("a cookie-authenticated write must come from an allowed Origin")

    def _allowed(self, request: web.Request) -> frozenset[str]:
        return self._origins or frozenset({f"{request.scheme}://{request.host}"})

    def _missing_message(self) -> str:
        if self.mode == "token":
            return "missing identity: send Authorization: Bearer <token> or the session cookie"
        return "missing identity: send the x-user-id header or the uid cookie"


def set_session_cookie(
    request: web.Request, response: web.StreamResponse, token: VerifiedToken, raw: str
) -> None:
    """The token as an HttpOnly cookie that lives as long as the token does."""
    secure = request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=max(0, token.expires_at - int(time.time())),
        path="/",
        httponly=True,
        secure=secure,
        samesite="Strict",
    )
