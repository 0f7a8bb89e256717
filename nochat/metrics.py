"""Prometheus metrics read at scrape time from plain counters (nothing on the hot path).

Histograms and labelled counters, observed where things happen, are in
nochat/telemetry.py; docs/OPERATIONS.md lists every metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .broker.presence import PresenceBoard
from .hub import Hub
from .telemetry import outbox_histogram


@dataclass(slots=True)
class Counters:
    """Plain integers the connection code bumps; exported by `NoChatCollector`."""

    frames_in: int = 0
    frames_out: int = 0
    events_out: int = 0
    resumes: int = 0
    errors_sent: int = 0
    closed_no_pong: int = 0
    closed_internal: int = 0
    #: Connections the client ended: it closed, or a write found it gone (reset, killed).
    disconnects: int = 0
    closed_rate_limited: int = 0


class NoChatCollector(Collector):
    def __init__(
        self,
        counters: Counters,
        hub: Hub,
        presence: PresenceBoard,
        store_stats: Callable[[], tuple[int, int]],
    ) -> None:
        self.counters = counters
        self.hub = hub
        self.presence = presence
        self.store_stats = store_stats

    def collect(self) -> Iterator[Metric]:
        c = self.counters
        stats = self.hub.statistics()
        yield GaugeMetricFamily(
            "nochat_connections", "Open WebSocket connections", value=stats.connections
        )
        yield GaugeMetricFamily(
            "nochat_online_users", "Distinct users online", value=self.presence.online_users()
        )
        yield GaugeMetricFamily(
            "nochat_outbox_queued_max", "Most events queued in one outbox", value=stats.max_queued
        )
        yield GaugeMetricFamily(
            "nochat_outbox_queued_chars_max",
            "Most characters one connection holds queued or being written",
            value=stats.max_queued_chars,
        )
        yield GaugeMetricFamily(
            "nochat_outbox_queued_chars",
            "Characters all connections hold queued or being written",
            value=stats.total_queued_chars,
        )
        for name, doc, value in (
            ("nochat_frames_in", "WebSocket frames received", c.frames_in),
            ("nochat_frames_out", "WebSocket frames sent", c.frames_out),
            ("nochat_events_out", "Events sent (a frame may batch several)", c.events_out),
            ("nochat_resumes", "Joins that replayed missed messages", c.resumes),
            ("nochat_error_frames", "error frames sent", c.errors_sent),
            ("nochat_evictions", "Slow consumers evicted (4008)", stats.evictions),
            ("nochat_published", "Events published to the hub", stats.published),
            ("nochat_deliveries", "Events handed to subscribers (one per socket)", stats.delivered),
            ("nochat_closed_no_pong", "Connections closed for silence (4002)", c.closed_no_pong),
            ("nochat_disconnects", "Connections the client ended or abandoned", c.disconnects),
            (
                "nochat_closed_rate_limited",
                "Connections closed for floods (4029)",
                c.closed_rate_limited,
            ),
            (
                "nochat_internal_errors",
                "Connections closed by a server bug (1011)",
                c.closed_internal,
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        yield outbox_histogram(self.hub.queued_chars())
        commits, messages = self.store_stats()
        yield CounterMetricFamily("nochat_store_commits", "Group commits", value=commits)
        yield CounterMetricFamily("nochat_store_messages", "Messages committed", value=messages)


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
