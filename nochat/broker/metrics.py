"""Prometheus metrics of the broker and of the hub's seq guard, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..hub import Hub
from . import Broker, BrokerStatus


class BrokerCollector(Collector):
    def __init__(self, broker: Broker, hub: Hub) -> None:
        self.broker = broker
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        s = self.broker.statistics()
        up = 1 if s.status is BrokerStatus.HEALTHY else 0
        yield GaugeMetricFamily("nochat_broker_up", "1: the broker is connected", value=up)
        yield GaugeMetricFamily(
            "nochat_broker_queued", "Events waiting to be published to Redis", value=s.queued
        )
        for name, doc, value in (
            ("nochat_broker_held", "Events that waited for an earlier seq", s.held),
            ("nochat_broker_gap_fills", "Gaps read from the store", s.gap_fills),
            ("nochat_broker_duplicates", "Events already delivered when they came", s.duplicates),
            ("nochat_broker_dropped", "Events not published to Redis (buffer full)", s.dropped),
            ("nochat_broker_sent", "Messages published to Redis", s.sent),
            ("nochat_broker_received", "Messages from other nodes", s.received),
            ("nochat_broker_connects", "Connections made to Redis", s.connects),
            ("nochat_seq_gaps", "Subscribers closed (4008) rather than skip a seq", self.hub.gaps),
        ):
            yield CounterMetricFamily(name, doc, value=value)
