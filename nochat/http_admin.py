"""REST for admins: /api/admin/… (docs/PROTOCOL.md, "Admin API"). Every route checks,
at every call, that the caller is an admin (401 without a session, 403 for a member);
the actions themselves are nochat/admin.py's."""

from __future__ import annotations

import msgspec
from quart import Blueprint, Response, request

from . import protocol
from .admin import Admin
from .errors import NotFound, ValidationError
from .http_api import authenticated, decode_body, json_response, services
from .store import Account

blueprint = Blueprint("admin", __name__, url_prefix="/api/admin")

PAGE_DEFAULT = 50
PAGE_MAX = 200
#: Longest search text for users and rooms.
Q_MAX_CHARS = 64
#: A connection id: `<node>.<n>` (sessions.ConnectionRegistry.new_id).
CONN_ID_MAX_CHARS = 40


class MuteBody(msgspec.Struct):
    seconds: int


async def _admin() -> tuple[Admin, Account]:
    user, _ = await authenticated()
    admin = services().admin
    return admin, await admin.require_admin(user)


def _page() -> tuple[str, str | None, int]:
    q = request.args.get("q", "")
    if len(q) > Q_MAX_CHARS:
        raise ValidationError(f"q is at most {Q_MAX_CHARS} characters")
    after = request.args.get("after") or None
    raw = request.args.get("limit")
    limit = PAGE_DEFAULT if not raw else protocol.parse_count(raw, "limit", 1, PAGE_MAX)
    return q, after, limit


def _empty() -> Response:
    return Response(b"", status=204)


# ---- users -------------------------------------------------------------------------------


@blueprint.get("/users")
async def users() -> Response:
    admin, _ = await _admin()
    q, after, limit = _page()
    found = await services().store.accounts(q, after=after, limit=limit)
    listed = [await admin.user_json(a) for a in found]
    more = len(found) == limit
    return json_response({"users": listed, "next": found[-1].name if more and found else None})


@blueprint.get("/users/<name>")
async def user(name: str) -> Response:
    admin, _ = await _admin()
    return json_response(await admin.user_detail(name))


@blueprint.post("/users/<name>/<any(ban, disable, signout):action>")
async def shut(name: str, action: str) -> Response:
    admin, actor = await _admin()
    return json_response(await admin.shut(actor, name, action))


@blueprint.post("/users/<name>/<any(unban, enable):action>")
async def reopen(name: str, action: str) -> Response:
    admin, actor = await _admin()
    return json_response(await admin.reopen(actor, name, action))


@blueprint.post("/users/<name>/mute")
async def mute(name: str) -> Response:
    admin, actor = await _admin()
    body = await decode_body(MuteBody)
    return json_response(await admin.mute(actor, name, body.seconds))


@blueprint.post("/users/<name>/unmute")
async def unmute(name: str) -> Response:
    admin, actor = await _admin()
    return json_response(await admin.mute(actor, name, None))


@blueprint.post("/users/<name>/reset-password")
async def reset_password(name: str) -> Response:
    admin, actor = await _admin()
    return json_response(await admin.reset_link(actor, name))


# ---- rooms -------------------------------------------------------------------------------


@blueprint.get("/rooms")
async def rooms() -> Response:
    await _admin()
    q, after, limit = _page()
    found = await services().store.admin_rooms(q, after=after, limit=limit)
    more = len(found) == limit
    return json_response({"rooms": found, "next": found[-1].name if more and found else None})


@blueprint.get("/rooms/<room:name>/members")
async def members(name: str) -> Response:
    admin, _ = await _admin()
    room = await admin.room(name)
    return json_response({"members": await services().store.members(room)})


async def _room_answer(admin: Admin, name: str) -> Response:
    found = await services().store.admin_room(name)
    if found is None:
        raise NotFound(f"no room {name!r}")
    return json_response(found)


@blueprint.post("/rooms/<room:name>/<any(archive, unarchive):action>")
async def archive(name: str, action: str) -> Response:
    admin, actor = await _admin()
    await admin.change_room(actor, name, action)
    return await _room_answer(admin, name)


@blueprint.post("/rooms/<room:name>/private")
async def make_private(name: str) -> Response:
    admin, actor = await _admin()
    await admin.change_room(actor, name, "make_private")
    return await _room_answer(admin, name)


@blueprint.delete("/rooms/<room:name>")
async def delete_room(name: str) -> Response:
    admin, actor = await _admin()
    await admin.change_room(actor, name, "delete_room")
    return _empty()


@blueprint.delete("/rooms/<room:name>/messages/<msg_id>")
async def delete_message(name: str, msg_id: str) -> Response:
    admin, actor = await _admin()
    if not protocol.MESSAGE_ID_RE.fullmatch(msg_id):
        raise ValidationError("id must be a message id")
    client_id = request.args.get("client_id") or None
    if client_id is not None and not protocol.CLIENT_ID_RE.fullmatch(client_id):
        raise ValidationError("client_id must match [A-Za-z0-9_.:-]{1,64}")
    ack = await admin.delete_message(actor, name, msg_id, client_id)
    return json_response(ack)


# ---- connections, audit, stats ----------------------------------------------------------


@blueprint.get("/connections")
async def connections() -> Response:
    await _admin()
    return json_response({"connections": await services().census.everywhere()})


@blueprint.delete("/connections/<conn_id>")
async def disconnect(conn_id: str) -> Response:
    admin, actor = await _admin()
    if len(conn_id) > CONN_ID_MAX_CHARS or not conn_id.replace(".", "").isalnum():
        raise ValidationError("not a connection id")
    await admin.disconnect(actor, conn_id)
    return _empty()


@blueprint.get("/audit")
async def audit() -> Response:
    await _admin()
    raw_before = request.args.get("before")
    before = None if not raw_before else protocol.parse_count(raw_before, "before", 1, 2**62)
    raw = request.args.get("limit")
    limit = PAGE_DEFAULT if not raw else protocol.parse_count(raw, "limit", 1, PAGE_MAX)
    found = await services().store.audit_page(before=before, limit=limit)
    entries = [
        {**msgspec.structs.asdict(e), "detail": msgspec.json.decode(e.detail)} for e in found
    ]
    more = len(found) == limit
    return json_response({"entries": entries, "next": found[-1].id if more and found else None})


@blueprint.get("/stats")
async def stats() -> Response:
    await _admin()
    return json_response(services().stats.snapshot())
