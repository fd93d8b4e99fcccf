"""Token mode: who may call, with what credential, and which writes a cookie may carry."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import ClientTimeout, web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from semichat.cli import UserError, check_demo_auth_address, main
from semichat.server.api.app import create_app
from semichat.server.trust.tokens import TokenConfigError
from semichat.settings import Settings

from .auth_helpers import SECRET, bearer, make_token, token_settings
from .sse_helpers import next_events

Client = Any
STREAM_TIMEOUT = ClientTimeout(total=None, sock_read=30)


@pytest.fixture
async def token_client(aiohttp_client: Any, settings: Settings) -> Client:
    app = create_app(token_settings(settings))
    return await aiohttp_client(app, server_kwargs={"handler_cancellation": True})


def origin(client: Client) -> str:
    return str(client.make_url("/")).rstrip("/")


async def get_history(client: Client, conversation: str = "support:alice", **kw: Any) -> Any:
    return await client.get("/api/chat/history", params={"conversationId": conversation}, **kw)


async def post_send(client: Client, conversation: str, text: str, key: str, **kw: Any) -> Any:
    body = {"conversationId": conversation, "text": text, "idempotencyKey": key}
    return await client.post("/api/chat/send", json=body, **kw)


def tampered(token: str) -> str:
    """The same signature over a payload that now says `bob`."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "bob"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


BAD_TOKENS = {
    "malformed": lambda: "not-a-jwt",
    "bad signature": lambda: make_token(key="another-secret-" + "y" * 40),
    "tampered": lambda: tampered(make_token("alice")),
    "expired": lambda: make_token(ttl=-120),
    "alg none": lambda: make_token(key=None, algorithm="none"),
    "wrong alg HS512": lambda: make_token(algorithm="HS512"),
    "no exp": lambda: jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"),
    "no sub": lambda: make_token(sub=None),
    "unexpected audience": lambda: make_token(aud="someone-else"),
    "user id not valid": lambda: make_token("alice smith"),
}


@pytest.mark.parametrize("via", ["bearer", "cookie"])
@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_tokens_get_401_json(token_client: Client, case: str, via: str) -> None:
    token = BAD_TOKENS[case]()
    kw = {"headers": bearer(token)} if via == "bearer" else {"cookies": {"session": token}}
    resp = await get_history(token_client, **kw)
    assert resp.status == 401
    assert "error" in await resp.json()
    assert token not in (await resp.text())


@pytest.mark.parametrize(
    "headers",
    [{}, {"x-user-id": "alice"}, {"Authorization": "Basic YWxpY2U6"}, {"Authorization": "Bearer"}],
    ids=["nothing", "bare x-user-id", "basic auth", "empty bearer"],
)
async def test_token_mode_refuses_claimed_identities(
    token_client: Client, headers: dict[str, str]
) -> None:
    resp = await get_history(token_client, headers=headers, cookies={"uid": "alice"})
    assert resp.status == 401
    assert "error" in await resp.json()
    limits = (await (await token_client.get("/metrics")).json())["limits"]
    assert limits["auth_rejected"] == 1


async def test_audience_and_issuer_are_checked(aiohttp_client: Any, settings: Settings) -> None:
    app = create_app(token_settings(settings, auth_audience="semichat", auth_issuer="https://idp"))
    client = await aiohttp_client(app)
    good = make_token(aud="semichat", iss="https://idp")
    assert (await get_history(client, headers=bearer(good))).status == 200
    for token in (
        make_token(aud="other", iss="https://idp"),
        make_token(iss="https://idp"),  # no audience at all
        make_token(aud="semichat", iss="https://evil"),
    ):
        assert (await get_history(client, headers=bearer(token))).status == 401


async def test_history_and_stream_accept_bearer_and_cookie(token_client: Client) -> None:
    token = make_token("alice")
    for kw in ({"headers": bearer(token)}, {"cookies": {"session": token}}):
        assert (await get_history(token_client, **kw)).status == 200
        stream = await token_client.get("/api/chat/stream", timeout=STREAM_TIMEOUT, **kw)
        assert stream.status == 200
        await asyncio.wait_for(next_events(stream, 1, event="ready"), 10)
        stream.close()


async def test_sign_in_sets_an_httponly_strict_cookie(token_client: Client) -> None:
    token = make_token("alice")
    resp = await token_client.post("/api/session", headers=bearer(token))
    assert resp.status == 200
    assert await resp.json() == {
        "auth": "token",
        "userId": "alice",
        "supportConversationId": "support:alice",
    }
    cookie = resp.cookies["session"]
    assert cookie.value == token
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
    assert 590 <= int(cookie["max-age"]) <= 600
    # The client's jar now carries it: who am I, and the stream, need nothing else.
    assert (await (await token_client.get("/api/session")).json())["userId"] == "alice"
    behind_tls = await token_client.post(
        "/api/session", headers={**bearer(token), "X-Forwarded-Proto": "https"}
    )
    assert behind_tls.cookies["session"]["secure"]
    bad = await token_client.post("/api/session", headers=bearer(make_token(ttl=-120)))
    assert bad.status == 401


async def test_cookie_writes_must_be_same_origin_json(token_client: Client) -> None:
    cookie = {"session": make_token("alice")}
    own = origin(token_client)
    refused = [
        {"Origin": "https://evil.example"},
        {},  # no Origin at all
        {"Origin": "null"},
    ]
    for i, headers in enumerate(refused):
        resp = await post_send(
            token_client, "support:alice", "hi", f"k{i}", headers=headers, cookies=cookie
        )
        assert resp.status == 403, headers
        assert "error" in await resp.json()
    form = await token_client.post(
        "/api/chat/send",
        data=b'{"conversationId": "support:alice", "text": "hi", "idempotencyKey": "kf"}',
        headers={"Origin": own, "Content-Type": "text/plain"},
        cookies=cookie,
    )
    assert form.status == 403
    ok = await post_send(
        token_client, "support:alice", "hi", "k-ok", headers={"Origin": own}, cookies=cookie
    )
    assert ok.status == 201
    # A header credential is never sent by a browser on its own: no Origin needed.
    by_bearer = await post_send(
        token_client, "support:alice", "hi", "k-b", headers=bearer(make_token())
    )
    assert by_bearer.status == 201
    limits = (await (await token_client.get("/metrics")).json())["limits"]
    assert limits["csrf_rejected"] == 4


async def test_allowed_origins_replace_the_default(aiohttp_client: Any, settings: Settings) -> None:
    app = create_app(token_settings(settings, allowed_origins="https://chat.example.com/"))
    client = await aiohttp_client(app)
    cookie = {"session": make_token("alice")}
    listed = await post_send(
        client,
        "support:alice",
        "a",
        "k1",
        headers={"Origin": "https://chat.example.com"},
        cookies=cookie,
    )
    assert listed.status == 201
    own = await post_send(
        client, "support:alice", "b", "k2", headers={"Origin": origin(client)}, cookies=cookie
    )
    assert own.status == 403


async def test_demo_cookie_writes_are_checked_too(client: Client) -> None:
    resp = await post_send(
        client,
        "support-demo",
        "hi",
        "k1",
        headers={"Origin": "https://evil.example"},
        cookies={"uid": "alice"},
    )
    assert resp.status == 403


async def test_each_user_has_an_own_support_conversation(token_client: Client) -> None:
    alice, bob, support = (bearer(make_token(u)) for u in ("alice", "bob", "support"))
    sent = await post_send(token_client, "support:alice", "my invoice", "k1", headers=alice)
    assert sent.status == 201
    assert (await get_history(token_client, "support:alice", headers=bob)).status == 403
    assert (await post_send(token_client, "support:alice", "hi", "k2", headers=bob)).status == 403
    seen = await get_history(token_client, "support:alice", headers=support)
    assert [m["text"] for m in (await seen.json())["messages"]] == ["my invoice"]
    reply = await post_send(token_client, "support:alice", "on it", "k3", headers=support)
    assert reply.status == 201
    assert (await get_history(token_client, "support:bob", headers=bob)).status == 200
    # The shared demo room does not exist where identities are verified.
    assert (await get_history(token_client, "support-demo", headers=bob)).status == 404


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(claims: dict[str, Any], public_pem: bytes) -> str:
    """An HS256 token keyed with the provider's public key (PyJWT refuses to make one)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


async def test_jwks_verification(
    aiohttp_client: Any, aiohttp_server: Any, settings: Settings
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    keys = {"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}

    async def jwks(_: web.Request) -> web.Response:
        return web.json_response(keys)

    idp_app = web.Application()
    idp_app.router.add_get("/jwks.json", jwks)
    idp = await aiohttp_server(idp_app)
    jwks_url = str(idp.make_url("/jwks.json"))
    client = await aiohttp_client(
        create_app(replace(settings, auth="token", auth_jwks_url=jwks_url))
    )
    claims = {"sub": "alice", "exp": int(time.time()) + 600}

    good = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    assert (await get_history(client, headers=bearer(good))).status == 200
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "k1"})
    assert (await get_history(client, headers=bearer(forged))).status == 401
    unknown_kid = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k9"})
    assert (await get_history(client, headers=bearer(unknown_kid))).status == 401
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    confused = hs256_with_public_key(claims, public_pem)
    assert (await get_history(client, headers=bearer(confused))).status == 401


def test_token_mode_needs_a_key(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(TokenConfigError):
        create_app(replace(settings, auth="token"))
    short = tmp_path / "short"
    short.write_text("too short\n")
    with pytest.raises(TokenConfigError, match="32 bytes"):
        create_app(replace(settings, auth="token", auth_secret_file=str(short)))


def test_token_command_prints_a_verifiable_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    main(["token", "alice", "--ttl", "60", "--auth-secret-file", str(secret)])
    claims = jwt.decode(capsys.readouterr().out.strip(), SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["exp"] - claims["iat"] == 60
    with pytest.raises(SystemExit, match="user id"):
        main(["token", "a b", "--auth-secret-file", str(secret)])


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_demo_mode_stays_on_loopback(host: str) -> None:
    with pytest.raises(UserError, match="insecure-demo-auth-on-public-address"):
        check_demo_auth_address(Settings(host=host))
    check_demo_auth_address(Settings(host=host, insecure_demo_auth_on_public_address=True))
    check_demo_auth_address(Settings(host=host, auth="token"))
    for loopback in ("127.0.0.1", "::1", "localhost"):
        check_demo_auth_address(Settings(host=loopback))


def test_serve_refuses_a_public_address_in_demo_mode() -> None:
    with pytest.raises(SystemExit, match="loopback"):
        main(["serve", "--host", "0.0.0.0", "--auth", "demo"])
