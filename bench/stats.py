"""Latency histograms that merge across processes, and percentile helpers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

#: Histogram resolution: 10 µs buckets below 100 ms, 1 ms buckets above.
FINE_US = 10
COARSE_US = 1000
FINE_LIMIT_US = 100_000


def bucket_of(latency_us: int) -> int:
    """The histogram bucket (its lower bound in µs) holding `latency_us`."""
    if latency_us < FINE_LIMIT_US:
        return max(0, latency_us) // FINE_US * FINE_US
    return latency_us // COARSE_US * COARSE_US


class Histogram:
    """Counts of latencies by bucket, plus the exact maximum; cheap to merge and to ship as JSON."""

    __slots__ = ("counts", "max_us", "total")

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.max_us = 0
        self.total = 0

    def add(self, latency_us: int) -> None:
        self.counts[bucket_of(latency_us)] += 1
        self.total += 1
        if latency_us > self.max_us:
            self.max_us = latency_us

    def merge(self, other: Mapping[str, object]) -> None:
        """Merge a histogram's `to_json()` form."""
        counts = other["counts"]
        assert isinstance(counts, dict)
        for key, n in counts.items():
            self.counts[int(key)] += int(n)
        self.total += int(other["total"])  # type: ignore[call-overload]
        self.max_us = max(self.max_us, int(other["max_us"]))  # type: ignore[call-overload]

    def to_json(self) -> dict[str, object]:
        return {
            "counts": {str(k): v for k, v in self.counts.items()},
            "max_us": self.max_us,
            "total": self.total,
        }

    def percentile_ms(self, pct: float) -> float | None:
        """The `pct` percentile in ms (upper edge of its bucket, capped by the max), or None."""
        if not self.total:
            return None
        rank = pct / 100.0 * self.total
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                width = FINE_US if key < FINE_LIMIT_US else COARSE_US
                return min(key + width, self.max_us) / 1000.0
        return self.max_us / 1000.0

    def summary(self) -> dict[str, float | None]:
        return {
            "p50_ms": self.percentile_ms(50),
            "p99_ms": self.percentile_ms(99),
            "max_ms": self.max_us / 1000.0 if self.total else None,
        }


def merged(parts: Iterable[Mapping[str, object]]) -> Histogram:
    hist = Histogram()
    for part in parts:
        hist.merge(part)
    return hist
