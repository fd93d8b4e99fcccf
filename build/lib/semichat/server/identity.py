"""Who is calling: the demo identity comes from a header or a cookie, never trusted further."""

from __future__ import annotations

import re

from aiohttp import web

from semichat.server.errors import BadRequest, Unauthorized

USER_HEADER = "x-user-id"
USER_COOKIE = "uid"
USER_ID_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def validate_user_id(value: str, what: str = "user id") -> str:
    if not isinstance(value, str) or not USER_ID_RE.fullmatch(value):
        raise BadRequest(f"{what} must be 1 to 64 characters of [A-Za-z0-9_.@-]")
    return value


def current_user(request: web.Request) -> str:
    """The caller's user id: header `x-user-id`, else cookie `uid`; 401 if neither."""
    value = request.headers.get(USER_HEADER)
    if value is None:
        value = request.cookies.get(USER_COOKIE)
    if value is None or value == "":
        raise Unauthorized("missing identity: send the x-user-id header or the uid cookie")
    return validate_user_id(value)
