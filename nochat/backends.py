"""The one place that chooses a storage backend from the settings."""

from __future__ import annotations

from .auth import load_or_create_secret
from .blobs import BlobStore
from .blobs.local import LocalBlobStore
from .errors import ConfigError
from .settings import Settings
from .store import Store
from .store.sqlite import SQLiteStore


def open_store(settings: Settings) -> Store:
    """The store the settings ask for (not yet running: start it with `nursery.start(run)`).

    NOCHAT_DATABASE_URL selects PostgreSQL; psycopg is imported only then, so the
    default install (SQLite) needs nothing but Python.
    """
    if settings.database_url:
        try:
            from .store.postgres import PostgresStore
        except ImportError as exc:
            raise ConfigError(
                [f"NOCHAT_DATABASE_URL needs psycopg: pip install 'nochat[postgres]' ({exc})"]
            ) from exc
        return PostgresStore(
            settings.database_url,
            pool_size=settings.database_pool_size,
            group_commit_max=settings.group_commit_max,
        )
    return SQLiteStore(
        settings.db_path,
        synchronous=settings.sqlite_synchronous,
        group_commit_max=settings.group_commit_max,
    )


def open_blobs(settings: Settings) -> BlobStore:
    """Where files live: beside the PostgreSQL store when there is one (every node reaches
    it), else in the data directory. Not yet running: start it with `nursery.start(run)`."""
    if settings.database_url:
        from .blobs.postgres import PostgresBlobStore

        return PostgresBlobStore(settings.database_url)
    return LocalBlobStore(settings.data_dir)


def signing_secret(settings: Settings, store: Store) -> bytes:
    """The token secret: NOCHAT_SECRET, else the one every node reads from the shared
    database, else one kept in the data directory. Call once the store has started."""
    if settings.secret:
        return settings.secret.encode()
    if store.shared_secret:
        return store.shared_secret.encode()
    return load_or_create_secret("", settings.data_dir)
