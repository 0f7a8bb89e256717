"""`nochat backup` beside a running server that is being written to, and `nochat restore`."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import trio

from nochat.auth import SECRET_FILE

from ..files_client import http, upload_ok
from ..support import Api, cli_env, make_settings, run_cli, start_server, ws_connect

#: Messages each sender has acked before the backup starts (and it goes on sending).
BEFORE_BACKUP = 40


async def history_ids(api: Api, room: str = "general") -> tuple[list[int], set[str], str]:
    """Every message's seq (in order) and id in `room`, paged from the start."""
    seqs: list[int] = []
    ids: set[str] = set()
    after = 0
    while True:
        page = await api.get(f"/api/rooms/{room}/messages?after={after}&limit=200")
        if not page["messages"]:
            return seqs, ids, page["epoch"]
        for message in page["messages"]:
            seqs.append(message["seq"])
            ids.add(message["id"])
        after = seqs[-1]


async def test_backup_while_sending_then_restore_keeps_every_acked_message(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    # A secret kept in the data directory (as without NOCHAT_SECRET) and uploaded files.
    server = await start_server(nursery, make_settings(data, secret=""))
    (data / "files" / "ab").mkdir(parents=True)
    (data / "files" / "ab" / "blob").write_bytes(b"\x00uploaded")
    api = Api(server.http)
    tokens = [(await api.signup(name)).token for name in ("alice", "bob")]
    acked: list[str] = []
    enough = trio.Event()
    stop = trio.Event()

    async def sender(token: str, task_status: trio.TaskStatus[None]) -> None:
        async with ws_connect(server, token) as ws:
            await ws.join()
            task_status.started()
            count = 0
            while not stop.is_set():
                client_id = await ws.say(f"message {count}")
                ack = await ws.expect("ack", client_id=client_id)
                acked.append(ack["id"])
                count += 1
                if len(acked) >= BEFORE_BACKUP * len(tokens):
                    enough.set()

    async with trio.open_nursery() as senders:
        for token in tokens:
            await senders.start(sender, token)
        await enough.wait()
        acked_before = set(acked)  # every message acked before the backup began
        result = await run_cli(["backup", str(tmp_path / "backup")], cli_env(data))
        acked_during = len(acked) - len(acked_before)
        stop.set()
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().startswith("nochat: backed up ")
    old_epoch = server.services.store.epoch
    await server.stop()

    manifest: dict[str, Any] = json.loads((tmp_path / "backup/nochat-backup.json").read_text())
    assert manifest["events"] >= len(acked_before)
    assert set(manifest["copied"]) == {
        "nochat.sqlite3",
        SECRET_FILE,
        "files/",
        "files.sqlite3",
        "blobs/",
    }
    assert stat.S_IMODE((tmp_path / "backup" / SECRET_FILE).stat().st_mode) == 0o600

    restored = tmp_path / "restored"
    result = await run_cli(["restore", str(tmp_path / "backup")], cli_env(restored))
    assert result.returncode == 0, result.stderr.decode()
    assert (restored / "files/ab/blob").read_bytes() == b"\x00uploaded"
    assert (restored / SECRET_FILE).read_bytes() == (data / SECRET_FILE).read_bytes()

    again = await start_server(nursery, make_settings(restored, secret=""))
    # The restored secret: a session made before the backup still signs in.
    api = Api(again.http, tokens[0])
    seqs, ids, epoch = await history_ids(api)
    assert acked_before <= ids
    assert seqs == list(range(1, len(seqs) + 1))  # gapless, as the snapshot was consistent
    assert len(ids) <= len(acked_before) + acked_during
    assert epoch != old_epoch  # clients that saw later seqs start over (reset)
    await again.stop()


async def test_restore_refuses_a_data_directory_that_is_not_empty(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await _make_backup(tmp_path, data)
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = await run_cli(["restore", str(tmp_path / "backup")], cli_env(target))
    assert result.returncode == 1
    assert "not empty" in result.stderr.decode()
    assert sorted(p.name for p in target.iterdir()) == ["nochat.lock", "notes.txt"]


async def test_backup_refuses_an_existing_destination_and_a_missing_database(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    await _make_backup(tmp_path, data)
    again = await run_cli(["backup", str(tmp_path / "backup")], cli_env(data))
    assert again.returncode == 1
    assert "not empty" in again.stderr.decode()
    missing = await run_cli(["backup", str(tmp_path / "b2")], cli_env(tmp_path / "nothing"))
    assert missing.returncode == 1
    assert "no database" in missing.stderr.decode()
    assert not (tmp_path / "nothing").exists()  # a backup never creates a database


async def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    result = await run_cli(["restore", str(tmp_path / "junk")], cli_env(tmp_path / "data"))
    assert result.returncode == 1
    assert "is not a NoChat backup" in result.stderr.decode()


async def _make_backup(tmp_path: Path, data: Path) -> None:
    """A stopped server's data directory with one message, backed up to tmp_path/backup."""
    async with trio.open_nursery() as nursery:
        server = await start_server(nursery, make_settings(data))
        alice = await Api(server.http).signup("alice")
        await alice.post("/api/rooms/general/messages", {"text": "hi", "client_id": "c1"})
        await server.stop()
    result = await run_cli(["backup", str(tmp_path / "backup")], cli_env(data))
    assert result.returncode == 0, result.stderr.decode()


async def test_backup_with_postgresql_points_at_pg_dump(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data", NOCHAT_DATABASE_URL="postgresql://nochat@localhost/x")
    result = await run_cli(["backup", str(tmp_path / "backup")], env)
    assert result.returncode == 1
    assert "pg_dump" in result.stderr.decode()
    assert not (tmp_path / "backup").exists()


async def test_backup_and_restore_keep_uploaded_files(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = await start_server(nursery, make_settings(data))
    ann = await Api(server.http).signup("ann")
    content = b"an upload that must survive a restore " * 100
    uploaded = await upload_ok(ann, content, "notes.txt")
    async with ws_connect(server, ann.token) as ws:
        await ws.join()
        await ws.send(
            type="send", room="general", text="", client_id="f1", attachments=[uploaded["id"]]
        )
        await ws.expect("ack", client_id="f1")
    result = await run_cli(["backup", str(tmp_path / "backup")], cli_env(data))
    assert result.returncode == 0, result.stderr.decode()
    await server.stop()
    manifest: dict[str, Any] = json.loads((tmp_path / "backup/nochat-backup.json").read_text())
    assert {"files.sqlite3", "blobs/"} <= set(manifest["copied"])

    restored = tmp_path / "restored"
    result = await run_cli(["restore", str(tmp_path / "backup")], cli_env(restored))
    assert result.returncode == 0, result.stderr.decode()
    again = await start_server(nursery, make_settings(restored))
    answer = await http(again.http, "GET", f"/api/files/{uploaded['id']}", token=ann.token)
    assert answer.status == 200 and answer.body == content
    await again.stop()
