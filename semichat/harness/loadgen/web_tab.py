"""A "Delivery" tab in Locust's web UI: the delivery table of the run so far.

It uses Locust's documented extension points (its `extend_web_ui` example): the tab and its
table's columns go into the web UI's template arguments, and the rows ride on the
`/stats/requests` answer the page polls every few seconds, as `extended_stats`. The same rows
answer `GET /semichat/delivery` as JSON, for scripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, request
from locust.env import Environment

KEY = "delivery"
TAB = {"title": "Delivery", "key": KEY}
TABLE = {
    "key": KEY,
    "structure": [
        {"key": "figure", "title": "Figure"},
        {"key": "wire", "title": "Wire (per user)"},
        {"key": "view", "title": "User view (per tab)"},
    ],
}


def install(environment: Environment, rows: Callable[[], list[dict[str, Any]]]) -> None:
    """Add the tab to the web UI of `environment`, if it has one."""
    web_ui = environment.web_ui
    if web_ui is None or web_ui.app is None:
        return
    app = web_ui.app
    web_ui.template_args["extended_tabs"] = [TAB]
    web_ui.template_args["extended_tables"] = [TABLE]
    base = getattr(environment.parsed_options, "web_base_path", "") or ""
    stats_path = f"{base}/stats/requests"

    @app.after_request
    def _add_rows(response: Response) -> Response:
        if request.path != stats_path or not response.is_json:
            return response
        data = response.get_json()
        data["extended_stats"] = [{"key": KEY, "data": rows()}]
        response.set_data(json.dumps(data))
        return response

    @app.route(f"{base}/semichat/delivery")
    def _delivery() -> Response:
        return jsonify(rows())
