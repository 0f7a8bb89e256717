"""`nochat admin promote|demote NAME` against a running server's store, SQLite and
PostgreSQL: the promoted user is an admin over REST at once, the demoted one no more."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support import Api, HttpError, cli_env, cli_server, run_cli


async def _promote_then_demote(data_dir: Path, **variables: str) -> None:
    env = cli_env(data_dir, **variables)
    async with cli_server(data_dir, **variables) as (_, base):
        ann = await Api(base).signup("ann")
        with pytest.raises(HttpError) as before:
            await ann.get("/api/admin/users")
        assert before.value.status == 403
        done = await run_cli(["admin", "promote", "ann"], env)
        assert done.returncode == 0, done.stderr
        assert b"ann is now admin" in done.stdout
        users = await ann.get("/api/admin/users")
        assert [(u["name"], u["role"]) for u in users["users"]] == [("ann", "admin")]
        audit = await ann.get("/api/admin/audit")
        assert [(e["actor"], e["action"], e["target"]) for e in audit["entries"]] == [
            ("cli", "promote", "ann")
        ]
        missing = await run_cli(["admin", "promote", "nobody"], env)
        assert missing.returncode == 1 and b"no user 'nobody'" in missing.stderr
        demoted = await run_cli(["admin", "demote", "ann"], env)
        assert demoted.returncode == 0, demoted.stderr
        with pytest.raises(HttpError) as after:
            await ann.get("/api/admin/users")
        assert after.value.status == 403


async def test_cli_admin_promote_on_sqlite(tmp_path: Path) -> None:
    await _promote_then_demote(tmp_path / "data")


async def test_cli_admin_promote_on_postgres(tmp_path: Path, pg_url: str) -> None:
    await _promote_then_demote(tmp_path / "data", NOCHAT_DATABASE_URL=pg_url)


async def test_cli_admin_refuses_a_data_directory_without_a_database(tmp_path: Path) -> None:
    done = await run_cli(["admin", "promote", "ann"], cli_env(tmp_path / "empty"))
    assert done.returncode == 1 and b"no database" in done.stderr
    assert not (tmp_path / "empty").exists()
