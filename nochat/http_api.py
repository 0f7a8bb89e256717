"""The REST API: accounts, sessions, rooms, history, sending without a socket, stats."""

from __future__ import annotations

import re
from typing import Any, TypeVar, cast

import msgspec
import trio
from quart import Blueprint, Response, current_app, request
from werkzeug.datastructures import Headers
from werkzeug.routing import PathConverter

from . import events, protocol, room_push
from .auth import SESSION_COOKIE, bearer_from_header, origin_allowed
from .errors import (
    AuthError,
    Forbidden,
    NoChatError,
    NotFound,
    Overloaded,
    ProtocolError,
    RateLimited,
    UnsupportedMediaType,
    ValidationError,
)
from .frames import ack_event
from .limits import Outcome
from .services import Services
from .store import AppendRequest, Room, RoomView, Session, User

blueprint = Blueprint("api", __name__, url_prefix="/api")
T = TypeVar("T")

USER_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
PASSWORD_CHARS = (8, 1024)
DEFAULT_PAGE = 50
#: Public rooms one is not in, per page of GET /api/rooms: by default, and at most.
ROOMS_PAGE_DEFAULT = 100
ROOMS_PAGE_MAX = 500


class Credentials(msgspec.Struct):
    name: str
    password: str


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


class RoomConverter(PathConverter):
    """Any text at all, slashes included (even leading); visible_room judges it."""

    regex = ".*?"
    part_isolating = False  # werkzeug would infer True: the regex has no "/" in it


def services() -> Services:
    return cast(Services, current_app.extensions["nochat"])


def json_response(body: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(body), status=status, content_type="application/json")


def error_parts(exc: NoChatError) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and JSON body of an error answer (REST and refused handshakes)."""
    error = {"code": exc.code, "message": exc.message, **exc.details()}
    body = msgspec.json.encode({"error": error})
    headers = [("Content-Type", "application/json")]
    if isinstance(exc, RateLimited | Overloaded):
        headers.append(("Retry-After", str(max(1, round(exc.retry_after_s)))))
    return exc.http_status, headers, body


def error_response(exc: NoChatError) -> Response:
    services().telemetry.refused(exc, request.endpoint or "other")
    status, headers, body = error_parts(exc)
    return Response(body, status=status, headers=Headers(headers))


async def decode_body(kind: type[T]) -> T:
    data = await request.get_data(cache=False, as_text=False)
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"invalid request body: {exc}", code="invalid") from None
    except protocol.UNDECODABLE:
        raise ProtocolError("request body is not valid UTF-8 JSON", code="invalid") from None


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def authenticated() -> tuple[User, Session]:
    """The caller, by bearer token or session cookie.

    A cookie rides along on cross-site requests too, so a cookie-authenticated request
    that changes something must come from an allowed Origin (CSRF defence beside
    SameSite=Lax). Bearer tokens are never sent by a browser on its own.
    """
    token = bearer_from_header(request.headers.get("Authorization"))
    if not token:
        token = request.cookies.get(SESSION_COOKIE)
        if token and request.method not in SAFE_METHODS:
            allowed = services().settings.allowed_origins
            if not origin_allowed(request.headers.get("Origin"), request.host, allowed):
                raise Forbidden(
                    "cookie-authenticated changes need an allowed Origin", code="bad_origin"
                )
    if not token:
        raise AuthError("sign in first")
    return await services().auth.authenticate(token)


def client_address() -> str:
    """The address this request came from, through trusted proxies (nochat/addresses.py)."""
    return services().addresses.of(request.remote_addr, request.headers.get("X-Forwarded-For"))


def client_used_https() -> bool:
    """Whether the client spoke HTTPS: to NoChat, or to a trusted proxy that says so."""
    proto = request.headers.get("X-Forwarded-Proto")
    return services().addresses.scheme(request.remote_addr, request.scheme, proto) == "https"


def require_json_from_allowed_origin() -> None:
    """Login CSRF: a request that sets the session cookie must be JSON (a cross-site form
    or `text/plain` fetch cannot send that without a CORS preflight, which NoChat never
    grants) and, when the browser says where it comes from, from an allowed Origin."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("the body must be application/json")
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(
        origin, request.host, services().settings.allowed_origins
    ):
        raise Forbidden("requests that sign in need an allowed Origin", code="bad_origin")


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


# ---- accounts and sessions ---------------------------------------------------------------


@blueprint.post("/users")
async def register() -> Response:
    require_json_from_allowed_origin()
    body = await decode_body(Credentials)
    if not USER_NAME_RE.fullmatch(body.name):
        raise ValidationError("name must be 1-32 of A-Z a-z 0-9 _ -")
    if not PASSWORD_CHARS[0] <= len(body.password) <= PASSWORD_CHARS[1]:
        raise ValidationError("password must be 8 to 1024 characters")
    svc = services()
    throttle, address = svc.throttles.signup, client_address()
    wait = throttle.retry_after(address, trio.current_time())
    if wait > 0:
        raise RateLimited(
            "too many sign-ups from this address; try again later", retry_after_s=wait
        )
    throttle.begin(address)
    counted = True  # every sign-up counts, taken names too; one never hashed does not
    try:
        user = await svc.auth.register(body.name, body.password)
    except Overloaded:
        counted = False
        raise
    finally:
        throttle.end(address, trio.current_time(), failed=counted)
    return json_response({"id": user.id, "name": user.name}, 201)


@blueprint.post("/sessions")
async def login() -> Response:
    require_json_from_allowed_origin()
    body = await decode_body(Credentials)
    if not USER_NAME_RE.fullmatch(body.name):
        # No such account can exist (the rule is public): no hashing to spend, and no
        # throttle key to keep for an arbitrarily long name.
        raise AuthError("wrong name or password", code="bad_credentials")
    svc = services()
    # Reserved before the (slow) password check: concurrent guesses count while in flight.
    attempt = svc.throttles.login.begin(body.name, client_address(), trio.current_time())
    outcome = Outcome.FAILED  # also when cancelled: a guesser could hang up to go uncounted
    try:
        token, session, user = await svc.auth.login(body.name, body.password, client_address())
        outcome = Outcome.OK
    except Overloaded:
        outcome = Outcome.NOT_TRIED
        raise
    finally:
        attempt.end(trio.current_time(), outcome)
    return _session_response(svc, token, session, user)


@blueprint.post("/sessions/refresh")
async def refresh() -> Response:
    """A fresh token and expiry for the caller's session, without the password."""
    require_json_from_allowed_origin()
    user, session = await authenticated()
    svc = services()
    token, renewed = await svc.auth.refresh(session)
    svc.connections.session_extended(renewed)
    return _session_response(svc, token, renewed, user)


def _session_response(svc: Services, token: str, session: Session, user: User) -> Response:
    response = json_response(
        {
            "token": token,
            "expires_at": session.expires_at_ms,
            "user": {"id": user.id, "name": user.name},
        }
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(svc.settings.token_ttl_s),
        httponly=True,
        samesite="Lax",
        secure=svc.settings.cookie_secure or client_used_https(),
        path="/",
    )
    return response


@blueprint.delete("/sessions")
async def logout() -> Response:
    _, session = await authenticated()
    svc = services()
    await svc.auth.logout(session)
    svc.connections.end_session(session.id)
    # An explicit empty body: Response() with none wraps [] in Quart's iterable body,
    # which runs it through asyncio's executor (RuntimeError under Trio, connection lost).
    response = Response(b"", status=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@blueprint.get("/me")
async def me() -> Response:
    user, _ = await authenticated()
    account = await services().store.account(user.id)
    role = "member" if account is None else account.role
    return json_response({"id": user.id, "name": user.name, "role": role})


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
    return json_response({"members": await svc.store.members(room)})


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
    return json_response({"members": await svc.store.members(room)})


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


@blueprint.get("/stats")
async def stats() -> Response:
    await authenticated()
    svc = services()
    return json_response(
        {
            "online_users": svc.presence.online_users(),
            "connections": svc.hub.connection_count(),
            "rooms": await svc.store.room_count(),
        }
    )
