"""One room's stream of published events, as the hub keeps it until every local
subscriber of the room has been handed them.

`Hub.publish` appends an event here once, whatever the number of subscribers; the hub's
flusher later hands each subscriber its share (`take`) when it writes to that subscriber
anyway. Positions count every item ever published to the room in this process:
`texts[0]` is at `base`, and a subscriber's `RoomCursor.pos` says how far it has been
handed. What a cursor gets follows its rules (`RoomCursor`): live, every event once and
never one that skips a seq (`SeqGap`); catching up, events without a seq only, the
others noted in `seen`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .subscriber import RoomCursor, SeqGap, Subscriber


@dataclass(eq=False, slots=True)
class RoomStream:
    name: str
    subs: dict[Subscriber, None] = field(default_factory=dict)
    #: Subscribers without a direct sink: handed each item at publish.
    now: dict[Subscriber, None] = field(default_factory=dict)
    #: Each item as published: its text, the highest seq it carries and the first one
    #: (None and None: an event without a seq, such as presence).
    texts: list[str] = field(default_factory=list)
    lasts: list[int | None] = field(default_factory=list)
    firsts: list[int | None] = field(default_factory=list)
    base: int = 0
    #: From this index on every item carries seqs, each run right after the one before
    #: (what the broker's Sequencer publishes): a live cursor there takes them all.
    regular_from: int = 0

    @property
    def end(self) -> int:
        return self.base + len(self.texts)

    def append(self, encoded: str, seq: int | None, first: int | None) -> None:
        lasts = self.lasts
        i = len(lasts)
        first = seq if first is None else first
        if seq is None or first is None:
            self.regular_from = i + 1
        elif i > self.regular_from and lasts[-1] != first - 1:
            self.regular_from = i
        self.texts.append(encoded)
        lasts.append(seq)
        self.firsts.append(first)

    def drop_before(self, pos: int) -> None:
        """Forget the items before `pos` (every subscriber has had them)."""
        n = pos - self.base
        if n > 0:
            del self.texts[:n], self.lasts[:n], self.firsts[:n]
            self.base = pos
            self.regular_from = max(0, self.regular_from - n)

    def take(self, cursor: RoomCursor) -> list[str]:
        """What `cursor` gets of the items it has not been handed; it is then past all.
        Raises SeqGap when a live cursor would skip seqs (it must resume instead)."""
        texts, base = self.texts, self.base
        n = len(texts)
        start = cursor.pos - base
        cursor.pos = base + n
        if start >= n:
            return []
        if start < 0:  # (a subscriber left behind: the seq checks below say what it gets)
            start = 0
        if cursor.live:
            last = self.lasts[-1]
            if (
                start >= self.regular_from
                and self.firsts[start] == cursor.seq + 1
                and last is not None
            ):
                cursor.seq = last  # the common case: a run of seqs right after its own
                return texts[start:]
            return self._take_live(cursor, start)
        out: list[str] = []
        for i in range(start, len(texts)):  # catching up from the store: noted only
            seq = self.lasts[i]
            if seq is None:
                if cursor.announced:
                    out.append(texts[i])
            elif seq > cursor.seen:
                cursor.seen = seq
        return out

    def _take_live(self, cursor: RoomCursor, start: int) -> list[str]:
        out: list[str] = []
        last = cursor.seq
        for i in range(start, len(self.texts)):
            seq = self.lasts[i]
            if seq is not None:
                if seq <= last:
                    continue
                if self.firsts[i] != last + 1:
                    raise SeqGap(self.name)
                last = seq
            out.append(self.texts[i])
        cursor.seq = last
        return out
