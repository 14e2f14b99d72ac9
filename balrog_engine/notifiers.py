"""The contract for notifier plugins (``plugins/notifiers/``): how the agent warns humans.

Before enacting a scheduled change the agent sends a :class:`HeadsUp` through every
configured notifier, then waits a grace period during which a human can cancel the change
(delete it through the admin API). Configuration names the notifier type and its settings:

    [[notifiers]]
    type = "smtp"
    host = "smtp.example.com"
    to_addrs = ["releng@example.com"]

The type (the class's ``name``) picks the plugin; the other keys are validated with the
class's marshmallow ``schema`` and handed to ``__init__`` as ``self.config``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from .configurable import Configurable


class NotifyError(RuntimeError):
    """A notifier could not deliver a heads-up. The agent retries on its next cycle and does
    not start the grace period (hence never enacts) until every notifier has delivered it."""


@dataclass(frozen=True)
class HeadsUp:
    """A change the agent is about to enact.

    ``change`` names it (``"rules/12"`` for a scheduled change of a v1 segment,
    ``"v2/releases/Firefox-61.0-build1"`` for a v2 release's pending changes); ``url`` is
    where to look at it in the admin API and ``cancel`` says how to stop it.
    """

    change: str
    enact_at: datetime
    url: str
    cancel: str
    change_type: str | None = None
    scheduled_by: str | None = None
    conditions: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    signoffs: Mapping[str, str] = field(default_factory=dict)
    #: the scheduled change(s) as the admin API listed them
    details: Any = None

    def subject(self) -> str:
        return f"balrog: {self.change} will be enacted at {self.enact_at.isoformat(timespec='seconds')}"

    def text(self) -> str:
        """A plain-text body for humans (mail, chat)."""
        lines = [
            f"The Balrog agent will enact {self.change} at {self.enact_at.isoformat(timespec='seconds')}.",
            "",
            f"Change type:  {self.change_type or '-'}",
            f"Scheduled by: {self.scheduled_by or '-'}",
            "Conditions:   " + ("; ".join(f"{name} {json.dumps(params, sort_keys=True, default=str)}"
                                          for name, params in self.conditions) or "-"),
            "Signoffs:     " + (", ".join(f"{user} ({role})" for user, role in sorted(self.signoffs.items())) or "-"),
            f"Details:      {self.url}",
            "",
            f"To stop it: {self.cancel}",
        ]
        if self.details is not None:
            lines += ["", "The change as scheduled:", json.dumps(self.details, indent=2, sort_keys=True, default=str)]
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict:
        """A JSON-able form (webhooks); ``text`` makes it readable by chat webhooks as is."""
        return {
            "event": "heads_up", "change": self.change, "enact_at": self.enact_at.isoformat(),
            "url": self.url, "cancel": self.cancel, "change_type": self.change_type,
            "scheduled_by": self.scheduled_by,
            "conditions": [{"name": name, "params": dict(params)} for name, params in self.conditions],
            "signoffs": dict(self.signoffs), "details": self.details,
            "text": f"{self.subject()}\n{self.url}\nTo stop it: {self.cancel}",
        }


class Notifier(Configurable):
    """One notifier type. Instances are created once, from configuration."""

    def __init__(self, config: Mapping[str, Any]):
        self.config = self.load(config)

    def notify(self, heads_up: HeadsUp) -> None:
        """Deliver ``heads_up``; return only once it is delivered, raise :class:`NotifyError` otherwise."""
        raise NotImplementedError
