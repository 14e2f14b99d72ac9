"""The ``error_rate`` condition: enact a prepared change when a health metric crosses a threshold.

    "conditions": {"error_rate": {"metric": "crash_rate", "threshold": 2.5,
                                  "product": "Firefox", "channel": "release", "version": "61.0"}}

Typically attached, with no ``when``, to a change prepared in advance and signed off, such as a
rule update setting ``backgroundRate`` to 0 (scheduled emergency-shutoff changes can only
*delete* a shutoff, so a halt is prepared as a rule change). The metric is
read from a metrics source with the labels ``product``, ``channel``, ``version`` (those given)
plus any extra ``labels``; the condition holds when the value is at or above ``threshold``
(``direction: "below"`` turns that round, e.g. for a success rate). No data means not met.
"""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from balrog_engine import Condition, ConditionContext, hookimpl


class ErrorRateSchema(Schema):
    metric = fields.String(required=True, validate=validate.Length(min=1))
    threshold = fields.Float(required=True)
    direction = fields.String(load_default="above", validate=validate.OneOf(("above", "below")))
    product = fields.String(validate=validate.Length(min=1))
    channel = fields.String(validate=validate.Length(min=1))
    version = fields.String(validate=validate.Length(min=1))
    labels = fields.Dict(keys=fields.String(validate=validate.Length(min=1)), values=fields.String(), load_default=dict)
    source = fields.String(validate=validate.Length(min=1))


class ErrorRateCondition(Condition):
    name = "error_rate"
    schema = ErrorRateSchema

    @property
    def labels(self) -> dict[str, str]:
        named = {name: self.params[name] for name in ("product", "channel", "version") if name in self.params}
        return {**self.params["labels"], **named}

    def is_met(self, context: ConditionContext) -> bool:
        value = context.metric(self.params["metric"], self.labels, self.params.get("source"))
        if value is None:
            return False
        if self.params["direction"] == "above":
            return value >= self.params["threshold"]
        return value <= self.params["threshold"]


@hookimpl
def balrog_condition_types():
    return [ErrorRateCondition]
