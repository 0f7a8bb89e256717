"""The one place that chooses a storage backend from the settings."""

from __future__ import annotations

from .settings import Settings
from .store import Store
from .store.sqlite import SQLiteStore


def open_store(settings: Settings) -> Store:
    """The store the settings ask for (not yet running: start it with `nursery.start(run)`)."""
    return SQLiteStore(
        settings.db_path,
        synchronous=settings.sqlite_synchronous,
        group_commit_max=settings.group_commit_max,
    )
