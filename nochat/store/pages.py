"""History pages are gapless: what a page of a room's log must hold, given its head.

Every room numbers its messages 1..head with no gaps and nothing is ever removed, so a
page's size and bounds follow from the request and the head alone. A page that falls
short can only come from a damaged database (a b-tree page SQLite reads as valid but
that lost cells, for example); serving it as a complete page would silently hide
messages, so the store raises instead (StorageError, HTTP 503) and reports itself
damaged in /readyz.
"""

from __future__ import annotations

from collections.abc import Sequence


def expected_seqs(*, head: int, before: int | None, after: int | None, limit: int) -> range:
    """The seqs a history page must hold, oldest first."""
    if after is not None:
        after = max(after, 0)
        return range(after + 1, min(head, after + limit) + 1)
    top = head if before is None else min(head, before - 1)
    return range(max(1, top - limit + 1), top + 1)


def missing_from_page(
    seqs: Sequence[int], *, head: int, before: int | None, after: int | None, limit: int
) -> str | None:
    """None when `seqs` is exactly the page asked for, else what is wrong (for the log)."""
    want = expected_seqs(head=head, before=before, after=after, limit=limit)
    if list(seqs) == list(want):
        return None
    return f"expected seqs {want.start}..{want.stop - 1} ({len(want)}), read {len(seqs)}"
