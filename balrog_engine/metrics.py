"""The contract for metrics-source plugins (``plugins/metrics/``): where conditions read numbers.

A metrics source answers one question, ``value(metric, labels)``: the current value of a
named metric (``"uptake"``, ``"crash_rate"``, …) for a set of labels (``product``,
``channel``, ``version``, …), or None when there is no data for it yet. Conditions never
know where numbers come from; the agent's configuration names sources and their type:

    [metrics_sources.telemetry]
    type = "http_json"
    url = "https://metrics.example.com/v1/{metric}"

The type (the class's ``name``) picks the plugin; the other keys are validated with the
class's marshmallow ``schema`` and handed to ``__init__`` as ``self.config``.
"""
from __future__ import annotations

from typing import Any, Mapping

from .configurable import Configurable


class MetricsError(RuntimeError):
    """A source could not answer (unreachable, refused, malformed answer, unknown source or metric).

    Not the same as "no data": a source returns None for that. A condition that needs the
    value lets this propagate; the agent then neither sends a heads-up nor enacts.
    """


class MetricsSource(Configurable):
    """One metrics-source type. Instances are created once, from configuration, and shared by
    every condition evaluation of the agent (one thread); ``close`` is called at shutdown."""

    def __init__(self, config: Mapping[str, Any]):
        self.config = self.load(config)

    def value(self, metric: str, labels: Mapping[str, str]) -> float | None:
        """The current value of ``metric`` for ``labels``; None when there is no data.
        Raises :class:`MetricsError` when the source cannot answer."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections (called once when the agent stops)."""
