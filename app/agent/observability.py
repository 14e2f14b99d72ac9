"""The agent's counters, in a registry of its own: one increment per decision (labelled by
segment and decision), per retried API call, per notification, per cycle.

Exposed as a Prometheus text file rewritten after every cycle (``metrics_file``: for
node_exporter's textfile collector, written atomically) and/or on an HTTP ``/metrics`` port
(``metrics_port``). Label values are bounded: the 8 segments, the decisions below, and the
configured notifiers' types.
"""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server, write_to_textfile

from .client import SEGMENTS, V2_SEGMENT

#: Every decision the agent takes about a change, once per change per cycle.
DECISIONS = (
    "not_ready",  # a condition does not hold (yet), or the heads-up time has not come
    "waiting_for_signoffs",  # conditions aside, required signoffs are missing
    "heads_up",  # humans notified: the change will be enacted at enact_at unless cancelled
    "waiting_grace",  # heads-up sent, grace period running
    "cancelled",  # a heads-up'd change disappeared (deleted by a human), or the server no longer has it
    "enacted",  # enacted now, or found already enacted (an earlier answer was lost)
    "failed",  # could not decide or enact (bad condition, metrics or notifier error, refusal): retried next cycle
)


class AgentStats:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.decisions = Counter("balrog_agent_decisions", "Decisions about scheduled changes",
                                 ("segment", "decision"), registry=self.registry)
        for segment in (*SEGMENTS, V2_SEGMENT):
            for decision in DECISIONS:
                self.decisions.labels(segment, decision)  # present at 0: rates work from the first scrape
        self.api_retries = Counter("balrog_agent_api_retries", "Admin API calls retried after a transient failure",
                                   registry=self.registry)
        self.listing_failures = Counter("balrog_agent_listing_failures",
                                        "Segments whose pending changes could not be listed", ("segment",),
                                        registry=self.registry)
        self.notifications = Counter("balrog_agent_notifications", "Heads-up deliveries by notifier type and outcome",
                                     ("notifier", "outcome"), registry=self.registry)
        self.cycles = Counter("balrog_agent_cycles", "Cycles run, by outcome (ok, or errors when anything failed)",
                              ("outcome",), registry=self.registry)
        self.pending = Gauge("balrog_agent_pending_heads_ups", "Changes announced and not yet enacted or cancelled",
                             registry=self.registry)
        self.last_cycle = Gauge("balrog_agent_last_cycle_timestamp_seconds", "When the last cycle ended",
                                registry=self.registry)

    def decision(self, segment: str, decision: str) -> None:
        self.decisions.labels(segment, decision).inc()

    def cycle_done(self, ok: bool, pending: int) -> None:
        self.cycles.labels("ok" if ok else "errors").inc()
        self.pending.set(pending)
        self.last_cycle.set(time.time())

    def write_textfile(self, path: str) -> None:
        write_to_textfile(path, self.registry)

    def serve(self, host: str, port: int):
        """Serve ``/metrics`` in a daemon thread; returns the server (``.shutdown()``, ``.server_port``)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
