"""The REST API of rooms: the room list, creating a room, history, posting a message,
members of a private room, direct conversations (the account and session routes, and the
helpers every route uses, are in http_api.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import trio
from quart import Blueprint, Response, request

from . import events, protocol, room_push
from .errors import Forbidden, NoChatError, NotFound, RateLimited, ValidationError
from .frames import ack_event
from .http_api import authenticated, decode_body, json_response, services
from .store import AppendRequest, Room, RoomView

blueprint = Blueprint("rooms", __name__, url_prefix="/api")

DEFAULT_PAGE = 50
#: Public rooms one is not in, per page of GET /api/rooms: by default, and at most.
ROOMS_PAGE_DEFAULT = 100
ROOMS_PAGE_MAX = 500


class NewRoom(msgspec.Struct):
    name: str
    private: bool = False


class NewMessage(msgspec.Struct):
    text: str
    client_id: str
    reply_to: str | None = None
    attachments: list[str] = []


class UserRef(msgspec.Struct):
    user: str


def room_json(room: Room | RoomView, *, member: bool = True) -> dict[str, Any]:
    if isinstance(room, RoomView):
        return msgspec.structs.asdict(room)
    return {
        "name": room.name,
        "private": room.private,
        "dm": room.dm,
        "member": member,
        "head_seq": room.head_seq,
        "last_read": 0,
        "unread": 0,
        "mentions": 0,
    }


async def owner_name(room: Room) -> str | None:
    """Who manages a private room's members: a name; None for public rooms and DMs, where
    nobody does, and for a room whose owner's account is gone."""
    if not room.private or room.dm or room.owner_id is None:
        return None
    found = await services().store.user_by_id(room.owner_id)
    return found.name if found is not None else None


async def members_json(room: Room) -> dict[str, Any]:
    """`{members, owner}`: the answer of every route that lists or changes members."""
    return {"members": await services().store.members(room), "owner": await owner_name(room)}


# ---- rooms -------------------------------------------------------------------------------


@blueprint.get("/rooms")
async def list_rooms() -> Response:
    """Every room the caller is a member of (first page), then public rooms by name.

    A chat user expects their sidebar to hold every room they are in, however many
    public rooms others made: those are all on the first page, never cut by `limit`.
    Public rooms they have not joined come `limit` at a time (`next` is the cursor).
    """
    user, _ = await authenticated()
    after = request.args.get("after") or None
    if after is not None and not protocol.valid_room(after):
        raise ValidationError("after must be a room name")
    limit = _int_arg("limit", 1, ROOMS_PAGE_MAX) or ROOMS_PAGE_DEFAULT
    rooms, cursor = await services().store.rooms_for(user, after=after, limit=limit)
    return json_response({"rooms": rooms, "next": cursor})


@blueprint.post("/rooms")
async def create_room() -> Response:
    user, _ = await authenticated()
    body = await decode_body(NewRoom)
    if not protocol.valid_room(body.name) or body.name.startswith("dm-"):
        raise ValidationError(
            "room names are [a-z0-9][a-z0-9_-]{0,63} and do not start with dm-",
            code="invalid_room",
        )
    svc = services()
    # Every attempt counts, a taken name too: that bounds how fast names can be probed.
    wait = svc.throttles.room_creations.spend(f"user:{user.id}", trio.current_time())
    if wait > 0:
        raise RateLimited("too many rooms created this hour", retry_after_s=wait)
    room = await svc.store.create_room(
        body.name,
        private=body.private,
        owner=user,
        max_owned=svc.settings.max_rooms_per_user,
    )
    svc.rooms.room_made(room, user)
    made = RoomView(room.name, room.private, room.dm, True, 0, 0, 0)
    room_push.announce(svc, made, user.name, created=True)
    return json_response(room_json(room), 201)


def _int_arg(name: str, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    return protocol.parse_count(raw, name, low, high)


# Room names take the `room` converter (RoomConverter): Hypercorn hands over the path
# percent-decoded, so `general%2F..%2Fx` or `%2Fetc%2Fpasswd` arrive with slashes and
# must reach visible_room (→ 404), not fall through to another route (405).
@blueprint.get("/rooms/<room:name>/messages")
async def history(name: str) -> Response:
    user, _ = await authenticated()
    svc = services()
    room = await svc.rooms.visible_room(user, name)
    before = _int_arg("before", 0, protocol.MAX_SEQ)
    after = _int_arg("after", 0, protocol.MAX_SEQ)
    limit = _int_arg("limit", 1, svc.settings.history_page_max) or DEFAULT_PAGE
    if before is not None and after is not None:
        raise ValidationError("give before or after, not both")
    messages = await svc.store.history(room, before=before, after=after, limit=limit)
    head = await svc.store.head_seq(room)
    return json_response(
        {
            "messages": [events.history_message(m) for m in messages],
            "head_seq": head,
            "epoch": svc.store.epoch,
        }
    )


@blueprint.post("/rooms/<room:name>/messages")
async def post_message(name: str) -> Response:
    user, _ = await authenticated()
    svc = services()
    wait = svc.throttles.rest_sends.take(user.id, trio.current_time())
    if wait > 0:
        raise RateLimited("too many messages; slow down", retry_after_s=wait)
    body = await decode_body(NewMessage)
    room = await svc.rooms.visible_room(user, name)
    await svc.moderation.require_can_write(user, room)
    protocol.require_text(
        body.text, svc.settings.max_text_chars, may_be_empty=bool(body.attachments)
    )
    if not protocol.CLIENT_ID_RE.fullmatch(body.client_id):
        raise ValidationError("client_id must match [A-Za-z0-9_.:-]{1,64}")
    if body.reply_to is not None and not protocol.MESSAGE_ID_RE.fullmatch(body.reply_to):
        raise ValidationError("reply_to must be a message id")
    attachments = await svc.files.attach(user, room, body.attachments, body.client_id)
    request = AppendRequest(
        room, user, body.text, body.client_id, reply_to=body.reply_to, attachments=attachments
    )
    try:
        ack = await svc.store.append(request)
    except NoChatError:
        await svc.files.refused(request)
        raise
    event = ack_event(ack, None)
    del event["type"]
    return json_response(event)


@blueprint.get("/rooms/<room:name>/members")
async def list_members(name: str) -> Response:
    user, _ = await authenticated()
    svc = services()
    room = await svc.rooms.visible_room(user, name)
    return json_response(await members_json(room))


@blueprint.post("/rooms/<room:name>/members")
async def add_member(name: str) -> Response:
    user, _ = await authenticated()
    svc = services()
    body = await decode_body(UserRef)
    room = await svc.rooms.visible_room(user, name)
    if not room.private:
        raise ValidationError("public rooms have no member list to add to", code="not_private")
    if room.owner_id != user.id:
        raise Forbidden("only the room's owner adds members")
    other = await svc.store.user_by_name(body.user)
    if other is None:
        raise NotFound(f"no user {body.user!r}")
    await svc.rooms.ensure_member(room, other)
    view = await room_push.view_for(svc.store, room, other)
    room_push.announce(svc, view, other.name, created=False)
    return json_response(await members_json(room))


@blueprint.post("/dms")
async def open_dm() -> Response:
    user, _ = await authenticated()
    svc = services()
    body = await decode_body(UserRef)
    other = await svc.store.user_by_name(body.user)
    if other is None:
        raise NotFound(f"no user {body.user!r}")
    if other.id == user.id:
        raise ValidationError("a direct conversation needs another user")
    room = await svc.store.open_dm(user, other)
    svc.rooms.room_made(room, user, other)
    view = await room_push.view_for(svc.store, room, other)
    room_push.announce(svc, view, other.name, created=False)
    return json_response(room_json(msgspec.structs.replace(room, head_seq=view.head_seq)))
