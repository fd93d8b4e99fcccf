"""The embedded backend keeps a connection open between requests
(`semichat/emulator/patches/keepalive.py`): each request on it is read whole and answered,
whatever the one before left unread."""

from __future__ import annotations

import email.utils
import http.client
import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

LIST_TABLES = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261129/us-east-1/dynamodb/aws4_request",
}


def _connect(endpoint: str) -> http.client.HTTPConnection:
    url = urlsplit(endpoint)
    return http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)


def _list_tables(conn: http.client.HTTPConnection) -> tuple[http.client.HTTPResponse, object]:
    conn.request("POST", "/", body=b"{}", headers=LIST_TABLES)
    response = conn.getresponse()
    return response, json.loads(response.read())


def test_requests_share_one_connection(embedded_endpoint: str) -> None:
    conn = _connect(embedded_endpoint)
    try:
        first, tables = _list_tables(conn)
        sock = conn.sock
        assert first.status == 200 and first.getheader("Connection") != "close"
        assert "semichat-Messages" in str(tables)  # the backend's own tables: moto answered
        for _ in range(3):
            again, same = _list_tables(conn)
            assert (again.status, same) == (200, tables)
        # http.client drops its socket when an answer says close: the first one is still in use.
        assert conn.sock is sock is not None
    finally:
        conn.close()


def test_a_body_the_app_left_unread_does_not_become_the_next_request(
    embedded_endpoint: str,
) -> None:
    conn = _connect(embedded_endpoint)
    try:
        # moto's dashboard data ignores a request body; it must still be consumed.
        unread = b'{"not": "a request line"}' * 100
        conn.request("GET", "/moto-api/data.json", body=unread)
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200
        kept = conn.sock
        after, _ = _list_tables(conn)
        assert after.status == 200 and conn.sock is kept is not None
    finally:
        conn.close()


def test_a_chunked_body_closes_the_connection(embedded_endpoint: str) -> None:
    conn = _connect(embedded_endpoint)
    try:
        conn.request("POST", "/", body=iter([b"{", b"}"]), headers=LIST_TABLES)
        answer = conn.getresponse()
        assert json.loads(answer.read())["TableNames"]
        # Its end is found by werkzeug's own reading, not a length: the old way, one request.
        assert answer.getheader("Connection") == "close"
    finally:
        conn.close()


def test_answers_carry_the_current_date_and_a_failed_call_keeps_the_connection(
    embedded_endpoint: str,
) -> None:
    """The Date header is formatted once a second, and moto's app runs without Flask's debug
    mode (`moto_keepalive.py`): dates must still be current, and a call moto fails on (an
    unknown action: a 500, as from moto's own server) must answer whole on a kept connection."""
    conn = _connect(embedded_endpoint)
    try:
        answer, _ = _list_tables(conn)
        sent = email.utils.parsedate_to_datetime(answer.getheader("Date") or "")
        assert abs((sent - datetime.now(UTC)).total_seconds()) < 60
        unknown = LIST_TABLES | {"X-Amz-Target": "DynamoDB_20120810.NoSuchThing"}
        conn.request("POST", "/", body=b"{}", headers=unknown)
        failed = conn.getresponse()
        failed.read()
        assert failed.status == 500
        again, tables = _list_tables(conn)
        assert again.status == 200 and "semichat-Messages" in str(tables)
    finally:
        conn.close()
