"""Event ids: a millisecond prefix and a random suffix, strictly increasing in a process.

Search pages and orders hits across rooms by event id (newest first, `before` an id), so
two events of one millisecond must still compare in the order they were stored: within a
millisecond the next id is the last one's suffix plus one. The suffix of a millisecond's
first id is random. Ids are not secrets (every member of a room sees them); across nodes,
ids of the same millisecond compare in no particular order, as their events do.
"""

from __future__ import annotations

import secrets
import threading
import time

_SUFFIX_BITS = 48
_lock = threading.Lock()  # appends run in worker threads
_last = (0, 0)  # (ms, suffix) of the last id made


def new_id() -> str:
    """The next event id: sortable, and after every id this process made before."""
    global _last
    ms = time.time_ns() // 1_000_000
    with _lock:
        last_ms, last_suffix = _last
        if ms > last_ms:
            suffix = secrets.randbits(_SUFFIX_BITS - 1)  # room below 2**48 to count up
        else:  # the same millisecond, or the clock stepped back: count on from the last
            ms, suffix = last_ms, last_suffix + 1
            if suffix >> _SUFFIX_BITS:
                ms, suffix = ms + 1, 0
        _last = (ms, suffix)
    return f"{ms:012x}{suffix:012x}"
