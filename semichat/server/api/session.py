"""`/api/session`: the widget's sign-in in token mode, and who the page is signed in as.

- `POST /api/session` with `Authorization: Bearer <token>` verifies the token and sets it as the
  HttpOnly `session` cookie, which EventSource then sends. The widget does this once when opened as
  `/?token=...` and removes the token from the address bar.
- `GET /api/session` answers `{"auth", "userId", "supportConversationId"}` (userId null when not
  signed in), so the page knows the mode and its user without reading an HttpOnly cookie.
"""

from __future__ import annotations

from aiohttp import web

from semichat.server.api.appkeys import GUARD
from semichat.server.api.logs import annotate
from semichat.server.chat.service import support_conversation_id
from semichat.server.errors import BadRequest, Unauthorized
from semichat.server.trust import set_session_cookie

routes = web.RouteTableDef()


def _session_json(mode: str, user_id: str | None) -> dict[str, str | None]:
    return {
        "auth": mode,
        "userId": user_id,
        "supportConversationId": support_conversation_id(user_id) if user_id else None,
    }


@routes.get("/api/session")
async def whoami(request: web.Request) -> web.Response:
    guard = request.app[GUARD]
    try:
        identity = await guard.identify(request)
    except (Unauthorized, BadRequest):
        identity = None
    user_id = identity.user_id if identity else None
    annotate(request, userId=user_id)
    return web.json_response(_session_json(guard.mode, user_id))


@routes.post("/api/session")
async def sign_in(request: web.Request) -> web.Response:
    guard = request.app[GUARD]
    token, raw = await guard.bearer_token(request)
    annotate(request, userId=token.user_id)
    response = web.json_response(_session_json(guard.mode, token.user_id))
    set_session_cookie(request, response, token, raw)
    return response
