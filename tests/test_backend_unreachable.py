"""A backend that does not take the connection is a 503 with `Retry-After`, never a 500."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

from semichat.server.errors import REFUSALS, error_middleware


async def test_a_backend_connect_failure_is_a_json_503(aiohttp_client: Any) -> None:
    async def connect_timeout(request: web.Request) -> web.Response:
        raise ConnectTimeoutError(endpoint_url="http://127.0.0.1:1/")

    async def refused(request: web.Request) -> web.Response:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1/")

    app = web.Application(middlewares=[error_middleware])
    app[REFUSALS] = Counter()
    app.router.add_get("/timeout", connect_timeout)
    app.router.add_get("/refused", refused)
    client = await aiohttp_client(app)
    for path in ("/timeout", "/refused"):
        resp = await client.get(path)
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        assert "error" in await resp.json()
    assert app[REFUSALS]["unreachable"] == 2
