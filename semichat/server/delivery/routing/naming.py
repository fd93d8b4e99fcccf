"""Queue names: SQS allows up to 80 characters of [A-Za-z0-9_-], user ids allow more."""

from __future__ import annotations

import hashlib
import re

MAX_QUEUE_NAME = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_PREFIX_RE = re.compile(r"[A-Za-z0-9_-]{0,60}")
_DIGEST_CHARS = 12


def validate_prefix(prefix: str) -> str:
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError("queue prefix must be at most 60 characters of [A-Za-z0-9_-]")
    return prefix


def user_queue_name(prefix: str, user_id: str, suffix: str = "") -> str:
    """A stable, valid queue name for a user.

    The readable part keeps operators oriented; the digest keeps users apart whose ids differ
    only in characters SQS forbids (`a.b` and `a_b`) or beyond the truncation.
    """
    validate_prefix(prefix)
    digest = hashlib.sha256(user_id.encode()).hexdigest()[:_DIGEST_CHARS]
    room = MAX_QUEUE_NAME - len(prefix) - len(suffix) - len(digest) - 1
    readable = _UNSAFE.sub("_", user_id)[:room]
    return f"{prefix}{readable}-{digest}{suffix}"
