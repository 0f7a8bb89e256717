"""The admin page's live numbers: online users, messages per second and p99 delivery
latency, sampled every 10 s over the last hour, in memory, on this node only (a restart
starts the series over; behind a load balancer each node answers with its own).

Messages per second is the store's committed-message counter's growth between samples;
p99 delivery is read from the delivery-latency histogram that /metrics serves
(telemetry.py): the upper bound of the bucket holding the 99th percentile of the
deliveries observed since the previous sample (0 when there were none).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import trio
from prometheus_client import Histogram

from .store import now_ms

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 10.0
#: One hour of samples.
SAMPLES_KEPT = 360
SERIES = ("online_users", "messages_per_s", "p99_delivery_ms")


def _buckets(histogram: Histogram) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of each bucket, +Inf last."""
    out: list[tuple[float, float]] = []
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith("_bucket"):
                out.append((float(sample.labels["le"]), sample.value))
    return out


def p99_ms(before: list[tuple[float, float]], after: list[tuple[float, float]]) -> float:
    """The 99th percentile (ms, a bucket's upper bound) of what was observed in between."""
    if not after:
        return 0.0
    old = dict(before)
    deltas = [(le, count - old.get(le, 0.0)) for le, count in after]
    total = deltas[-1][1]
    if total <= 0:
        return 0.0
    finite = [le for le, _ in deltas if le != float("inf")]
    for le, count in deltas:
        if count >= 0.99 * total:
            return round((le if le != float("inf") else finite[-1]) * 1000, 3)
    return 0.0


class StatsSampler:
    def __init__(
        self,
        online_users: Callable[[], int],
        connections: Callable[[], int],
        committed: Callable[[], int],
        delivery: Histogram,
    ) -> None:
        self._online_users = online_users
        self._connections = connections
        self._committed = committed
        self._delivery = delivery
        self.series: dict[str, deque[tuple[int, float]]] = {
            name: deque(maxlen=SAMPLES_KEPT) for name in SERIES
        }
        self._last_time = 0.0  # run() starts the clock
        self._last_committed = 0
        self._last_buckets: list[tuple[float, float]] = []

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._last_time = trio.current_time()
        self._last_committed = self._committed()
        self._last_buckets = _buckets(self._delivery)
        self.sample()
        task_status.started()
        while True:
            await trio.sleep(SAMPLE_INTERVAL_S)
            self.sample()

    def _since_last(self) -> tuple[float, float]:
        elapsed = max(trio.current_time() - self._last_time, 1e-9)
        rate = (self._committed() - self._last_committed) / elapsed
        return round(rate, 3), p99_ms(self._last_buckets, _buckets(self._delivery))

    def sample(self) -> None:
        ts = now_ms()
        rate, p99 = self._since_last()
        self.series["online_users"].append((ts, float(self._online_users())))
        self.series["messages_per_s"].append((ts, rate))
        self.series["p99_delivery_ms"].append((ts, p99))
        self._last_time = trio.current_time()
        self._last_committed = self._committed()
        self._last_buckets = _buckets(self._delivery)

    def snapshot(self) -> dict[str, Any]:
        """`{now: {...}, series: {name: [[ts_ms, value]…]}}` (the GET /api/admin/stats body)."""
        rate, p99 = self._since_last()
        return {
            "now": {
                "online_users": self._online_users(),
                "connections": self._connections(),
                "messages_per_s": rate,
                "p99_delivery_ms": p99,
            },
            "series": {
                name: [list(point) for point in points] for name, points in self.series.items()
            },
        }
