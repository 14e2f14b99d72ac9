"""The ``time`` condition: a scheduled change is due at or after a moment (the reference's behaviour)."""
from __future__ import annotations

from datetime import datetime, timezone

from marshmallow import Schema, fields

from balrog_engine import Condition, ConditionContext, hookimpl


class TimeSchema(Schema):
    # Milliseconds since the epoch, as the reference's admin API sends `when`.
    when = fields.Integer(required=True, strict=True)


class TimeCondition(Condition):
    name = "time"
    schema = TimeSchema

    @property
    def due(self) -> datetime:
        return datetime.fromtimestamp(self.params["when"] / 1000, tz=timezone.utc)

    def is_met(self, context: ConditionContext) -> bool:
        return context.now >= self.due

    def holds_from(self, context: ConditionContext) -> datetime:
        # Known in advance: the agent can send its heads-up a grace period before `when`.
        return self.due


@hookimpl
def balrog_condition_types():
    return [TimeCondition]
