"""Event ids order as their events were made, within a millisecond too."""

from __future__ import annotations

import threading

from nochat.store import new_id


def test_ids_of_one_millisecond_still_increase() -> None:
    ids = [new_id() for _ in range(5_000)]  # many share a millisecond
    assert len({i[:12] for i in ids}) < len(ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(i) == 24 and int(i, 16) >= 0 for i in ids)


def test_ids_from_threads_are_unique_and_each_thread_sees_them_increase() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def make(out: list[str]) -> None:
        out.extend(new_id() for _ in range(2_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for out in made for i in out]
    assert len(set(every)) == len(every)
    assert all(out == sorted(out) for out in made)
