"""Who is online where, in this process: a user with several connections counts once."""

from __future__ import annotations

from collections import Counter
from itertools import islice


class Presence:
    """Per-room connection counts per user. `enter`/`leave` say when presence changes."""

    def __init__(self) -> None:
        self._rooms: dict[str, Counter[str]] = {}
        self._users: Counter[str] = Counter()

    def connect(self, user: str) -> None:
        self._users[user] += 1

    def disconnect(self, user: str) -> None:
        self._users[user] -= 1
        if self._users[user] <= 0:
            del self._users[user]

    def enter(self, room: str, user: str) -> bool:
        """Count one more connection of `user` in `room`; True if the user just came online."""
        counts = self._rooms.setdefault(room, Counter())
        counts[user] += 1
        return counts[user] == 1

    def leave(self, room: str, user: str) -> bool:
        """Count one connection fewer; True if that was the user's last one in the room."""
        counts = self._rooms.get(room)
        if counts is None or counts[user] <= 0:
            return False
        counts[user] -= 1
        if counts[user] > 0:
            return False
        del counts[user]
        if not counts:
            del self._rooms[room]
        return True

    def online_summary(self, room: str, most: int) -> dict[str, list[str] | int]:
        """`online`: up to `most` of the names (all of them in a smaller room), sorted;
        `online_count`: how many there are."""
        counts: Counter[str] = self._rooms.get(room) or Counter()
        names = sorted(islice(counts, most))  # O(most), not O(room): joins stay cheap
        return {"online": names, "online_count": len(counts)}

    def is_in(self, room: str, user: str) -> bool:
        counts = self._rooms.get(room)
        return counts is not None and counts.get(user, 0) > 0

    def entries(self) -> list[tuple[str, str]]:
        """Every (room, user) present (a full scan: for re-registering with Redis)."""
        return [(room, user) for room, counts in self._rooms.items() for user in counts]

    def users(self) -> list[str]:
        return list(self._users)

    def rooms_of(self, user: str) -> list[str]:
        """The rooms `user` is present in (a scan of the rooms: for rare status changes)."""
        return [room for room, counts in self._rooms.items() if counts.get(user, 0) > 0]

    def online_users(self) -> int:
        return len(self._users)

    def connections_of(self, user: str) -> int:
        return self._users.get(user, 0)
