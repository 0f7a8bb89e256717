"""StoreFeed: the broker's reads from the store (a room's head, a range of its events).

The store is the source of truth; the broker only asks it what pub/sub lost. Kept as two
plain callables so the broker never depends on a store class.
"""

from __future__ import annotations

from .. import events, protocol
from ..store import Store

#: Most events read from the store per query while filling one gap.
FILL_PAGE = 500


class StoreFeed:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def fetch_range(self, room: str, after: int, upto: int) -> list[tuple[str, int]]:
        """Room events with after < seq <= upto, encoded, in seq order."""
        found = await self.store.room(room)
        if found is None:
            return []
        out: list[tuple[str, int]] = []
        while after < upto:
            # Every kind: a gap may be an edit, a delete or a reaction as well as a message.
            page = await self.store.replay(found, after=after, limit=min(FILL_PAGE, upto - after))
            for e in page:
                if e.seq > upto:
                    break
                out.append((protocol.encode(events.log_event(e)), e.seq))
            if not page:
                break
            after = page[-1].seq
        return out

    async def fetch_head(self, room: str) -> int:
        found = await self.store.room(room)
        return 0 if found is None else await self.store.head_seq(found)
