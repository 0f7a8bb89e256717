"""The SQLite writer's chores: small writes that ride the next group commit."""

from __future__ import annotations

from typing import NamedTuple


class Chore(NamedTuple):
    """A small write that rides the next group commit instead of a transaction (and an
    fsync) of its own: a membership, a read marker."""

    sql: str
    params: tuple[object, ...]
