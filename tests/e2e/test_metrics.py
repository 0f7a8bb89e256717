"""/metrics: every metric docs/OPERATIONS.md lists is exported, and each one moves when
what it counts happens. Labels never carry user or room names."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pytest
import trio
import trio_websocket
from prometheus_client.parser import text_string_to_metric_families

from ..support import STEP_S, Api, HttpError, RunningServer, make_settings, start_server, ws_connect

TOKEN = "metrics-token-for-tests"
OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md"

Samples = Mapping[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(server: RunningServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    def fetch() -> str:
        req = urllib.request.Request(
            server.http + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(req, timeout=STEP_S) as resp:
            return str(resp.read().decode())

    text = await trio.to_thread.run_sync(fetch)
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def metered(nursery: trio.Nursery, tmp_path: Path) -> RunningServer:
    settings = make_settings(tmp_path / "data", metrics_token=TOKEN, signup_rate_per_h=3)
    return await start_server(nursery, settings)


async def test_every_metric_moves_through_a_chat_session(metered: RunningServer) -> None:
    before = await scrape(metered)
    api = Api(metered.http)
    alice = await api.signup("alice")
    bob = await api.signup("bob")
    with pytest.raises(HttpError):  # an auth failure: wrong password
        await api.post("/api/sessions", {"name": "alice", "password": "wrong horse"})
    with pytest.raises(trio_websocket.ConnectionRejected):  # and a bad token on the socket
        async with ws_connect(metered, "not-a-token"):
            pass
    await api.post("/api/users", {"name": "carol", "password": "correct horse"})
    with pytest.raises(HttpError) as refused:  # the fourth sign-up from this address
        await api.post("/api/users", {"name": "dave", "password": "correct horse"})
    assert refused.value.status == 429

    async with ws_connect(metered, alice.token) as a:
        async with ws_connect(metered, bob.token) as b:
            await a.join()
            joined = await b.join()
            await a.say("hello")
            [got] = await b.messages(1)
            for _ in range(3):  # typing is rate limited per room: the third is refused
                await a.send(type="typing", room="general")
            await a.expect("error", code="rate_limited")
            during = await scrape(metered)
        for text in ("one", "two", "three"):  # bob misses these
            await alice.post(
                "/api/rooms/general/messages", {"text": text, "client_id": f"rest-{text}"}
            )
        async with ws_connect(metered, bob.token) as b:
            await b.join(since=got["seq"])
            replayed = await b.messages(3)
            assert [m["text"] for m in replayed] == ["one", "two", "three"]
    assert joined["head_seq"] == 0
    after = await scrape(metered)

    assert value(during, "nochat_connections") == 2
    assert value(during, "nochat_online_users") == 2
    assert value(during, "nochat_outbox_bytes_gcount") == 2  # one per connection
    assert value(during, "nochat_open_sockets") >= 3  # the listener and two clients
    assert value(after, "process_resident_memory_bytes") > 10_000_000
    assert value(after, "process_open_fds") > 0

    def grew(name: str, by: float = 1, **labels: str) -> None:
        delta = value(after, name, **labels) - value(before, name, **labels)
        assert delta >= by, f"{name}{labels} moved by {delta}, expected >= {by}"

    grew("nochat_store_messages_total", 4)  # messages in
    grew("nochat_deliveries_total", 2 + 2 + 3)  # hello to both, three to alice, replay aside
    grew("nochat_connection_duration_seconds_count", 3)
    grew("nochat_delivery_latency_seconds_count", 1)
    grew("nochat_store_commit_seconds_count", 1)
    grew("nochat_store_commit_batch_size_count", 1)
    grew("nochat_store_commit_batch_size_sum", 4)
    grew("nochat_resumes_total", 1)
    grew("nochat_replayed_messages_total", 3)
    grew("nochat_rate_limited_total", 1, limit="ws")
    grew("nochat_rate_limited_total", 1, limit="api.register")
    grew("nochat_auth_failures_total", 1, reason="bad_credentials")
    grew("nochat_auth_failures_total", 1, reason="invalid_token")
    assert value(after, "nochat_delivery_latency_seconds_sum") < 5.0
    assert (
        value(after, "nochat_evictions_total") == 0
    )  # exported (tests/e2e/test_backpressure.py moves it)
    assert value(after, "nochat_broker_queued") == 0  # exported; Redis: tests/broker/

    # Cardinality: no label value is a user or room name.
    for (_name, labels), _ in after.items():
        for _key, label in labels:
            assert label not in {"alice", "bob", "carol", "dave", "general"}


async def test_operations_md_lists_every_exported_nochat_metric(metered: RunningServer) -> None:
    samples = await scrape(metered)
    documented = OPERATIONS.read_text()
    families = {
        re.sub(r"_(total|bucket|count|sum|gcount|gsum|created)$", "", name)
        for name, _ in samples
        if name.startswith("nochat_")
    }
    assert len(families) > 20
    missing = sorted(f for f in families if f"`{f}" not in documented)
    assert not missing, f"docs/OPERATIONS.md does not list {missing}"
