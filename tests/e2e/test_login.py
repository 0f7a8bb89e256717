"""Logins and sign-ups under attack: throttles, concurrent guesses, shared addresses,
trusted proxies, hashing pools, and login CSRF."""

from __future__ import annotations

import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from nochat.errors import Overloaded
from nochat.limits import HashingPool

from ..support import STEP_S, Api, HttpError, RunningServer, make_settings, start_server

PASSWORD = "the right one"


async def _server(nursery: trio.Nursery, tmp_path: Path, **settings: Any) -> RunningServer:
    return await start_server(nursery, make_settings(tmp_path / "data", **settings))


async def _status(api: Api, name: str, password: str) -> int:
    try:
        await api.post("/api/sessions", {"name": name, "password": password})
    except HttpError as exc:
        return exc.status
    return 200


async def test_login_concurrent_guesses_stop_at_the_limit(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await _server(nursery, tmp_path, login_failures=5, login_window_s=600.0)
    api = Api(server.http)
    await api.post("/api/users", {"name": "ann", "password": PASSWORD})
    statuses: list[int] = []

    async def guess(i: int) -> None:
        statuses.append(await _status(api, "ann", f"wrong guess {i}"))

    async with trio.open_nursery() as guesses:
        for i in range(30):
            guesses.start_soon(guess, i)
    assert len(statuses) == 30 and set(statuses) <= {401, 429}
    assert statuses.count(401) <= 5  # only reserved attempts reached the password check
    assert await _status(api, "ann", PASSWORD) == 429


async def test_login_other_names_failures_do_not_lock_out_an_address(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await _server(nursery, tmp_path, login_failures=5, login_address_failures=8)
    api = Api(server.http)
    for name in ("alice", "bob", "carol"):
        await api.post("/api/users", {"name": name, "password": PASSWORD})
    for _ in range(5):
        assert await _status(api, "bob", "wrong guess") == 401
    assert await _status(api, "bob", PASSWORD) == 429  # bob, from here, waits
    assert await _status(api, "alice", PASSWORD) == 200  # alice, from the same address, not
    # The address's own ceiling still holds: 8 failures in all, whatever the names.
    for _ in range(3):
        assert await _status(api, "carol", "wrong guess") == 401
    assert await _status(api, "alice", PASSWORD) == 429


async def test_login_impossible_names_are_refused_without_counting(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """A name no account can have (too long, bad characters) is a plain 401, and keeps
    no throttle state: a flood of 100 KiB names neither fills memory nor locks others out."""
    server = await _server(nursery, tmp_path, login_address_failures=3)
    api = Api(server.http)
    await api.post("/api/users", {"name": "ann", "password": PASSWORD})
    for name in ("x" * 100_000, "a b", "ann!", ""):
        with pytest.raises(HttpError) as caught:
            await api.post("/api/sessions", {"name": name, "password": "wrong guess"})
        assert (caught.value.status, caught.value.body["error"]["code"]) == (
            401,
            "bad_credentials",
        )
    assert await _status(api, "ann", PASSWORD) == 200


async def test_login_failures_per_name_across_addresses(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await _server(
        nursery, tmp_path, login_failures=2, login_name_failures=4, trusted_proxies=("127.0.0.1",)
    )
    api = Api(server.http)
    await api.post("/api/users", {"name": "ann", "password": PASSWORD})
    for address in ("10.0.0.1", "10.0.0.2"):
        via = Api(server.http, headers={"X-Forwarded-For": address})
        for _ in range(2):
            assert await _status(via, "ann", "wrong guess") == 401
    fresh = Api(server.http, headers={"X-Forwarded-For": "10.0.0.3"})
    assert await _status(fresh, "ann", PASSWORD) == 429  # the name's own limit


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "no-proxy"])
async def test_login_forwarded_for_counts_only_from_trusted_proxies(
    nursery: trio.Nursery, tmp_path: Path, trusted: bool
) -> None:
    proxies = ("127.0.0.0/8",) if trusted else ()
    server = await _server(nursery, tmp_path, login_address_failures=3, trusted_proxies=proxies)
    api = Api(server.http)
    for name in ("ann", "bob", "cid", "dot"):
        await api.post("/api/users", {"name": name, "password": PASSWORD})
    attacker = Api(server.http, headers={"X-Forwarded-For": "203.0.113.7"})
    for name in ("bob", "cid", "dot"):
        assert await _status(attacker, name, "wrong guess") == 401
    # The client writes the left of the header; only the proxy's own hop is believed.
    spoofed = Api(server.http, headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
    assert await _status(spoofed, "ann", PASSWORD) == 429
    other = Api(server.http, headers={"X-Forwarded-For": "198.51.100.9"})
    # Behind a trusted proxy another client is another address; without one, the header
    # is ignored and everyone is the one peer address that failed three times.
    assert await _status(other, "ann", PASSWORD) == (200 if trusted else 429)


async def test_login_rate_limited_answer_says_how_long(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await _server(nursery, tmp_path, login_failures=1, login_window_s=120.0)
    api = Api(server.http)
    await api.post("/api/users", {"name": "ann", "password": PASSWORD})
    assert await _status(api, "ann", "wrong guess") == 401
    with pytest.raises(HttpError) as caught:
        await api.post("/api/sessions", {"name": "ann", "password": PASSWORD})
    assert caught.value.body["error"]["code"] == "rate_limited"
    assert 100 < int(caught.value.headers["Retry-After"]) <= 120


async def test_login_signups_are_throttled_per_address(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await _server(nursery, tmp_path, signup_rate_per_h=3, trusted_proxies=("127.0.0.1",))
    api = Api(server.http)
    for i in range(3):
        await api.post("/api/users", {"name": f"u{i}", "password": PASSWORD})
    with pytest.raises(HttpError) as caught:
        await api.post("/api/users", {"name": "u3", "password": PASSWORD})
    assert (caught.value.status, caught.value.body["error"]["code"]) == (429, "rate_limited")
    assert int(caught.value.headers["Retry-After"]) > 3000
    # Concurrent sign-ups from one address count while in flight, too.
    elsewhere = Api(server.http, headers={"X-Forwarded-For": "10.1.1.1"})
    statuses: list[int] = []

    async def signup(i: int) -> None:
        try:
            await elsewhere.post("/api/users", {"name": f"c{i}", "password": PASSWORD})
            statuses.append(201)
        except HttpError as exc:
            statuses.append(exc.status)

    async with trio.open_nursery() as signups:
        for i in range(12):
            signups.start_soon(signup, i)
    assert sorted(statuses) == [201] * 3 + [429] * 9


async def test_login_stays_open_while_signup_hashing_is_full(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """A sign-up flood fills only the sign-up pool: more sign-ups get 503 + Retry-After
    at once (nothing queues without bound), and logins still go through."""
    server = await _server(nursery, tmp_path)
    api = Api(server.http)
    await api.post("/api/users", {"name": "ann", "password": PASSWORD})
    pool = server.services.auth.signup_pool
    release = threading.Event()
    try:
        async with trio.open_nursery() as holders:
            stats = pool.statistics()
            for _ in range(stats.total_tokens + 4):  # every thread busy, the queue full
                holders.start_soon(pool.run_sync, release.wait, STEP_S)
            await trio.testing.wait_all_tasks_blocked()
            assert pool.statistics().tasks_waiting == 4
            with pytest.raises(HttpError) as caught:
                await api.post("/api/users", {"name": "bob", "password": PASSWORD})
            assert (caught.value.status, caught.value.body["error"]["code"]) == (
                503,
                "overloaded",
            )
            assert int(caught.value.headers["Retry-After"]) >= 1
            assert await _status(api, "ann", PASSWORD) == 200
            release.set()
    finally:
        release.set()
    await api.post("/api/users", {"name": "bob", "password": PASSWORD})  # room again


async def test_login_hashing_pool_refuses_beyond_its_queue() -> None:
    pool = HashingPool(1, 2)
    release = threading.Event()
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(pool.run_sync, release.wait, STEP_S)
        await trio.testing.wait_all_tasks_blocked()
        assert pool.statistics().tasks_waiting == 2
        with pytest.raises(Overloaded):
            await pool.run_sync(release.wait, 0)
        release.set()
    assert await pool.run_sync(release.wait, 0) is True


def _post_raw(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str | None]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=STEP_S) as resp:
            return int(resp.status), resp.headers.get("Set-Cookie")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Set-Cookie")


@pytest.mark.parametrize("path", ["/api/sessions", "/api/users", "/api/sessions/refresh"])
async def test_login_csrf_cookie_setting_requests_need_json_and_an_allowed_origin(
    server: RunningServer, api: Api, path: str
) -> None:
    ann = await api.signup("ann", PASSWORD)
    url = server.http + path
    body = b'{"name": "mallory", "password": "attacker pass"}'
    if path == "/api/users":
        body = b'{"name": "victim2", "password": "attacker pass"}'
    auth = {"Authorization": f"Bearer {ann.token}"} if path.endswith("refresh") else {}
    if path == "/api/sessions":
        await api.post("/api/users", {"name": "mallory", "password": "attacker pass"})

    def attempt(headers: dict[str, str]) -> tuple[int, str | None]:
        return _post_raw(url, body, {**auth, **headers})

    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        status, cookie = await trio.to_thread.run_sync(
            attempt, {"Content-Type": content_type, "Origin": server.http}
        )
        assert (status, cookie) == (415, None)
    for origin in ("http://evil.example", "null"):
        status, cookie = await trio.to_thread.run_sync(
            attempt, {"Content-Type": "application/json", "Origin": origin}
        )
        assert (status, cookie) == (403, None)
    status, _ = await trio.to_thread.run_sync(
        attempt, {"Content-Type": "application/json", "Origin": server.http}
    )
    assert status == (201 if path == "/api/users" else 200)


async def test_login_csrf_error_bodies(server: RunningServer) -> None:
    plain = Api(server.http, headers={"Content-Type": "text/plain"})
    with pytest.raises(HttpError) as caught:
        await plain.post("/api/sessions", {"name": "ann", "password": PASSWORD})
    assert caught.value.body["error"]["code"] == "unsupported_media_type"
    evil = Api(server.http, headers={"Origin": "http://evil.example"})
    with pytest.raises(HttpError) as caught:
        await evil.post("/api/sessions", {"name": "ann", "password": PASSWORD})
    assert caught.value.body["error"]["code"] == "bad_origin"
