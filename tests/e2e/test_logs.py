"""NOCHAT_LOG_FORMAT=json, and no message text, password or token in any log line."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from nochat import logs
from nochat.errors import ConfigError
from nochat.settings import Settings

from ..support import STEP_S, Api, HttpError, cli_env, free_port, wait_until_serving, ws_connect

SECRET_TEXT = "the-secret-message-text-7f3a"
REST_TEXT = "a-rest-message-text-91bc"
PASSWORD = "a-password-never-logged-5e2d"


@dataclass
class Child:
    port: int


async def chat_session_log(tmp_path: Path, log_format: str) -> tuple[str, list[str]]:
    """Run `nochat serve` at DEBUG through a whole chat session; its stderr, and the
    tokens it handed out."""
    port = free_port()
    log_path = tmp_path / "stderr.log"
    env = cli_env(tmp_path / "data", NOCHAT_LOG_LEVEL="DEBUG", NOCHAT_LOG_FORMAT=log_format)
    cmd = [sys.executable, "-m", "nochat", "serve", "--port", str(port)]
    tokens: list[str] = []
    with log_path.open("wb") as stderr:
        proc = await trio.lowlevel.open_process(cmd, env=env, stderr=stderr)
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_until_serving(base)
            api = Api(base)
            alice = await api.signup("alice", PASSWORD)
            bob = await api.signup("bob", PASSWORD)
            tokens += [alice.token, bob.token]
            # A failed login (wrong password) is logged without the password.
            with pytest.raises(HttpError) as failed:
                await api.post("/api/sessions", {"name": "alice", "password": PASSWORD + "x"})
            assert failed.value.status == 401
            async with (
                ws_connect(Child(port), alice.token) as a,
                ws_connect(Child(port), bob.token) as b,
            ):
                await a.join()
                await b.join()
                await a.say(SECRET_TEXT)
                [got] = await b.messages(1)
                assert got["text"] == SECRET_TEXT
                await bob.post(
                    "/api/rooms/general/messages", {"text": REST_TEXT, "client_id": "r1"}
                )
                own, got = await a.messages(2)  # her own message comes back to her too
                assert (own["text"], got["text"]) == (SECRET_TEXT, REST_TEXT)
            await alice.call("DELETE", "/api/sessions")
        finally:
            proc.terminate()
            with trio.fail_after(STEP_S * 2):
                await proc.wait()
    return log_path.read_text(encoding="utf-8"), tokens


async def test_json_lines_carry_no_text_password_or_token(tmp_path: Path) -> None:
    output, tokens = await chat_session_log(tmp_path, "json")
    lines = output.splitlines()
    assert len(lines) > 5
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys()
        assert entry["time"].endswith("Z")
    assert any(e["logger"] == "nochat" and "listening" in e["message"] for e in entries)
    # DEBUG lines name their request or connection, each its own id.
    requests = {e["request"] for e in entries if "request" in e}
    connections = {e["connection"] for e in entries if "connection" in e}
    assert any(e["message"] == "POST /api/users 201" and "request" in e for e in entries)
    assert len(requests) >= 6  # two sign-ups, two logins, a failed one, a send, a logout
    assert len(connections) == 2
    for secret in (SECRET_TEXT, REST_TEXT, PASSWORD, *tokens):
        assert secret not in output


async def test_text_format_is_the_default_and_keeps_secrets_out_too(tmp_path: Path) -> None:
    output, tokens = await chat_session_log(tmp_path, "text")
    assert " INFO nochat: NoChat listening on " in output
    assert not output.lstrip().startswith("{")
    for secret in (SECRET_TEXT, REST_TEXT, PASSWORD, *tokens):
        assert secret not in output


def test_json_formatter_adds_the_request_or_connection_id() -> None:
    record = logging.LogRecord("nochat.x", logging.WARNING, __file__, 1, "hi %s", ("a",), None)
    token = logs.connection_id.set("c-1-2")
    try:
        entry = json.loads(logs.JsonFormatter().format(record))
    finally:
        logs.connection_id.reset(token)
    assert entry["message"] == "hi a"
    assert entry["connection"] == "c-1-2"
    assert "request" not in entry
    request = logs.request_id.set("r-1-3")
    try:
        assert json.loads(logs.JsonFormatter().format(record))["request"] == "r-1-3"
    finally:
        logs.request_id.reset(request)


def test_an_unknown_log_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="log_format must be 'text' or 'json'"):
        Settings.from_env({"NOCHAT_LOG_FORMAT": "xml"})
