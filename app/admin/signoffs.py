"""Required signoffs: which roles must approve a change, and the check (scheduled-changes-and-
agent.md §5.2–5.3). Requirements are computed live from the requirement tables; a direct write
passes no signoffs, so a protected change can only be made through a scheduled change."""
from __future__ import annotations

from typing import Iterable, Mapping

from balrog_engine import Session

from .problems import signoff_required

Requirements = dict[str, int]


def channel_matches(rule_channel: str | None, required_channel: str) -> bool:
    """A rule's channel against a requirement's: null/empty matches all; ``release*`` (at least
    three characters) matches every channel starting with ``release``."""
    if not rule_channel:
        return True
    if rule_channel == required_channel:
        return True
    return rule_channel.endswith("*") and len(rule_channel) >= 3 and required_channel.startswith(rule_channel[:-1])


def _merge(into: Requirements, rows: Iterable[Mapping]) -> Requirements:
    for row in rows:
        role, needed = row["role"], row["signoffs_required"]
        into[role] = max(into.get(role, 0), needed)
    return into


def for_product_channel(session: Session, product: str | None, channel: str | None,
                        into: Requirements | None = None) -> Requirements:
    """Product requirements touching a rule (or shutoff) with this product and channel."""
    rows = session.rows("product_req_signoffs", {"product": product} if product else None)
    return _merge({} if into is None else into, (r for r in rows if channel_matches(channel, r["channel"])))


def for_rules(session: Session, rules: Iterable[Mapping]) -> Requirements:
    """The union (max per role) over rule rows: a change's old and new versions."""
    needed: Requirements = {}
    for rule in rules:
        for_product_channel(session, rule.get("product"), rule.get("channel"), needed)
    return needed


def for_release(session: Session, name: str) -> Requirements:
    """Requirements of every rule that maps the release (``mapping`` or ``fallbackMapping``)."""
    rules = session.rows("rules", {"mapping": name}) + session.rows("rules", {"fallbackMapping": name})
    return for_rules(session, rules)


def for_product(session: Session, product: str | None) -> Requirements:
    """Every product requirement of a product, any channel (max per role)."""
    return _merge({}, session.rows("product_req_signoffs", {"product": product}))


def for_release_change(session: Session, current: Mapping | None, new: Mapping | None) -> Requirements:
    """A release change's requirements: those of the rules mapping it; and when the change makes
    a read-only release writable and no rule protects it, its product's (admin-api.md §2.4)."""
    needed = for_release(session, (new or current)["name"])
    if not needed and current is not None and new is not None and current.get("read_only") \
            and not new.get("read_only"):
        needed = for_product(session, current.get("product"))
    return needed


def verify(required: Mapping[str, int], signoffs: Mapping[str, str]) -> None:
    """Raise 400 ``Signoff Required`` unless ``signoffs`` (``{username: role}``) satisfy ``required``."""
    if not required:
        return
    if not signoffs:
        raise signoff_required("No Signoffs given")
    counts: dict[str, int] = {}
    for role in signoffs.values():
        counts[role] = counts.get(role, 0) + 1
    for role, needed in required.items():
        if counts.get(role, 0) < needed:
            raise signoff_required(f"Not enough signoffs for role '{role}'")
