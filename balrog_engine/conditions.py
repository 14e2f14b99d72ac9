"""The contract for scheduled-change condition plugins (``plugins/conditions/``).

A scheduled change carries one or more named conditions (all must hold). The
agent asks each condition whether it is met; the admin API validates a
condition's parameters with the class's marshmallow ``schema`` when a change is
created, so a bad parameter is a 400 naming the field.

Conditions that depend on the outside world (uptake, error rates) read numbers
through the context's configured metrics sources (:mod:`balrog_engine.metrics`),
never directly: the agent owns the connections and their configuration.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from .configurable import Configurable

from .metrics import MetricsError, MetricsSource


@dataclass(frozen=True)
class ConditionContext:
    """What a condition may consult: the current time and the configured metrics sources.

    ``metrics`` maps the names given in the agent's configuration (``metrics_sources``)
    to ready :class:`~balrog_engine.metrics.MetricsSource` instances.
    """

    now: datetime
    metrics: Mapping[str, MetricsSource] = field(default_factory=dict)

    def metrics_source(self, name: str | None = None) -> MetricsSource:
        """The source called ``name``; without a name, the only configured source or the one
        called ``default``. Raises :class:`MetricsError` naming what is configured otherwise."""
        sources = self.metrics or {}
        if name is None:
            if len(sources) == 1:
                return next(iter(sources.values()))
            name = "default"
        try:
            return sources[name]
        except KeyError:
            known = ", ".join(sorted(sources)) or "none"
            raise MetricsError(f"no metrics source named {name!r} is configured (configured: {known})") from None

    def metric(self, metric: str, labels: Mapping[str, str], source: str | None = None) -> float | None:
        """``metric`` for ``labels`` from a source (see :meth:`metrics_source`); None = no data yet."""
        return self.metrics_source(source).value(metric, labels)


class Condition(Configurable):
    """One condition type. ``name`` is the key a scheduled change uses (``"time"``,
    ``"uptake"``, …); ``schema`` is a marshmallow schema class for its parameters."""

    def __init__(self, params: Mapping[str, Any]):
        self.params = self.load(params)

    def is_met(self, context: ConditionContext) -> bool:
        """Whether the condition holds now (``context.now``). May raise :class:`MetricsError`
        when a metric it needs cannot be read: the agent then does not enact."""
        raise NotImplementedError

    def holds_from(self, context: ConditionContext) -> datetime | None:
        """The earliest moment from which the condition holds, or None if it does not hold now
        and that moment cannot be foreseen.

        The default is ``context.now`` when :meth:`is_met`, else None. Conditions on the clock
        override it to name their moment in advance (the time condition returns its ``when``,
        past or future): the agent sends its heads-up a grace period *before* that moment, so a
        change is enacted on time and humans still get the whole grace period to cancel it.
        """
        return context.now if self.is_met(context) else None
