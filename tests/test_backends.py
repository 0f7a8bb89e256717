"""The backend factory: one place picks the store, and callers see only the protocol."""

from __future__ import annotations

import ast
from pathlib import Path

import trio

from nochat.backends import open_store, signing_secret
from nochat.store import AppendRequest, StoreStatistics, User

from .support import make_settings

PACKAGE = Path(__file__).resolve().parent.parent / "nochat"


async def test_backends_default_store_is_sqlite_and_counts_commits(tmp_path: Path) -> None:
    store = open_store(make_settings(tmp_path / "data"))
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        room = await store.room("general")
        assert room is not None
        user: User = await store.create_user("ann", "hash")
        await store.append(AppendRequest(room, user, "hi", "c1"))
        assert store.statistics() == StoreStatistics(commits=1, committed_messages=1)
        assert store.published_head(room) == 1
        store.close()
    assert (tmp_path / "data" / "nochat.sqlite3").exists()


def test_backends_only_the_factory_names_a_concrete_store() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "store" or rel == Path("backends.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("store."):
                offenders.append(f"{rel}: from {node.module}")
    assert offenders == []


def test_backends_database_url_selects_postgres(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url="postgresql://u@127.0.0.1:1/db")
    store = open_store(settings)
    assert type(store).__name__ == "PostgresStore"
    assert store.epoch == ""  # nothing is opened before run()
    assert not (tmp_path / "nochat.sqlite3").exists()


async def test_backends_secret_is_the_configured_one_else_the_shared_database_one(
    tmp_path: Path, pg_url: str
) -> None:
    settings = make_settings(tmp_path, database_url=pg_url, secret="")
    store = open_store(settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        assert signing_secret(settings, store) == store.shared_secret.encode() != b""
        assert signing_secret(settings.replace(secret="override"), store) == b"override"
        store.close()
    assert not (tmp_path / "secret.key").exists()
