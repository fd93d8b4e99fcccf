"""User ids: what one looks like. Who is calling is `auth.py`'s question."""

from __future__ import annotations

import re

from semichat.server.errors import BadRequest

USER_HEADER = "x-user-id"
USER_COOKIE = "uid"
USER_ID_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def validate_user_id(value: str, what: str = "user id") -> str:
    if not isinstance(value, str) or not USER_ID_RE.fullmatch(value):
        raise BadRequest(f"{what} must be 1 to 64 characters of [A-Za-z0-9_.@-]")
    return value
