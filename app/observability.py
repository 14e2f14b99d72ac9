"""Structured logs and Prometheus metrics for the public server.

Metric labels come from client input (product, channel), so they are bounded: only
products and channels that appear in the rules are used as label values; anything
else is counted as ``other``. Otherwise one client could create unbounded series.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from bisect import bisect_left

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from balrog_engine import Engine

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields given."""

    RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in self.RESERVED})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(log_format: str = "json", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
        handler.formatter.converter = time.gmtime
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class RequestStats:
    """Request counts and latency histogram, kept as plain numbers on the hot path.

    prometheus_client's labelled counters take a lock per increment (~8 µs per request
    here); these tallies cost well under a microsecond and are turned into Prometheus
    families only when scraped. Increments are not locked: under heavy thread contention
    an increment can very rarely be lost, which a counter tolerates (it stays monotonic).
    """

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS):
        self.bounds = buckets
        self.counts: dict[tuple[str, str, str], int] = {}
        self.buckets = [0] * (len(buckets) + 1)
        self.total_seconds = 0.0

    def observe(self, key: tuple[str, str, str], seconds: float) -> None:
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        self.buckets[bisect_left(self.bounds, seconds)] += 1
        self.total_seconds += seconds


class StatsCollector:
    """A prometheus_client collector reading :class:`RequestStats` at scrape time."""

    def __init__(self, stats: RequestStats):
        self.stats = stats

    def collect(self):
        stats = self.stats
        requests = CounterMetricFamily("balrog_update_requests", "Update requests by product, channel and outcome",
                                       labels=("product", "channel", "outcome"))
        for (product, channel, outcome), count in list(stats.counts.items()):
            requests.add_metric((product, channel, outcome), count)
        yield requests
        cumulative, running = [], 0
        for bound, count in zip((*map(str, stats.bounds), "+Inf"), list(stats.buckets)):
            running += count
            cumulative.append((bound, running))
        latency = HistogramMetricFamily("balrog_update_request_seconds", "Time to answer an update request")
        latency.add_metric((), cumulative, stats.total_seconds)
        yield latency


class Metrics:
    """The public server's metrics, in a registry of its own (so tests can build many apps)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.registry = CollectorRegistry()
        self.stats = RequestStats()
        self.registry.register(StatsCollector(self.stats))
        age = Gauge("balrog_snapshot_age_seconds", "Seconds since the serving snapshot was built",
                    registry=self.registry)
        age.set_function(lambda: time.time() - engine.snapshot.built_at)
        rules = Gauge("balrog_snapshot_rules", "Rules in the serving snapshot", registry=self.registry)
        rules.set_function(lambda: len(engine.snapshot))
        releases = Gauge("balrog_snapshot_releases", "Releases loaded in the serving snapshot",
                         registry=self.registry)
        releases.set_function(lambda: len(engine.snapshot.releases))
        healthy = Gauge("balrog_snapshot_refresh_ok", "1 when the last snapshot refresh succeeded",
                        registry=self.registry)
        healthy.set_function(lambda: 0 if engine.holder.last_error else 1)

    def observe(self, product: str | None, channel: str | None, outcome: str, seconds: float) -> None:
        snapshot = self.engine.snapshot
        product_label = product if product in snapshot.known_products else "other"
        channel_label = channel if channel in snapshot.known_channels else "other"
        self.stats.observe((product_label, channel_label, outcome), seconds)


class MetricsResource:
    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response):
        resp.content_type = CONTENT_TYPE_LATEST
        resp.set_header("Cache-Control", "no-cache")
        resp.data = generate_latest(self.metrics.registry)
