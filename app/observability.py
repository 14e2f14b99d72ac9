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

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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


class Metrics:
    """The public server's metrics, in a registry of its own (so tests can build many apps)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.registry = CollectorRegistry()
        self.requests = Counter("balrog_update_requests", "Update requests by product, channel and outcome",
                                ("product", "channel", "outcome"), registry=self.registry)
        self.latency = Histogram("balrog_update_request_seconds", "Time to answer an update request",
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
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
        self.requests.labels(product_label, channel_label, outcome).inc()
        self.latency.observe(seconds)


class MetricsResource:
    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response):
        resp.content_type = CONTENT_TYPE_LATEST
        resp.set_header("Cache-Control", "no-cache")
        resp.data = generate_latest(self.metrics.registry)
