"""The metrics that need prometheus-client's own types: histograms and labelled counters.

Counters that only go up by one in a hot loop stay plain integers read at scrape time
(nochat/metrics.py); what is here is observed at most once per connection, per group
commit, per flusher round or write-pump frame, per refused request, never once per
delivery. Label values come from fixed sets (error codes, endpoint names), never from
user or room names: cardinality stays bounded. docs/OPERATIONS.md lists every metric.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .errors import AuthError, NoChatError, RateLimited

#: Delivery and commit latencies: sub-millisecond when healthy, seconds when not.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: Connection lifetimes: a reconnect storm (seconds) to a working day.
DURATION_BUCKETS = (1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 86400.0)
#: Appends per group commit (NOCHAT_GROUP_COMMIT_MAX is 512 by default).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
#: Bytes one connection holds queued (NOCHAT_OUTBOX_BYTES is 512 KiB by default).
OUTBOX_BUCKETS = (0, 1024, 4096, 16384, 65536, 131072, 262144, 524288, 1048576)
#: Error codes that are authentication failures (the rest of 401/403 is authorisation).
AUTH_CODES = frozenset({"bad_origin"})


class Telemetry:
    """Histograms and labelled counters in their own registry (the app adds its
    collectors to it and serves it at /metrics)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.connection_seconds = Histogram(
            "nochat_connection_duration_seconds",
            "How long WebSocket connections lasted, observed when they end",
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "nochat_delivery_latency_seconds",
            "Commit (hub publish) to socket write: per flusher round, the oldest event's "
            "wait; per write-pump frame, the time since its queue last became non-empty",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "nochat_store_commit_seconds",
            "Time one group commit took (transaction and fsync)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.commit_batch = Histogram(
            "nochat_store_commit_batch_size",
            "Appends and chores committed in one transaction",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.replayed = Counter(
            "nochat_replayed_messages",
            "Messages replayed to clients resuming with since",
            registry=registry,
        )
        self.rate_limited = Counter(
            "nochat_rate_limited",
            "Requests and frames refused by a rate limit, by where",
            ["limit"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "nochat_auth_failures",
            "Refused credentials, by reason (the error code)",
            ["reason"],
            registry=registry,
        )
        ProcessCollector(registry=registry)  # process_resident_memory_bytes, open fds, CPU
        registry.register(SocketCollector())

    def refused(self, exc: NoChatError, where: str) -> None:
        """Count an error answer that is an auth failure or a rate limit. `where` is an
        endpoint name or "ws" (a fixed set)."""
        if isinstance(exc, AuthError) or exc.code in AUTH_CODES:
            self.auth_failures.labels(reason=exc.code).inc()
        elif isinstance(exc, RateLimited):
            self.rate_limited.labels(limit=where).inc()


class SocketCollector(Collector):
    """Open sockets of this process (listening, connections, Redis, PostgreSQL), counted
    from /proc/self/fd at scrape time."""

    def collect(self) -> Iterator[Metric]:
        count = 0
        try:
            for fd in os.listdir("/proc/self/fd"):
                try:
                    if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                        count += 1
                except OSError:
                    continue  # closed between the listing and the look
        except OSError:
            return  # not Linux: no such metric
        yield GaugeMetricFamily("nochat_open_sockets", "Open sockets of this process", count)


def outbox_histogram(used: Iterator[int]) -> GaugeHistogramMetricFamily:
    """Bytes (characters) each connection holds queued now, as a gauge histogram."""
    counts = [0] * len(OUTBOX_BUCKETS)
    total = 0
    n = 0
    for chars in used:
        n += 1
        total += chars
        for i, bound in enumerate(OUTBOX_BUCKETS):
            if chars <= bound:
                counts[i] += 1
                break
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip(OUTBOX_BUCKETS, counts, strict=True):
        running += count
        buckets.append((str(float(bound)), running))
    buckets.append(("+Inf", n))
    return GaugeHistogramMetricFamily(
        "nochat_outbox_bytes",
        "Connections by the bytes they hold queued or being written, now",
        buckets=buckets,
        gsum_value=total,
    )
