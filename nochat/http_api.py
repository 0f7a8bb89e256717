"""The REST API: accounts, sessions, rooms, history, sending without a socket, stats."""

from __future__ import annotations

import re
from typing import Any, TypeVar, cast

import msgspec
import trio
from quart import Blueprint, Response, current_app, request
from werkzeug.datastructures import Headers
from werkzeug.routing import PathConverter

from . import protocol
from .auth import SESSION_COOKIE, bearer_from_header, origin_allowed
from .errors import (
    AuthError,
    Forbidden,
    NoChatError,
    Overloaded,
    ProtocolError,
    RateLimited,
    UnsupportedMediaType,
    ValidationError,
)
from .limits import Outcome
from .services import Services
from .store import Session, User

blueprint = Blueprint("api", __name__, url_prefix="/api")
T = TypeVar("T")

USER_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
PASSWORD_CHARS = (8, 1024)


class Credentials(msgspec.Struct):
    name: str
    password: str


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
