"""The built-in conditions, loaded through the plugin registry as the agent and the admin API
load them: parameters validated by their schemas, numbers read through the context's sources."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from marshmallow import ValidationError

from balrog_engine import ConditionContext, MetricsError, MetricsSource, load_plugins

REGISTRY = load_plugins()
NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


class Table(MetricsSource):
    """A source over an in-memory table {(metric, sorted labels): value}: the sources have tests of their own."""

    name = "table"

    def __init__(self, rows):
        super().__init__({})
        self.rows = rows
        self.asked = []

    def value(self, metric, labels):
        self.asked.append((metric, dict(labels)))
        return self.rows.get((metric, tuple(sorted(labels.items()))))


def labels(**kw):
    return tuple(sorted(kw.items()))


def context(**sources):
    return ConditionContext(now=NOW, metrics=sources)


# --- time ---------------------------------------------------------------------------------------------------
def test_time_condition_names_its_moment_in_advance():
    when = NOW + timedelta(minutes=5)
    condition = REGISTRY.condition_types["time"]({"when": int(when.timestamp() * 1000)})
    assert not condition.is_met(context())
    assert condition.holds_from(context()) == when  # known before it holds: the heads-up can precede it
    assert condition.is_met(ConditionContext(now=when))


# --- uptake -------------------------------------------------------------------------------------------------
UPTAKE = {"product": "Firefox", "channel": "release", "version": "61.0", "target": 60}


def test_uptake_holds_once_the_share_reaches_the_target():
    uptake = REGISTRY.condition_types["uptake"]
    key = ("uptake", labels(product="Firefox", channel="release", version="61.0"))
    for share, met in ((None, False), (12.5, False), (59.99, False), (60, True), (97, True)):
        source = Table({key: share} if share is not None else {})
        condition = uptake(UPTAKE)
        assert condition.is_met(context(fleet=source)) is met, share
        assert condition.holds_from(context(fleet=source)) == (NOW if met else None)
    assert source.asked[0] == ("uptake", {"product": "Firefox", "channel": "release", "version": "61.0"})


def test_uptake_reads_the_named_source_and_metric():
    key = ("adoption", labels(product="Firefox", channel="release"))
    condition = REGISTRY.condition_types["uptake"]({"product": "Firefox", "channel": "release", "target": 10,
                                                    "metric": "adoption", "source": "glean"})
    assert condition.is_met(context(other=Table({}), glean=Table({key: 11})))
    with pytest.raises(MetricsError, match="no metrics source named 'glean'.*configured: other"):
        condition.is_met(context(other=Table({key: 11})))


def test_uptake_without_a_source_name_uses_the_only_one_or_default():
    key = ("uptake", labels(product="Firefox", channel="release", version="61.0"))
    condition = REGISTRY.condition_types["uptake"](UPTAKE)
    assert condition.is_met(context(whatever=Table({key: 70})))
    assert condition.is_met(context(default=Table({key: 70}), other=Table({})))
    with pytest.raises(MetricsError, match="no metrics source named 'default'"):
        condition.is_met(context(a=Table({key: 70}), b=Table({})))
    with pytest.raises(MetricsError, match="configured: none"):
        condition.is_met(context())


@pytest.mark.parametrize("params, field", [
    ({**UPTAKE, "target": 0}, "target"),
    ({**UPTAKE, "target": 101}, "target"),
    ({**UPTAKE, "target": "most"}, "target"),
    ({k: v for k, v in UPTAKE.items() if k != "channel"}, "channel"),
    ({**UPTAKE, "product": ""}, "product"),
    ({**UPTAKE, "colour": "red"}, "colour"),
])
def test_uptake_parameters_are_validated(params, field):
    with pytest.raises(ValidationError) as caught:
        REGISTRY.condition_types["uptake"](params)
    assert field in caught.value.messages


# --- error_rate -------------------------------------------------------------------------------------------------
CRASHES = {"metric": "crash_rate", "threshold": 2.5, "product": "Firefox", "version": "61.0"}


def test_error_rate_holds_when_the_metric_crosses_the_threshold():
    key = ("crash_rate", labels(product="Firefox", version="61.0", os="win"))
    condition = REGISTRY.condition_types["error_rate"]({**CRASHES, "labels": {"os": "win"}})
    for rate, met in ((None, False), (0.4, False), (2.49, False), (2.5, True), (9.0, True)):
        assert condition.is_met(context(health=Table({key: rate} if rate is not None else {}))) is met, rate


def test_error_rate_below_direction_for_success_metrics():
    key = ("success_rate", labels(product="Firefox"))
    condition = REGISTRY.condition_types["error_rate"]({"metric": "success_rate", "threshold": 95,
                                                        "direction": "below", "product": "Firefox"})
    assert condition.is_met(context(health=Table({key: 90})))
    assert not condition.is_met(context(health=Table({key: 99})))


@pytest.mark.parametrize("params, field", [
    ({k: v for k, v in CRASHES.items() if k != "threshold"}, "threshold"),
    ({k: v for k, v in CRASHES.items() if k != "metric"}, "metric"),
    ({**CRASHES, "direction": "sideways"}, "direction"),
    ({**CRASHES, "labels": {"os": 7}}, "labels"),
])
def test_error_rate_parameters_are_validated(params, field):
    with pytest.raises(ValidationError) as caught:
        REGISTRY.condition_types["error_rate"](params)
    assert field in caught.value.messages
