"""History pages are gapless: what a page of a room's log must hold, given its head.

Every room numbers its log's events 1..head with no gaps and no row is ever removed
(a delete is an event; it blanks the text, not the row). A page holds messages only,
so the seqs it spans follow from the request, the head and the page: every seq in that
window must be a row of the log, and a count of the window's rows checks that. A page that falls
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


def log_window(
    seqs: Sequence[int], *, head: int, before: int | None, after: int | None, limit: int
) -> range:
    """The log seqs a page of messages `seqs` (oldest first) spans: from the request's
    bound to the page's far end, or to the log's end when the page is not full."""
    full = len(seqs) >= limit
    if after is not None:
        after = max(after, 0)
        return range(after + 1, (seqs[-1] if full and seqs else head) + 1)
    top = head if before is None else min(head, before - 1)
    return range(seqs[0] if full and seqs else 1, top + 1)


def missing_from_page(window: range, rows: int) -> str | None:
    """None when the log holds a row for every seq of `window`, else what is wrong."""
    if rows == len(window):
        return None
    return f"expected {len(window)} events in seqs {window.start}..{window.stop - 1}, read {rows}"
