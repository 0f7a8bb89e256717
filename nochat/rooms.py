"""The room directory: which rooms exist and who is a member, cached per node."""

from __future__ import annotations

from . import protocol
from .errors import NotFound
from .store import Room, Store, User


class RoomDirectory:
    """Rooms and memberships this node has seen, in front of the store.

    A join or send costs no store round trip after the first, and a miss (a room or
    member another node has just added) is read from the store, which every node
    shares. Nothing negative is cached, so no node can be told "no" from a stale cache.
    Only admins and owners change a room or remove a member, and every node forgets
    that entry when their signal arrives (moderation.py: `room_changed`,
    `member_removed`), so the next use reads the store again.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._rooms: dict[str, Room] = {}
        self._members: set[tuple[int, int]] = set()

    async def visible_room(self, user: User, name: str) -> Room:
        """The room if `user` may read and write it; NotFound otherwise (names never leak)."""
        room = self._rooms.get(name)
        if room is None and protocol.valid_room(name):
            room = await self._store.room(name)
            if room is not None:
                self._rooms[name] = room
        if room is None or (room.private and not await self.is_member(room, user)):
            raise NotFound(f"no room {name!r}")
        return room

    async def is_member(self, room: Room, user: User) -> bool:
        if (room.id, user.id) in self._members:
            return True
        if await self._store.is_member(room, user):
            self._members.add((room.id, user.id))
            return True
        return False

    async def ensure_member(self, room: Room, user: User) -> None:
        """Make `user` a member (public rooms on join: so they count unread); once."""
        if (room.id, user.id) not in self._members:
            await self._store.add_member(room, user)
            self._members.add((room.id, user.id))

    def forget_room(self, name: str) -> None:
        self._rooms.pop(name, None)

    def forget_all(self) -> None:
        """Signals may have been missed (resync.py): every entry is read again."""
        self._rooms.clear()
        self._members.clear()

    def forget_member(self, room_id: int, user_id: int) -> None:
        self._members.discard((room_id, user_id))

    def room_made(self, room: Room, *members: User) -> None:
        self._rooms[room.name] = room
        self._members.update((room.id, m.id) for m in members)
