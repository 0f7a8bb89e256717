"""REST for members' own accounts and owners' rooms: password change, account deletion,
the password-reset link's endpoint, removing a member and handing a room over (the
actions are nochat/admin.py's; docs/PROTOCOL.md, "Admin API")."""

from __future__ import annotations

import msgspec
from quart import Blueprint, Response

from .errors import ValidationError
from .http_api import (
    PASSWORD_CHARS,
    authenticated,
    decode_body,
    json_response,
    require_json_from_allowed_origin,
    services,
)
from .http_rooms import members_json, owner_name, room_json

blueprint = Blueprint("account", __name__, url_prefix="/api")


class PasswordChange(msgspec.Struct):
    old: str
    new: str


class PasswordOnly(msgspec.Struct):
    password: str


class ResetBody(msgspec.Struct):
    token: str
    password: str


class OwnerBody(msgspec.Struct):
    name: str


def _check_password(password: str) -> None:
    if not PASSWORD_CHARS[0] <= len(password) <= PASSWORD_CHARS[1]:
        raise ValidationError("password must be 8 to 1024 characters")


def _empty() -> Response:
    return Response(b"", status=204)


@blueprint.put("/me/password")
async def change_password() -> Response:
    """The password changes; every other session ends (sockets 4001), this one stays."""
    user, session = await authenticated()
    body = await decode_body(PasswordChange)
    _check_password(body.new)
    await services().admin.change_password(user, session, body.old, body.new)
    return _empty()


@blueprint.delete("/me")
async def delete_me() -> Response:
    user, _ = await authenticated()
    body = await decode_body(PasswordOnly)
    await services().admin.delete_account(user, body.password)
    return _empty()


@blueprint.post("/password-reset")
async def password_reset() -> Response:
    """A reset link's token and a new password (no session: the link is the credential)."""
    require_json_from_allowed_origin()
    body = await decode_body(ResetBody)
    _check_password(body.password)
    if not 0 < len(body.token) <= 128:
        raise ValidationError("not a reset token", code="invalid_token")
    await services().admin.reset_password(body.token, body.password)
    return _empty()


@blueprint.delete("/rooms/<room:name>/members/<member>")
async def remove_member(name: str, member: str) -> Response:
    user, _ = await authenticated()
    room = await services().admin.remove_member(user, name, member)
    return json_response(await members_json(room))


@blueprint.post("/rooms/<room:name>/owner")
async def hand_over(name: str) -> Response:
    user, _ = await authenticated()
    body = await decode_body(OwnerBody)
    room = await services().admin.hand_over(user, name, body.name)
    return json_response({**room_json(room), "owner": await owner_name(room)})
