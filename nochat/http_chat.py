"""REST for the chat model (bots): edit, delete and react without a socket.

Each is the socket frame's twin: the same rules (store/changes.py), the same ack, the
same fan-out, the same `client_id` dedup, and the user's REST send budget (every
room-log write spends from it, like `POST …/messages`). `client_id` travels in the JSON
body of PATCH and in the query string of PUT and DELETE.
"""

from __future__ import annotations

import msgspec
import trio
from quart import Blueprint, Response, request

from . import chat_model, protocol
from .errors import NotFound, RateLimited, ValidationError
from .frames import ack_event
from .http_api import authenticated, decode_body, json_response, services
from .protocol import Change, Delete, Edit, React
from .store import Room, User

blueprint = Blueprint("chat", __name__, url_prefix="/api")

#: Longest search query, in characters; most words in one.
SEARCH_Q_MAX_CHARS = 200
SEARCH_Q_MAX_WORDS = 16
#: Search results per page: default and most.
SEARCH_PAGE = 20
SEARCH_PAGE_MAX = 100


class StatusBody(msgspec.Struct):
    state: str
    text: str = ""


class EditBody(msgspec.Struct):
    text: str
    client_id: str


async def _room(name: str) -> tuple[User, Room]:
    user, _ = await authenticated()
    svc = services()
    wait = svc.throttles.rest_sends.take(user.id, trio.current_time())
    if wait > 0:
        raise RateLimited("too many changes; slow down", retry_after_s=wait)
    return user, await svc.rooms.visible_room(user, name)


def _check_ids(msg_id: str, client_id: str) -> None:
    if not protocol.CLIENT_ID_RE.fullmatch(client_id):
        raise ValidationError("client_id must match [A-Za-z0-9_.:-]{1,64}")
    if not protocol.MESSAGE_ID_RE.fullmatch(msg_id):
        raise ValidationError("id must be a message id")


def _query_client_id() -> str:
    return request.args.get("client_id", "")


async def _apply(user: User, room: Room, change: Change) -> Response:
    _check_ids(change.id, change.client_id)
    svc = services()
    if not isinstance(change, Delete):  # a muted user may still take their words back
        await svc.moderation.require_can_write(user, room)
    req = chat_model.change_request(room, user, change, svc.settings.max_text_chars)
    event = ack_event(await svc.store.append(req), None)
    del event["type"]
    return json_response(event)


@blueprint.get("/users/<name>")
async def user_status(name: str) -> Response:
    """`{name, state, text, last_seen}`: `offline` unless connected (to this node)."""
    await authenticated()
    svc = services()
    user = await svc.store.user_by_name(name)
    if user is None:
        raise NotFound(f"no user {name!r}")
    return json_response(await svc.status.of(user))


@blueprint.put("/me/status")
async def set_status() -> Response:
    """Like the `status` frame: stored, and shown to the rooms the user is in."""
    user, _ = await authenticated()
    body = await decode_body(StatusBody)
    try:
        protocol.require_status(body.state, body.text)
    except protocol.FrameError as exc:
        raise ValidationError(exc.message, code=exc.code) from None
    svc = services()
    await svc.status.set(user, body.state, body.text)
    return json_response(await svc.status.of(user))


@blueprint.get("/search")
async def search() -> Response:
    """Messages the caller can see holding every word of `q`, newest first; `next` is the
    `before` of the next page (null: no more)."""
    user, _ = await authenticated()
    svc = services()
    q = request.args.get("q", "")
    words = q.split()
    if not words or len(q) > SEARCH_Q_MAX_CHARS or len(words) > SEARCH_Q_MAX_WORDS:
        raise ValidationError(
            f"q must hold 1 to {SEARCH_Q_MAX_WORDS} words in at most {SEARCH_Q_MAX_CHARS} "
            "characters"
        )
    name = request.args.get("room")
    room = None if name is None else await svc.rooms.visible_room(user, name)
    before = request.args.get("before")
    if before is not None and not protocol.MESSAGE_ID_RE.fullmatch(before):
        raise ValidationError("before must be a message id")
    raw = request.args.get("limit")
    limit = SEARCH_PAGE if not raw else protocol.parse_count(raw, "limit", 1, SEARCH_PAGE_MAX)
    hits = await svc.store.search(user, q, room=room, before=before, limit=limit)
    more = len(hits) == limit
    return json_response({"results": hits, "next": hits[-1].id if more and hits else None})


@blueprint.patch("/rooms/<room:name>/messages/<msg_id>")
async def edit_message(name: str, msg_id: str) -> Response:
    user, room = await _room(name)
    body = await decode_body(EditBody)
    change = Edit(room=room.name, id=msg_id, text=body.text, client_id=body.client_id)
    return await _apply(user, room, change)


@blueprint.delete("/rooms/<room:name>/messages/<msg_id>")
async def delete_message(name: str, msg_id: str) -> Response:
    user, room = await _room(name)
    return await _apply(user, room, Delete(room=room.name, id=msg_id, client_id=_query_client_id()))


@blueprint.put("/rooms/<room:name>/messages/<msg_id>/reactions/<emoji>")
async def add_reaction(name: str, msg_id: str, emoji: str) -> Response:
    user, room = await _room(name)
    change = React(room=room.name, id=msg_id, emoji=emoji, on=True, client_id=_query_client_id())
    return await _apply(user, room, change)


@blueprint.delete("/rooms/<room:name>/messages/<msg_id>/reactions/<emoji>")
async def remove_reaction(name: str, msg_id: str, emoji: str) -> Response:
    user, room = await _room(name)
    change = React(room=room.name, id=msg_id, emoji=emoji, on=False, client_id=_query_client_id())
    return await _apply(user, room, change)
