"""The agent's loop: every ``interval`` seconds, one cycle over the pending changes in the
reference's order (the 7 v1 segments, then v2 releases; scheduled-changes-and-agent.md §8.2),
taking one decision per change.

For one change (:meth:`Agent.process`):

1. Its conditions are built from the plugins (an unknown condition or bad parameters: *failed*,
   never enacted) — a change without any condition is never enacted (*not_ready*).
2. Required signoffs must be complete (*waiting_for_signoffs*).
3. Every condition must hold, or be known to hold at a foreseeable moment (``holds_from``; the
   time condition names its ``when``). Otherwise *not_ready*, naming the conditions.
4. Once the change will be ready before the next cycle plus the grace period, the heads-up goes
   out through every notifier (*heads_up*) announcing ``enact_at`` = the later of "ready" and
   "now + grace": a time-based change seen ahead of time is enacted at its ``when`` (on the first
   cycle at or after it, like the reference), and humans always get at least the grace period.
   Until every notifier has delivered it, *failed* (retried next cycle).
5. Until ``enact_at``: *waiting_grace*. Each cycle re-reads the change, so a change that was
   deleted in the meantime (a human cancelled it) is *cancelled*; an edited one (new
   ``sc_data_version``) is announced again; one whose signoffs or conditions stopped holding
   goes back to waiting, and gets a new heads-up when ready again.
6. At ``enact_at`` the agent enacts (*enacted*). The server refusing because the change is
   already complete means an earlier enact went through and its answer was lost: *enacted* too
   (enactment is idempotent). Gone (404): *cancelled*. Any other refusal: *failed*, retried
   next cycle.

Errors are contained per change (and per segment listing): one change that always fails does
not hold the others back. A stop request (SIGTERM) is honoured between changes.

State is in memory only (the announced changes). After a restart the agent may announce a
pending change again, never enact one twice: completed changes are no longer listed, and the
server refuses to enact them.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import quote

from marshmallow import ValidationError

from balrog_engine import (
    Condition, ConditionContext, HeadsUp, MetricsError, MetricsSource, Notifier, NotifyError, PluginRegistry,
    flatten_errors,
)

from .changes import Change, MalformedChange, ordered, v1_change, v2_change
from .client import SEGMENTS, V2_SEGMENT, AdminClient, ApiError, ApiUnavailable
from .observability import AgentStats

log = logging.getLogger("balrog.agent")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class ConditionProblem(ValueError):
    """A condition the agent cannot evaluate: unknown type or invalid parameters."""


@dataclass
class Announced:
    """A change whose heads-up went out (or is going out: ``enact_at`` is None until every
    notifier delivered it). ``version`` is the change's version the heads-up was about."""

    version: Any
    heads_up: HeadsUp
    delivered: set[int] = field(default_factory=set)
    enact_at: datetime | None = None
    retried: bool = False  # some notifier failed at first: the rest were told later


@dataclass
class CycleReport:
    decisions: dict[str, int] = field(default_factory=dict)
    errors: int = 0  # failed decisions + segments that could not be listed
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return self.errors == 0


class Agent:
    def __init__(self, client: AdminClient, registry: PluginRegistry, *,
                 sources: Mapping[str, MetricsSource] | None = None, notifiers: Sequence[Notifier] = (),
                 grace_seconds: float = 300.0, interval: float = 30.0, stats: AgentStats | None = None,
                 clock: Callable[[], datetime] = utc_now, stop: threading.Event | None = None):
        self.client = client
        self.registry = registry
        self.sources = dict(sources or {})
        self.notifiers = list(notifiers)
        self.grace = timedelta(seconds=grace_seconds)
        self.interval = interval
        self.stats = stats or AgentStats()
        self.clock = clock
        self.stop = stop or client.stop
        self.announced: dict[str, Announced] = {}
        self._last: dict[str, tuple] = {}  # key -> last decision's signature (to log changes at INFO)
        self._report = CycleReport()

    # --- the loop -----------------------------------------------------------------------------------
    def run(self, once: bool = False, after_cycle: Callable[[], None] = lambda: None) -> int:
        log.info("agent started", extra={"event": "started", "api_root": self.client.api_root,
                                         "interval": self.interval, "grace_seconds": self.grace.total_seconds(),
                                         "notifiers": [n.name for n in self.notifiers],
                                         "metrics_sources": sorted(self.sources)})
        while not self.stop.is_set():
            report = self.cycle()
            after_cycle()
            if once:
                log.info("agent stopped after one cycle", extra={"event": "stopped", "ok": report.ok})
                return 0 if report.ok or report.stopped else 1
            self.stop.wait(self.interval)
        log.info("agent stopped", extra={"event": "stopped"})
        return 0

    def cycle(self) -> CycleReport:
        """One pass over every segment; returns what was decided."""
        self._report = report = CycleReport()
        listed: set[str] = set()  # segments listed completely: vanished announcements there were cancelled
        seen: set[str] = set()
        for segment in (*SEGMENTS, V2_SEGMENT):
            if self.stop.is_set():
                break
            try:
                items = self.client.releases_v2() if segment == V2_SEGMENT else \
                    ordered(segment, self.client.scheduled_changes(segment))
            except (ApiError, ApiUnavailable) as exc:
                report.errors += 1
                self.stats.listing_failures.labels(segment).inc()
                log.error("cannot list %s: %s", segment, exc,
                          extra={"event": "listing_failed", "segment": segment, "error": str(exc)})
                continue
            listed.add(segment)
            changes: list[Change | MalformedChange] = []
            for item in items:
                try:
                    change = v2_change(item) if segment == V2_SEGMENT else v1_change(segment, item)
                except MalformedChange as exc:
                    changes.append(exc)
                    continue
                if change is not None:
                    seen.add(change.key)
                    changes.append(change)
            for change in changes:
                if self.stop.is_set():
                    report.stopped = True
                    break
                if isinstance(change, MalformedChange):
                    self.decide(f"{segment}/?", segment, "failed", stage="read", reason=str(change))
                    continue
                self.process(change)
        for key, announced in list(self.announced.items()):
            segment = key.rsplit("/", 1)[0]
            if segment in listed and key not in seen:
                self.forget(key)
                self.decide(key, segment, "cancelled", reason="no longer pending (deleted or enacted by a human)",
                            enact_at=announced.enact_at)
        for key in [k for k in self._last if k not in seen]:
            del self._last[key]
        report.stopped = report.stopped or self.stop.is_set()
        self.stats.cycle_done(report.ok, len(self.announced))
        return report

    # --- one change ---------------------------------------------------------------------------------
    def process(self, change: Change) -> None:
        try:
            self._process(change)
        except Exception as exc:  # one change's surprise must not stop the others
            log.exception("unexpected error on %s", change.key)
            self.decide(change.key, change.segment, "failed", stage="internal", reason=f"{type(exc).__name__}: {exc}")

    def _process(self, change: Change) -> None:
        key, segment = change.key, change.segment
        try:
            conditions = [(name, self.condition(name, params)) for name, params in change.conditions]
        except ConditionProblem as exc:
            self.forget(key)
            return self.decide(key, segment, "failed", stage="conditions", reason=str(exc))
        if not conditions:
            self.forget(key)
            return self.decide(key, segment, "not_ready", reason="no conditions")
        if change.missing_signoffs:
            self.forget(key)
            return self.decide(key, segment, "waiting_for_signoffs", missing_signoffs=dict(change.missing_signoffs))
        now = self.clock()
        context = ConditionContext(now=now, metrics=self.sources)
        try:
            # A list, not a dict: a v2 release has one `time` condition per pending change.
            moments = [(name, condition.holds_from(context)) for name, condition in conditions]
        except MetricsError as exc:
            # Cannot tell: no heads-up, no enactment; an announcement stands until we can tell.
            return self.decide(key, segment, "failed", stage="metrics", reason=str(exc))
        pending = list(dict.fromkeys(name for name, moment in moments if moment is None))
        if pending:
            self.forget(key)
            return self.decide(key, segment, "not_ready", conditions=pending)
        ready_at = max(moment for _, moment in moments)

        announced = self.announced.get(key)
        if announced is not None and announced.version != change.version:
            self.forget(key)  # edited since its heads-up: announce what is pending now
            announced = None
        if announced is None:
            # The last cycle before "ready - grace" sends it: the next one would be too late.
            if ready_at - self.grace > now + timedelta(seconds=self.interval):
                return self.decide(key, segment, "not_ready", reason="heads-up not due",
                                   heads_up_at=ready_at - self.grace, ready_at=ready_at)
            announced = self.announced[key] = Announced(change.version,
                                                        self.heads_up(change, max(ready_at, now + self.grace)))
        if announced.enact_at is None:
            if not self.announce(key, segment, announced):
                return
            announced.enact_at = announced.heads_up.enact_at
            if announced.retried:
                # Late deliveries (after a notifier failed) still give everyone the whole grace period.
                announced.enact_at = max(announced.enact_at, self.clock() + self.grace)
            self.decide(key, segment, "heads_up", enact_at=announced.enact_at)
            if self.clock() < announced.enact_at:
                return
        elif now < announced.enact_at:
            return self.decide(key, segment, "waiting_grace", enact_at=announced.enact_at)
        if ready_at > self.clock():
            # A condition that holds only at times (a release window) closed again: enact when it
            # reopens; the heads-up stands (humans had more time, not less).
            return self.decide(key, segment, "not_ready", reason="conditions hold again from", ready_at=ready_at)
        self.enact(change)

    def condition(self, name: str, params: Mapping[str, Any]) -> Condition:
        cls = self.registry.condition_types.get(name)
        if cls is None:
            known = ", ".join(sorted(self.registry.condition_types)) or "none"
            raise ConditionProblem(f"unknown condition {name!r} (installed: {known})")
        try:
            return cls(params)
        except ValidationError as exc:
            problems = "; ".join(f"{path}: {message}" for path, message in flatten_errors(exc.messages, name))
            raise ConditionProblem(problems) from None

    def heads_up(self, change: Change, enact_at: datetime) -> HeadsUp:
        root = self.client.api_root
        if change.segment == V2_SEGMENT:
            url = f"{root}/v2/releases/{quote(str(change.ident), safe='')}"
            cancel = f"put the release's current content back with PUT {url}, which cancels its pending changes"
        else:
            url = f"{root}/scheduled_changes/{change.segment}/{change.ident}"
            cancel = f"delete the scheduled change: DELETE {url}?data_version={change.version}"
        return HeadsUp(change=change.key, enact_at=enact_at, url=url, cancel=cancel, change_type=change.change_type,
                       scheduled_by=change.scheduled_by, conditions=change.conditions, signoffs=change.signoffs,
                       details=change.details)

    def announce(self, key: str, segment: str, announced: Announced) -> bool:
        """Deliver the heads-up through every notifier that has not delivered it yet."""
        errors = []
        for index, notifier in enumerate(self.notifiers):
            if index in announced.delivered:
                continue
            try:
                notifier.notify(announced.heads_up)
            except NotifyError as exc:
                self.stats.notifications.labels(notifier.name, "failed").inc()
                errors.append(f"{notifier.name}: {exc}")
            else:
                self.stats.notifications.labels(notifier.name, "delivered").inc()
                announced.delivered.add(index)
        if errors:
            announced.retried = True
            self.decide(key, segment, "failed", stage="notify", reason="; ".join(errors))
            return False
        return True

    def enact(self, change: Change) -> None:
        key, segment = change.key, change.segment
        try:
            if segment == V2_SEGMENT:
                self.client.enact_release(change.ident)
            else:
                self.client.enact(segment, change.ident)
        except ApiError as exc:
            if exc.status == 400 and "already completed" in exc.message:
                self.forget(key)
                return self.decide(key, segment, "enacted", already=True, reason=exc.message)
            if exc.status == 404:
                self.forget(key)
                return self.decide(key, segment, "cancelled", reason=f"the server no longer has it: {exc.message}")
            return self.decide(key, segment, "failed", stage="enact", status=exc.status, reason=exc.message)
        except ApiUnavailable as exc:
            return self.decide(key, segment, "failed", stage="enact", reason=str(exc))
        self.forget(key)
        self.decide(key, segment, "enacted", scheduled_by=change.scheduled_by, change_type=change.change_type)

    # --- state and records ----------------------------------------------------------------------------
    def forget(self, key: str) -> None:
        self.announced.pop(key, None)

    def decide(self, key: str, segment: str, decision: str, **details: Any) -> None:
        """Count and log one decision: INFO when it differs from the last one for this change,
        DEBUG when it repeats (a change waiting for a month is not a log line per cycle)."""
        self.stats.decision(segment, decision)
        report = self._report
        report.decisions[decision] = report.decisions.get(decision, 0) + 1
        if decision == "failed":
            report.errors += 1
        details = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in details.items() if v is not None}
        signature = (decision, tuple(sorted((k, repr(v)) for k, v in details.items())))
        level = logging.DEBUG if self._last.get(key) == signature else \
            logging.WARNING if decision == "failed" else logging.INFO
        self._last[key] = signature
        summary = ", ".join(f"{k}={v}" for k, v in details.items())
        log.log(level, "%s: %s%s", key, decision, f" ({summary})" if summary else "",
                extra={"event": "decision", "change": key, "segment": segment, "decision": decision, **details})
