"""Trust: who a request is (demo identity, HS256 or JWKS tokens, the session cookie), whether
it may come from where it does (CSRF, security headers), and how much one user or the process
may ask for (send rates, stream slots). Other parts use only the names below."""

from semichat.server.trust.auth import RequestGuard, make_authenticator, set_session_cookie
from semichat.server.trust.capacity import StreamCap, raise_open_files_limit, stream_cap
from semichat.server.trust.headers import add_security_headers
from semichat.server.trust.limits import SendLimiter, StreamSlots
from semichat.server.trust.tokens import DEFAULT_TTL_S, TokenConfigError, issue_token

__all__ = [
    "DEFAULT_TTL_S",
    "RequestGuard",
    "SendLimiter",
    "StreamCap",
    "StreamSlots",
    "TokenConfigError",
    "add_security_headers",
    "issue_token",
    "make_authenticator",
    "raise_open_files_limit",
    "set_session_cookie",
    "stream_cap",
]
