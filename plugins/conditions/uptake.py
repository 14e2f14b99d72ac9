"""The ``uptake`` condition: enact once a version has reached a share of its population.

    "conditions": {"uptake": {"product": "Firefox", "channel": "release", "version": "61.0",
                              "target": 60, "source": "telemetry"}}

The share is read from a metrics source (``metric``, default ``"uptake"``, with the labels
``product``, ``channel`` and, when given, ``version``) and is a percentage, 0–100: the
condition holds once the source reports at least ``target``. No data yet means not met.
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from balrog_engine import Condition, ConditionContext, hookimpl


class UptakeSchema(Schema):
    product = fields.String(required=True, validate=validate.Length(min=1))
    channel = fields.String(required=True, validate=validate.Length(min=1))
    version = fields.String(validate=validate.Length(min=1))
    # A percentage of the population; 0 would hold from the start, so it is refused.
    target = fields.Float(required=True, validate=validate.Range(min=0, max=100, min_inclusive=False))
    metric = fields.String(load_default="uptake", validate=validate.Length(min=1))
    # Name of a configured metrics source; default: the only one, or the one called "default".
    source = fields.String(validate=validate.Length(min=1))


class UptakeCondition(Condition):
    name = "uptake"
    schema = UptakeSchema

    @property
    def labels(self) -> dict[str, str]:
        return {name: self.params[name] for name in ("product", "channel", "version") if name in self.params}

    def current(self, context: ConditionContext) -> float | None:
        return context.metric(self.params["metric"], self.labels, self.params.get("source"))

    def is_met(self, context: ConditionContext) -> bool:
        value = self.current(context)
        return value is not None and value >= self.params["target"]


@hookimpl
def balrog_condition_types():
    return [UptakeCondition]
