"""moto's server on persistent HTTP connections.

Werkzeug's development server, which moto serves on, closes the connection after every
response: each AWS call then costs a TCP connection, a thread and, after the response, a
wait of up to 10 ms to drain what the client might still send. At 100 active chat users that
was a quarter of the embedded backend's samples, and the chat server paid a connect per call too.

Werkzeug closes because it cannot tell where a request's body ends (its `wsgi.input` is the
raw socket). Here the body is bounded by its `Content-Length` and read to its end after the
response, so the next request starts where it should; a chunked body still closes. Written
here, not taken from a library: moto's app is WSGI, and WSGI servers that keep connections
alive (cheroot, waitress, gunicorn) serve from a fixed pool of threads, where every long poll
(up to 20 s) holds one; werkzeug's thread per connection is what moto's long polls need.
"""

from __future__ import annotations

import threading
import time
import types
from typing import Any

from flask import Flask
from moto.moto_server import werkzeug_app
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug import serving
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wsgi import LimitedStream


class _NoDrainSelector:
    """Reports nothing to read: werkzeug's drain after a response (up to 10 ms, then a read
    to the end of the connection) would swallow the next request on a kept connection."""

    def register(self, *_: Any) -> None:
        pass

    def select(self, timeout: float | None = None) -> list[Any]:
        return []

    def close(self) -> None:
        pass


class KeepAliveMotoHandler(MotoRequestHandler):
    """moto's request handler, answering without `Connection: close` when the request's body
    has a known length."""

    keep_alive = False
    # Werkzeug writes the headers and the body apart: on a kept connection, Nagle's algorithm
    # holds the body until the client's delayed ACK of the headers (40 ms a call, measured).
    disable_nagle_algorithm = True

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        length = environ.get("CONTENT_LENGTH", "0") or "0"
        self.keep_alive = not environ.get("wsgi.input_terminated") and length.isdigit()
        if self.keep_alive:
            environ["wsgi.input"] = LimitedStream(self.rfile, int(length))  # type: ignore[arg-type]
        return environ

    def run_wsgi(self) -> None:
        super().run_wsgi()
        body = getattr(self, "environ", {}).get("wsgi.input")
        if isinstance(body, LimitedStream):
            # What the app left unread of this request's body, so the next request line is next.
            body.exhaust()

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self.keep_alive:
            return
        super().send_header(keyword, value)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Werkzeug formats an access line (path, colours, a timestamp) for every call before
        # its logger, set to WARNING in the backend, drops it: 2.5 % of the SQS backend.
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header, formatted once a second rather than once a response.
        global _date_header
        now = int(time.time() if timestamp is None else timestamp)
        second, text = _date_header
        if second != now:
            text = super().date_time_string(now)
            _date_header = (now, text)
        return text


_date_header: tuple[int, str] = (-1, "")


def _backend_app(service: str) -> Flask:
    """moto's app for `service`, without what a browser-facing server needs: Flask's debug
    mode builds a class on every request that reads a body (6.4 % of the DynamoDB backend),
    and CORS headers go on every answer (3 to 6 %). Only the chat server calls this backend."""
    werkzeug_app.DISABLE_GLOBAL_CORS = True
    app = create_backend_app(service)  # type: ignore[arg-type]
    app.debug = False
    return app


def serve_moto(host: str, port: int) -> BaseWSGIServer:
    """moto's app on `host:port`, a thread per connection, served from a daemon thread."""
    # Only `run_wsgi`'s drain uses `serving.selectors`; in this process werkzeug serves moto alone.
    serving.selectors = types.SimpleNamespace(  # type: ignore[assignment]
        DefaultSelector=_NoDrainSelector, EVENT_READ=1
    )
    app = DomainDispatcherApplication(_backend_app)
    server = make_server(host, port, app, threaded=True, request_handler=KeepAliveMotoHandler)
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
    return server
