"""The contract for scheduled-change condition plugins (``plugins/conditions/``).

A scheduled change carries one or more named conditions (all must hold). The
agent asks each condition whether it is met; the admin API validates a
condition's parameters with the class's marshmallow ``schema`` when a change is
created, so a bad parameter is a 400 naming the field.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Mapping


@dataclass(frozen=True)
class ConditionContext:
    """What a condition may consult: the current time and, later, metrics sources."""

    now: datetime
    metrics: Mapping[str, Any] | None = None


class Condition:
    name: ClassVar[str] = ""
    schema: ClassVar[type | None] = None

    def __init__(self, params: Mapping[str, Any]):
        self.params = self.load(params)

    @classmethod
    def load(cls, params: Mapping[str, Any]) -> dict:
        """Validate and deserialise parameters; raises marshmallow.ValidationError naming the field."""
        if cls.schema is None:
            return dict(params)
        return cls.schema().load(params)

    def is_met(self, context: ConditionContext) -> bool:
        raise NotImplementedError
