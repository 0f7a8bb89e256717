"""Abuse on a live server: every kind of bad input gets its documented answer, other
clients go on being served, and the store ends up holding exactly the acked messages.

The tables are in `abuse_cases.py`. Each test runs in an `Arena`: a fresh server, the
abuser `ann`, and the bystander `bob` whose socket joined `general` before anything
happened. `Arena.verify` ends every test: bob's socket, a new socket and REST still
work, and REST history holds each acked message exactly once and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any

import pytest
import trio

from nochat.auth import SESSION_COOKIE
from nochat.store import Session
from nochat.store.sqlite import now_ms

from .abuse_cases import (
    ALL_FRAME_CASES,
    BAD_BODIES,
    BAD_ROOM_NAMES,
    HOSTILE_TEXTS,
    PING,
    SQL,
    Case,
    Wire,
    frame,
)
from .rawsocket import RawSocket, Refused, raw_socket
from .support import STEP_S, Api, HttpError, RunningServer, WsClient, ws_connect

# ---- the arena --------------------------------------------------------------------------------


@dataclass
class Arena:
    server: RunningServer
    api: Api
    ann: Api
    bob: Api
    #: bob's socket, joined to general before any abuse and open through all of it.
    watcher: WsClient
    #: (user, client_id) → what the store must hold for it, from the acks.
    acked: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    rooms: set[str] = field(default_factory=lambda: {"general"})

    def record(self, user: str, ack: dict[str, Any], text: str) -> None:
        """An ack: the store must now hold this message, once (a retry gets the same ack)."""
        assert ack.get("type", "ack") == "ack", ack
        stored = {"room": ack["room"], "seq": ack["seq"], "id": ack["id"], "text": text}
        key = (user, ack["client_id"])
        assert self.acked.setdefault(key, stored) == stored, (key, ack)

    async def send_ok(self, sock: RawSocket, user: str, text: str) -> dict[str, Any]:
        """A valid send over `sock` that must be acked."""
        client_id = uuid.uuid4().hex
        await sock.send_json(
            type="send", room="general", text=text, client_id=client_id, ref=client_id
        )
        ack = await sock.reply()
        assert (ack.get("type"), ack.get("ref")) == ("ack", client_id), ack
        self.record(user, ack, text)
        return ack

    async def verify(self) -> None:
        await self.still_serving()
        await self.store_holds_exactly_the_acks()

    async def still_serving(self) -> None:
        """bob's old socket, a new socket and REST all still work."""
        text = "bob is still served"
        client_id = await self.watcher.say(text)
        self.record("bob", await self.watcher.expect("ack", client_id=client_id), text)
        async with ws_connect(self.server, self.bob.token) as fresh:
            await fresh.join()
            text = "a new socket is served"
            client_id = await fresh.say(text)
            self.record("bob", await fresh.expect("ack", client_id=client_id), text)
        assert (await self.bob.get("/api/me"))["name"] == "bob"

    async def store_holds_exactly_the_acks(self) -> None:
        listed = {room["name"] for room in (await self.bob.get("/api/rooms"))["rooms"]}
        assert listed == self.rooms
        stored: dict[tuple[str, str], dict[str, Any]] = {}
        for room in sorted(self.rooms):
            messages = await history(self.bob, room)
            assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
            for m in messages:
                key = (m["user"], m["client_id"])
                assert key not in stored, f"stored twice: {key}"
                stored[key] = {"room": m["room"], "seq": m["seq"], "id": m["id"], "text": m["text"]}
        assert stored == self.acked
        # And behind REST's back: no message, room or account anywhere else.
        assert await trio.to_thread.run_sync(self._database_rows) == (
            len(self.acked),
            self.rooms,
            {"ann", "bob"},
        )

    def _database_rows(self) -> tuple[int, set[str], set[str]]:
        uri = self.server.settings.db_path.resolve().as_uri() + "?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as db:
            (messages,) = db.execute("SELECT COUNT(*) FROM events").fetchone()
            rooms = {name for (name,) in db.execute("SELECT name FROM rooms")}
            users = {name for (name,) in db.execute("SELECT name FROM users")}
        return int(messages), rooms, users


async def history(api: Api, room: str) -> list[dict[str, Any]]:
    """Every message of `room`, oldest first, paging with `after`."""
    path = f"/api/rooms/{urllib.parse.quote(room, safe='')}/messages?limit=200&after="
    messages: list[dict[str, Any]] = []
    while True:
        page = (await api.get(path + str(messages[-1]["seq"] if messages else 0)))["messages"]
        messages.extend(page)
        if len(page) < 200:
            return messages


@pytest.fixture
async def arena(server: RunningServer, api: Api) -> AsyncIterator[Arena]:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(server, bob.token) as watcher:
        await watcher.join()
        yield Arena(server, api, ann, bob, watcher)


async def rest_outcome(api: Api, method: str, path: str, body: Any = None) -> tuple[int, str]:
    """(status, error code) of a request that should fail; (200, "ok") when it did not."""
    try:
        await api.call(method, path, body)
    except HttpError as exc:
        code = exc.body["error"]["code"] if isinstance(exc.body, dict) else repr(exc.body[:60])
        return exc.status, code
    return 200, "ok"


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


# ---- frames -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ALL_FRAME_CASES, ids=lambda case: case.name)
async def test_abuse_frame_gets_its_documented_answer(arena: Arena, case: Case) -> None:
    async with raw_socket(arena.server, arena.ann.token) as ann:
        await ann.send_json(type="join", room="general", ref="j")
        assert (await ann.reply())["type"] == "joined"
        await ann.send(case.frame)
        got = await ann.reply()
        if got.get("type") == "ack":
            if isinstance(case.frame, Wire):
                assert case.frame.text is not None
                arena.record("ann", got, case.frame.text)
            else:
                assert isinstance(case.frame, str)
                arena.record("ann", got, json.loads(case.frame)["text"])
        if "close" in got:
            # The server let go of ann's connection: bob sees her leave.
            await arena.watcher.expect("presence", user="ann", state="offline")
        else:
            # After any error the connection stays open and usable.
            await arena.send_ok(ann, "ann", "fine after a bad frame")
    await arena.verify()
    assert {key: got.get(key) for key in case.reply} == case.reply, got


async def test_abuse_ping_is_answered_with_a_pong_carrying_its_payload(arena: Arena) -> None:
    async with raw_socket(arena.server, arena.ann.token) as ann:
        await ann.send_json(type="join", room="general", ref="j")
        assert (await ann.reply())["type"] == "joined"
        await ann.send(Wire(frame(PING, b"are you there")))
        await arena.send_ok(ann, "ann", "after a ping")
    await arena.verify()
    assert ann.pongs == [b"are you there"]


async def test_abuse_storm_of_every_error_stores_exactly_the_acked(arena: Arena) -> None:
    """All error cases on one socket, each followed by a send (every third retried with its
    client_id), while bob sends too: the errors come back in order, retries get the
    original ack, and the store holds exactly the acked messages."""
    cases = [c for c in ALL_FRAME_CASES if c.reply.get("type") == "error"]
    retried = range(0, len(cases), 3)
    sent: dict[str, str] = {}
    acks: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []

    async def ann_reads(a: WsClient) -> None:
        while len(errors) < len(cases) or len(acks) < len(cases) + len(retried):
            event = await a.recv()
            if event["type"] == "error":
                errors.append(event)
            elif event["type"] == "ack":
                acks.append(event)
            elif event["type"] == "ping":
                await a.send(type="pong")

    async def bob_sends() -> None:
        async with ws_connect(arena.server, arena.bob.token) as b:
            for i in range(50):
                text = f"bob {i}"
                client_id = await b.say(text)
                arena.record("bob", await b.expect("ack", client_id=client_id), text)

    async with ws_connect(arena.server, arena.ann.token) as a, trio.open_nursery() as nursery:
        nursery.start_soon(bob_sends)
        nursery.start_soon(ann_reads, a)
        for i, case in enumerate(cases):
            assert not isinstance(case.frame, Wire)
            await a.send_raw(case.frame)
            client_id, text = f"storm-{i}", f"storm {i} after {case.name}"
            sent[client_id] = text
            for _ in range(2 if i in retried else 1):
                await a.send(type="send", room="general", text=text, client_id=client_id)
    assert [(e["code"], e.get("ref")) for e in errors] == [
        (c.reply["code"], c.reply["ref"]) for c in cases
    ]
    by_client_id: dict[str, dict[str, Any]] = {}
    for ack in acks:
        assert by_client_id.setdefault(ack["client_id"], ack) == ack, "a retry got a new ack"
        arena.record("ann", ack, sent[ack["client_id"]])
    assert set(by_client_id) == set(sent)
    await arena.verify()


# ---- text that must come back exactly as sent ------------------------------------------------


@pytest.mark.parametrize("text", list(HOSTILE_TEXTS.values()), ids=list(HOSTILE_TEXTS))
async def test_abuse_hostile_text_is_stored_and_returned_verbatim(arena: Arena, text: str) -> None:
    async with raw_socket(arena.server, arena.ann.token) as ann:
        await arena.send_ok(ann, "ann", text)
    (event,) = await arena.watcher.messages(1)
    assert (event["user"], event["text"]) == ("ann", text)
    ack = await arena.ann.post("/api/rooms/general/messages", {"text": text, "client_id": "rest"})
    arena.record("ann", ack, text)
    (event,) = await arena.watcher.messages(1)
    assert (event["client_id"], event["text"]) == ("rest", text)
    await arena.verify()  # REST history returns both, verbatim


async def test_abuse_history_is_json_never_html(arena: Arena) -> None:
    text = HOSTILE_TEXTS["script tag"]
    ack = await arena.ann.post("/api/rooms/general/messages", {"text": text, "client_id": "x"})
    arena.record("ann", ack, text)
    request = urllib.request.Request(
        arena.server.http + "/api/rooms/general/messages",
        headers={"Authorization": f"Bearer {arena.ann.token}"},
    )

    def fetch() -> tuple[str, str, bytes]:
        with urllib.request.urlopen(request, timeout=STEP_S) as resp:
            return resp.headers["Content-Type"], resp.headers["X-Content-Type-Options"], resp.read()

    with trio.fail_after(STEP_S):
        content_type, nosniff, body = await trio.to_thread.run_sync(fetch)
    assert content_type.startswith("application/json")
    assert nosniff == "nosniff"
    assert json.loads(body)["messages"][0]["text"] == text
    await arena.verify()


@pytest.mark.parametrize(("path", "body"), list(BAD_BODIES.values()), ids=list(BAD_BODIES))
async def test_abuse_bad_rest_body_is_400(arena: Arena, path: str, body: bytes) -> None:
    got = await rest_outcome_raw(arena.ann, path, body)
    await arena.verify()
    assert got == (400, "invalid")


async def test_abuse_rest_body_over_256_kib_is_413(arena: Arena) -> None:
    body = json.dumps({"text": "x" * (256 * 1024), "client_id": "big"}).encode()
    got = await rest_outcome_raw(arena.ann, "/api/rooms/general/messages", body)
    await arena.verify()
    assert got[0] == 413


async def rest_outcome_raw(api: Api, path: str, body: bytes) -> tuple[int, str]:
    try:
        await api.call("POST", path, raw=body)
    except HttpError as exc:
        code = exc.body["error"]["code"] if isinstance(exc.body, dict) else repr(exc.body[:60])
        return exc.status, code
    return 200, "ok"


# ---- SQL-looking strings and room names -------------------------------------------------------

SQL_STRINGS = [SQL, "' OR '1'='1", '" OR ""="', "1; DELETE FROM users", "general' --"]


@pytest.mark.parametrize("sql", SQL_STRINGS)
async def test_abuse_sql_looking_strings_are_only_data(arena: Arena, sql: str) -> None:
    password = {"password": "long enough"}
    got = {
        "signup": await rest_outcome(arena.api, "POST", "/api/users", {"name": sql, **password}),
        "login": await rest_outcome(arena.api, "POST", "/api/sessions", {"name": sql, **password}),
        "new room": await rest_outcome(arena.ann, "POST", "/api/rooms", {"name": sql}),
        "history": await rest_outcome(arena.ann, "GET", f"/api/rooms/{quoted(sql)}/messages"),
        "dm": await rest_outcome(arena.ann, "POST", "/api/dms", {"user": sql}),
        "REST client_id": await rest_outcome(
            arena.ann, "POST", "/api/rooms/general/messages", {"text": "x", "client_id": sql}
        ),
    }
    async with raw_socket(arena.server, arena.ann.token) as ann:
        for name, frame in {
            "join": {"type": "join", "room": sql},
            "WS client_id": {"type": "send", "room": "general", "text": "x", "client_id": sql},
        }.items():
            await ann.send_json(**frame)
            event = await ann.reply()
            got[name] = (event.get("type"), event.get("code"))
        await ann.send_json(type="join", room="general", epoch=sql, ref=sql)
        reset = await ann.reply()
        got["epoch and ref"] = (reset.get("type"), reset.get("ref"))
        await arena.send_ok(ann, "ann", sql)
    assert got == {
        "signup": (400, "invalid"),
        "login": (401, "bad_credentials"),
        "new room": (400, "invalid_room"),
        "history": (404, "not_found"),
        "dm": (404, "not_found"),
        "REST client_id": (400, "invalid"),
        "join": ("error", "invalid_room"),
        "WS client_id": ("error", "invalid_frame"),
        "epoch and ref": ("reset", sql),
    }
    # The tables are all there: accounts still log in.
    await arena.api.post("/api/sessions", {"name": "ann", "password": "correct horse"})
    await arena.verify()


@pytest.mark.parametrize("name", list(BAD_ROOM_NAMES.values()), ids=list(BAD_ROOM_NAMES))
async def test_abuse_room_name_tricks_find_no_room(arena: Arena, name: str) -> None:
    """Path tricks and look-alikes name no room, over WS and over properly encoded REST."""
    got: dict[str, Any] = {}
    async with raw_socket(arena.server, arena.ann.token) as ann:
        for kind in ("join", "leave", "typing", "read", "send"):
            frame: dict[str, Any] = {"type": kind, "room": name, "ref": kind}
            if kind == "send":
                frame.update(text="x", client_id="c")
            await ann.send_json(**frame)
            event = await ann.reply()
            got[f"WS {kind}"] = (event.get("type"), event.get("code"), event.get("ref"))
    path = f"/api/rooms/{quoted(name)}"
    ann_api = arena.ann
    got["GET messages"] = await rest_outcome(ann_api, "GET", path + "/messages")
    got["POST messages"] = await rest_outcome(
        ann_api, "POST", path + "/messages", {"text": "x", "client_id": "c"}
    )
    got["GET members"] = await rest_outcome(ann_api, "GET", path + "/members")
    got["POST members"] = await rest_outcome(ann_api, "POST", path + "/members", {"user": "bob"})
    got["POST rooms"] = await rest_outcome(ann_api, "POST", "/api/rooms", {"name": name})
    assert got == {
        **{f"WS {k}": ("error", "invalid_room", k) for k in ("join", "leave", "typing", "read")},
        "WS send": ("error", "invalid_room", "send"),
        "GET messages": (404, "not_found"),
        "POST messages": (404, "not_found"),
        "GET members": (404, "not_found"),
        "POST members": (404, "not_found"),
        "POST rooms": (400, "invalid_room"),
    }
    await arena.verify()


# ---- headers ----------------------------------------------------------------------------------

HUGE_HEADERS: dict[str, list[tuple[str, str]]] = {
    "100 KB Cookie": [("Cookie", f"{SESSION_COOKIE}=" + "a" * 100_000)],
    "100 KB Authorization": [("Authorization", "Bearer " + "a" * 100_000)],
    "100 KB unknown header": [("X-Junk", "a" * 100_000)],
    "100 KB Origin": [("Origin", "http://" + "a" * 100_000)],
    "2000 headers": [(f"X-H{i}", "v" * 10) for i in range(2000)],
}


@pytest.mark.parametrize("headers", list(HUGE_HEADERS.values()), ids=list(HUGE_HEADERS))
async def test_abuse_huge_headers_get_4xx(arena: Arena, headers: list[tuple[str, str]]) -> None:
    def get_me() -> int:
        request = urllib.request.Request(arena.server.http + "/api/me", headers=dict(headers))
        try:
            with urllib.request.urlopen(request, timeout=STEP_S) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except (HTTPException, ConnectionError):
            return 0  # refused: the connection ended

    with trio.fail_after(STEP_S):
        rest_status = await trio.to_thread.run_sync(get_me)
    try:
        async with raw_socket(arena.server, None, headers=headers):
            ws_status = 101
    except Refused as refused:
        ws_status = refused.status
    await arena.verify()
    assert rest_status == 0 or 400 <= rest_status < 500, rest_status
    assert ws_status == 0 or 400 <= ws_status < 500, ws_status


# ---- credentials ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def forged_token(kind: str, arena: Arena) -> str:
    """A token that must not work, made from ann's real one."""
    body, _, signature = arena.ann.token.partition(".")
    claims = json.loads(_unb64(body))
    resigned = arena.server.services.auth.sign
    if kind == "random":
        return _b64(os.urandom(30)) + "." + _b64(os.urandom(32))
    if kind == "payload only":
        return body
    if kind == "empty signature":
        return body + "."
    if kind == "payload names bob":
        bob_id = (await arena.bob.get("/api/me"))["id"]
        return _b64(json.dumps({**claims, "u": bob_id}).encode()) + "." + signature
    if kind == "payload extends expiry":
        far = claims["e"] + 10 * 365 * 86_400_000
        return _b64(json.dumps({**claims, "e": far}).encode()) + "." + signature
    if kind == "signature flipped":
        i = len(signature) // 2
        return (
            body + "." + signature[:i] + ("A" if signature[i] != "A" else "B") + signature[i + 1 :]
        )
    if kind == "payload flipped":
        i = len(body) // 2
        return body[:i] + ("A" if body[i] != "A" else "B") + body[i + 1 :] + "." + signature
    if kind == "another secret":
        mac = hmac.new(b"not the secret", body.encode(), hashlib.sha256).digest()
        return body + "." + _b64(mac)
    if kind == "unsigned JWT":
        return _b64(b'{"alg":"none","typ":"JWT"}') + "." + body + "."
    if kind == "non-ASCII":
        return "\u00e9" * 10 + "." + "\u00e9" * 10
    if kind == "4 KB":
        return "A" * 2000 + "." + "B" * 2000
    if kind == "expired":
        return resigned(Session(claims["s"], claims["u"], now_ms() - 1000))
    if kind == "revoked":
        login = {"name": "ann", "password": "correct horse"}
        session = await arena.api.post("/api/sessions", login)
        await Api(arena.server.http, session["token"]).call("DELETE", "/api/sessions")
        return str(session["token"])
    raise AssertionError(kind)


FORGED = {
    "random": "invalid_token",
    "payload only": "invalid_token",
    "empty signature": "invalid_token",
    "payload names bob": "invalid_token",
    "payload extends expiry": "invalid_token",
    "signature flipped": "invalid_token",
    "payload flipped": "invalid_token",
    "another secret": "invalid_token",
    "unsigned JWT": "invalid_token",
    "non-ASCII": "invalid_token",
    "4 KB": "invalid_token",
    "expired": "token_expired",
    "revoked": "token_revoked",
}


@pytest.mark.parametrize(("kind", "code"), FORGED.items(), ids=list(FORGED))
async def test_abuse_bad_token_is_refused_everywhere(arena: Arena, kind: str, code: str) -> None:
    token = await forged_token(kind, arena)
    own_origin = ("Origin", arena.server.http)
    cookie = ("Cookie", f"{SESSION_COOKIE}={token}")
    message = {"text": "x", "client_id": "forged"}
    got: dict[str, Any] = {
        "GET /api/me": await rest_outcome(Api(arena.server.http, token), "GET", "/api/me"),
        "POST message": await rest_outcome(
            Api(arena.server.http, token), "POST", "/api/rooms/general/messages", message
        ),
        "cookie POST message": await rest_outcome(
            Api(arena.server.http, None, dict([cookie, own_origin])),
            "POST",
            "/api/rooms/general/messages",
            message,
        ),
    }
    if token.isascii():  # header values are ASCII; the non-ASCII token only reaches REST above
        server = arena.server
        got["WS bearer header"] = await handshake_outcome(
            server, [("Authorization", f"Bearer {token}")]
        )
        got["WS bearer subprotocol"] = await handshake_outcome(
            server, [], subprotocols=("nochat.v1", f"bearer.{token}")
        )
        got["WS cookie"] = await handshake_outcome(server, [cookie, own_origin])
    expected = {
        "GET /api/me": (401, code),
        "POST message": (401, code),
        "cookie POST message": (401, code),
    }
    if token.isascii():
        expected.update(
            {w: (401, code) for w in ("WS bearer header", "WS bearer subprotocol", "WS cookie")}
        )
    await arena.verify()
    assert got == expected


async def handshake_outcome(
    server: RunningServer,
    headers: list[tuple[str, str]],
    target: str = "/ws",
    subprotocols: tuple[str, ...] = ("nochat.v1",),
) -> tuple[int, str]:
    """(status, error code) of a handshake that should be refused; (101, "accepted") if not."""
    try:
        async with raw_socket(
            server, None, target=target, headers=headers, subprotocols=subprotocols
        ):
            return 101, "accepted"
    except Refused as refused:
        try:
            return refused.status, json.loads(refused.body)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return refused.status, repr(refused.body[:60])


async def test_abuse_credentials_in_the_wrong_place_are_ignored(arena: Arena) -> None:
    token = arena.ann.token
    got = {
        "query string REST": await rest_outcome(
            Api(arena.server.http), "GET", f"/api/me?token={token}"
        ),
        "query string WS": await handshake_outcome(arena.server, [], f"/ws?token={token}"),
        "query access_token WS": await handshake_outcome(
            arena.server, [], f"/ws?access_token={token}"
        ),
    }
    for value in (f"Basic {token}", f"Token {token}", token, "Bearer", f"Bearer{token}"):
        scheme = value.split(" ")[0][:12]
        got[f"REST {scheme!r}"] = await rest_outcome(
            Api(arena.server.http, None, {"Authorization": value}), "GET", "/api/me"
        )
        got[f"WS {scheme!r}"] = await handshake_outcome(arena.server, [("Authorization", value)])
    await arena.verify()
    assert got == dict.fromkeys(got, (401, "unauthorized"))


# ---- a session cookie from another origin ------------------------------------------------------


def _origins(port: int) -> dict[str, str | None]:
    return {
        "no Origin": None,
        "foreign": "http://evil.example",
        "null": "null",
        "host as a prefix": f"http://127.0.0.1:{port}.evil.example",
        "same host, other port": f"http://127.0.0.1:{port + 1}",
        "other name for the host": f"http://localhost:{port}",
        "file": "file://",
        "userinfo trick": f"http://127.0.0.1:{port}@evil.example",
    }


@pytest.mark.parametrize("which", list(_origins(0)))
async def test_abuse_cookie_handshake_from_a_foreign_origin_is_403(
    arena: Arena, which: str
) -> None:
    origin = _origins(arena.server.port)[which]
    headers = [("Cookie", f"{SESSION_COOKIE}={arena.ann.token}")]
    if origin is not None:
        headers.append(("Origin", origin))
    refused = await handshake_outcome(arena.server, headers)
    # The same cookie from the server's own origin is accepted (so the 403 is about Origin).
    own = await handshake_outcome(arena.server, [*headers[:1], ("Origin", arena.server.http)])
    await arena.verify()
    assert (refused, own) == ((403, "bad_origin"), (101, "accepted"))
