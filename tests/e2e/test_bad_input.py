"""Bad input gets a clear answer, keeps the connection usable, and changes no stored data."""

from __future__ import annotations

import json

import pytest
import trio_websocket

from nochat.errors import CloseCode

from ..support import Api, HttpError, RunningServer, ws_connect

BAD_FRAMES: list[tuple[str | bytes, str]] = [
    ("{not json", "bad_json"),
    ("[1, 2, 3]", "invalid_frame"),
    ('"just a string"', "invalid_frame"),
    ("42", "invalid_frame"),
    ('{"room": "general"}', "unknown_type"),
    ('{"type": "explode", "ref": "r"}', "unknown_type"),
    ('{"type": 7}', "unknown_type"),
    ('{"type": "send", "room": "general", "client_id": "c"}', "empty_text"),
    ('{"type": "send", "room": "general", "text": 5, "client_id": "c"}', "invalid_frame"),
    ('{"type": "send", "room": "general", "text": "hi"}', "invalid_frame"),
    ('{"type": "send", "room": "general", "text": "   ", "client_id": "c"}', "empty_text"),
    (
        '{"type": "send", "room": "general", "text": "\\u200b\\ufeff", "client_id": "c"}',
        "empty_text",
    ),
    (
        '{"type": "send", "room": "general", "text": "\\u3164\\u2800", "client_id": "c"}',
        "empty_text",
    ),
    ('{"type": "send", "room": "general", "text": "hi", "client_id": "bad id!"}', "invalid_frame"),
    ('{"type": "send", "room": "nope", "text": "hi", "client_id": "c"}', "not_found"),
    ('{"type": "send", "room": "../etc", "text": "hi", "client_id": "c"}', "invalid_room"),
    ('{"type": "join", "room": "General"}', "invalid_room"),
    ('{"type": "join", "room": "nope"}', "not_found"),
    ('{"type": "join", "room": "general", "since": -1}', "invalid_frame"),
    ('{"type": "join", "room": "general", "since": "5"}', "invalid_frame"),
    ('{"type": "join", "room": "general", "since": 1e400}', "bad_json"),  # out of range
    ('{"type": "join", "room": "general", "since": 99999999999999999999}', "invalid_frame"),
    ('{"type": "typing", "room": "general"}', "not_joined"),
    ('{"type": "read", "room": "general", "seq": 1}', "not_joined"),
    ('{"type": "leave", "room": "general"}', "not_joined"),
    ('{"type": "join"}', "invalid_room"),
    (b"\x00\x01binary", "unsupported_frame"),
]


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES)
async def test_bad_input_frame_gets_error_and_connection_survives(
    server: RunningServer, api: Api, frame: str | bytes, code: str
) -> None:
    ann = await api.signup("ann")
    async with ws_connect(server, ann.token) as a:
        await a.send_raw(frame)
        error = await a.recv()
        assert error["type"] == "error" and error["code"] == code, error
        assert error["message"]
        # Still usable: a real send goes through and is the only stored message.
        await a.send(type="send", room="general", text="fine", client_id="ok", ref="after")
        assert (await a.expect("ack", ref="after"))["seq"] == 1
    page = await ann.get("/api/rooms/general/messages")
    assert [m["text"] for m in page["messages"]] == ["fine"]


async def test_bad_input_error_echoes_ref(server: RunningServer, api: Api) -> None:
    ann = await api.signup("ann")
    async with ws_connect(server, ann.token) as a:
        await a.send(type="send", room="general", text="x" * 4001, client_id="c", ref=77)
        error = await a.recv()
        assert (error["code"], error["ref"]) == ("text_too_long", 77)
        await a.send(type="bogus", ref="abc")
        assert (await a.recv())["ref"] == "abc"


async def test_bad_input_oversized_frame_closes_1009(server: RunningServer, api: Api) -> None:
    ann = await api.signup("ann")
    async with ws_connect(server, ann.token) as a:
        big = json.dumps(
            {"type": "send", "room": "general", "text": "x" * 100 * 1024, "client_id": "c"}
        )
        await a.send_raw(big)
        assert await a.closed() == CloseCode.TOO_BIG
    assert (await ann.get("/api/rooms/general/messages"))["messages"] == []


async def test_bad_input_other_clients_unaffected_by_a_misbehaving_one(
    server: RunningServer, api: Api
) -> None:
    ann, bob = await api.signup("ann"), await api.signup("bob")
    async with ws_connect(server, ann.token) as a, ws_connect(server, bob.token) as b:
        await b.join()
        for frame, _ in BAD_FRAMES:
            await a.send_raw(frame)
        await a.say("after the storm")
        (got,) = await b.messages(1)
        assert got["text"] == "after the storm"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/api/users", b"{bad", 400, "invalid"),
        ("POST", "/api/users", b'{"name": "x"}', 400, "invalid"),
        ("POST", "/api/users", b'{"name": "a b", "password": "long enough"}', 400, "invalid"),
        ("POST", "/api/users", b'{"name": "ann", "password": "short"}', 400, "invalid"),
        ("POST", "/api/users", b"[]", 400, "invalid"),
        (
            "POST",
            "/api/sessions",
            b'{"name": "ann", "password": "wrong password"}',
            401,
            "bad_credentials",
        ),
        (
            "POST",
            "/api/sessions",
            b'{"name": "nobody", "password": "whatever1"}',
            401,
            "bad_credentials",
        ),
        ("POST", "/api/rooms", b'{"name": "Bad Name"}', 400, "invalid_room"),
        ("POST", "/api/rooms", b'{"name": "general"}', 409, "room_exists"),
        ("POST", "/api/rooms/general/messages", b'{"text": ""}', 400, "invalid"),
        (
            "POST",
            "/api/rooms/general/messages",
            b'{"text": "", "client_id": "c"}',
            400,
            "empty_text",
        ),
        (
            "POST",
            "/api/rooms/general/messages",
            b'{"text": "\\u200b\\u2060\\u0301", "client_id": "c"}',
            400,
            "empty_text",
        ),
        ("POST", "/api/rooms/nope/messages", b'{"text": "x", "client_id": "c"}', 404, "not_found"),
        ("GET", "/api/rooms/general/messages?limit=0", None, 400, "invalid"),
        ("GET", "/api/rooms/general/messages?limit=abc", None, 400, "invalid"),
        ("GET", "/api/rooms/general/messages?before=1&after=1", None, 400, "invalid"),
        # "²".isdigit() is true and int() refuses it; int() reads U+0661 (Arabic-Indic 1).
        ("GET", "/api/rooms/general/messages?limit=%C2%B2", None, 400, "invalid"),
        ("GET", "/api/rooms/general/messages?limit=%D9%A1", None, 400, "invalid"),
        ("GET", "/api/rooms/general/messages?after=%EF%BC%95", None, 400, "invalid"),
        ("GET", "/api/rooms/general/messages?before=" + "9" * 5000, None, 400, "invalid"),
        ("GET", "/api/rooms/general/messages?before=0000000000000000001", None, 400, "invalid"),
        ("GET", "/" + "a" * 10_000, None, 404, "not_found"),  # ENAMETOOLONG
        ("GET", "/" + "ab/" * 2000 + "x.js", None, 404, "not_found"),
        ("GET", "/%00.js", None, 404, "not_found"),
        ("GET", "/api/rooms/..%2Fsecret/messages", None, 404, "not_found"),
        ("GET", "/api/nothing-here", None, 404, "not_found"),
        ("PUT", "/api/rooms", b"{}", 405, "method_not_allowed"),
    ],
)
async def test_bad_input_rest_gets_json_4xx(
    server: RunningServer,
    api: Api,
    method: str,
    path: str,
    body: bytes | None,
    status: int,
    code: str,
) -> None:
    ann = await api.signup("ann", "long enough")
    with pytest.raises(HttpError) as caught:
        await ann.call(method, path, raw=body)
    assert caught.value.status == status
    assert caught.value.body["error"]["code"] == code
    assert isinstance(caught.value.body["error"]["message"], str)


async def test_bad_input_handshake_without_credentials_is_401(
    server: RunningServer, api: Api
) -> None:
    for token in (None, "garbage", "eyJ1IjoxfQ.c2ln"):
        with pytest.raises(trio_websocket.ConnectionRejected) as caught:
            async with ws_connect(server, token):
                pass
        assert caught.value.status_code == 401
        assert json.loads(caught.value.body)["error"]["code"] in ("unauthorized", "invalid_token")


async def test_bad_input_rest_without_credentials_is_401_json(api: Api) -> None:
    for path in ("/api/me", "/api/rooms", "/api/rooms/general/messages"):
        with pytest.raises(HttpError) as caught:
            await api.get(path)
        assert caught.value.status == 401
        assert caught.value.body["error"]["code"] == "unauthorized"


async def test_bad_input_look_alike_user_name_is_taken(api: Api) -> None:
    await api.signup("alice")
    for name in ("aIice", "a1ice", "ALlCE"):
        with pytest.raises(HttpError) as caught:
            await api.post("/api/users", {"name": name, "password": "long enough"})
        assert caught.value.status == 409
        assert caught.value.body["error"]["code"] == "name_taken"
