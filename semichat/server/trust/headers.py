"""Response headers that tell browsers what the widget page may do.

The widget is one page, one script and one stylesheet from this server, with no inline script or
style, so the policy can allow `self` only. Set on every response: a JSON error or an SSE stream
rendered as a page (or framed) is refused just the same.
"""

from __future__ import annotations

from aiohttp import web

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # `?token=` may be in the page's address: never send it on in a Referer.
    "Referrer-Policy": "no-referrer",
    # frame-ancestors for browsers that predate it.
    "X-Frame-Options": "DENY",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
