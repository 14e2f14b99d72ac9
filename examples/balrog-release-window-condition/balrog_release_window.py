"""A third-party condition: changes are enacted only inside release windows (UTC).

    "conditions": {"release_window": {"days": ["mon", "tue", "wed", "thu"], "from_hour": 9, "until_hour": 17}}

No Friday releases, nothing at night. Combined with ``when`` (all conditions must hold), a
change due on Friday evening waits until Monday 09:00 — and the agent's heads-up goes out a
grace period before Monday 09:00, because ``holds_from`` names the next opening.
"""
from datetime import datetime, time, timedelta

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from balrog_engine import Condition, hookimpl

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ReleaseWindowSchema(Schema):
    days = fields.List(fields.String(validate=validate.OneOf(DAYS)), required=True,
                       validate=validate.Length(min=1))
    from_hour = fields.Integer(load_default=0, validate=validate.Range(min=0, max=23))
    until_hour = fields.Integer(load_default=24, validate=validate.Range(min=1, max=24))

    @validates_schema
    def _order(self, data, **kwargs):
        if data["from_hour"] >= data["until_hour"]:
            raise ValidationError("must be later than from_hour", "until_hour")


class ReleaseWindow(Condition):
    name = "release_window"
    schema = ReleaseWindowSchema

    def is_met(self, context):
        now = context.now
        return DAYS[now.weekday()] in self.params["days"] and \
            self.params["from_hour"] <= now.hour < self.params["until_hour"]

    def holds_from(self, context):
        """Now inside a window; otherwise the next window's opening (foreseeable, so the agent
        can announce the change ahead of it)."""
        now = context.now
        if self.is_met(context):
            return now
        for days_ahead in range(8):
            day = (now + timedelta(days=days_ahead)).date()
            opening = datetime.combine(day, time(self.params["from_hour"]), tzinfo=now.tzinfo)
            if DAYS[day.weekday()] in self.params["days"] and opening > now:
                return opening
        return None


@hookimpl
def balrog_condition_types():
    return [ReleaseWindow]
