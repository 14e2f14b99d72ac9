"""What the agent reads in the admin API's JSON: one :class:`Change` per thing it may enact.

A v1 scheduled change (one item of ``GET /scheduled_changes/<segment>``) is one change; a v2
release with pending scheduled changes (one item of ``GET /v2/releases``) is one change, since
the v2 enact endpoint enacts all of a release's pending changes at once (§8.2).

Conditions, all of which must hold: ``when`` is the ``time`` condition; the reference's
``telemetry_product``/``telemetry_channel``/``telemetry_uptake`` columns, when set, are the
``uptake`` condition (the reference never lets them be set, but compares the same way);
the extension object ``"conditions": {"<name>": {params}}`` adds the others. A v2 release's
conditions are those of every one of its pending changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .client import V2_SEGMENT


class MalformedChange(ValueError):
    """The admin API listed something the agent cannot interpret: never enacted."""


@dataclass(frozen=True)
class Change:
    segment: str  # a v1 segment ("rules", …) or "v2/releases"
    ident: Any  # sc_id, or the release name
    version: Any  # changes when the change is edited (sc_data_version, or all of a release's)
    conditions: tuple[tuple[str, Mapping[str, Any]], ...]
    missing_signoffs: Mapping[str, int]  # role -> signoffs still needed
    change_type: str | None = None
    scheduled_by: str | None = None
    signoffs: Mapping[str, str] = field(default_factory=dict)
    details: Any = None

    @property
    def key(self) -> str:
        return f"{self.segment}/{self.ident}"


def missing_signoffs(required: Any, signoffs: Any) -> dict[str, int]:
    """Per required role, how many more signoffs it needs (§8.2: count ``{user: role}`` per role)."""
    required = required or {}
    signoffs = signoffs or {}
    if not isinstance(required, dict) or not isinstance(signoffs, dict):
        raise MalformedChange("required_signoffs and signoffs must be objects")
    given: dict[str, int] = {}
    for role in signoffs.values():
        given[role] = given.get(role, 0) + 1
    missing = {}
    for role, count in required.items():
        if isinstance(count, bool) or not isinstance(count, int):
            raise MalformedChange(f"required_signoffs.{role} is not a number")
        if given.get(role, 0) < count:
            missing[role] = count - given.get(role, 0)
    return missing


def conditions_of(item: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    found: list[tuple[str, Mapping[str, Any]]] = []
    if item.get("when") is not None:
        found.append(("time", {"when": item["when"]}))
    if item.get("telemetry_uptake"):
        found.append(("uptake", {"product": item.get("telemetry_product"), "channel": item.get("telemetry_channel"),
                                 "target": item["telemetry_uptake"]}))
    extra = item.get("conditions")
    if extra is None:
        return found
    if not isinstance(extra, dict):
        raise MalformedChange("conditions must be an object {name: {parameters}}")
    for name, params in extra.items():
        if not isinstance(params, dict):
            raise MalformedChange(f"conditions.{name} must be an object of parameters")
        found.append((name, params))
    return found


def ordered(segment: str, items: Iterable[dict]) -> list[dict]:
    """The reference's order: rules by (``when``, ``priority``) descending; others as listed."""
    items = list(items)
    if segment != "rules":
        return items

    def number(value: Any) -> float:
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
    return sorted(items, key=lambda item: (number(item.get("when")), number(item.get("priority"))), reverse=True)


def v1_change(segment: str, item: Any) -> Change:
    if not isinstance(item, dict) or not isinstance(item.get("sc_id"), int):
        raise MalformedChange("a scheduled change without an integer sc_id")
    return Change(
        segment=segment, ident=item["sc_id"], version=item.get("sc_data_version"),
        conditions=tuple(conditions_of(item)),
        missing_signoffs=missing_signoffs(item.get("required_signoffs"), item.get("signoffs")),
        change_type=item.get("change_type"), scheduled_by=item.get("scheduled_by"),
        signoffs=dict(item.get("signoffs") or {}),
        # A release blob can be megabytes: humans get the change's metadata, not the blob.
        details={k: v for k, v in item.items() if k != "data"},
    )


def v2_change(release: Any) -> Change | None:
    """The release's pending changes as one change; None when it has none."""
    if not isinstance(release, dict) or not isinstance(release.get("name"), str):
        raise MalformedChange("a v2 release without a name")
    pending = release.get("scheduled_changes") or []
    if not pending:
        return None
    if not isinstance(pending, list) or not all(isinstance(sc, dict) for sc in pending):
        raise MalformedChange(f"v2 release {release['name']}: scheduled_changes must be a list of objects")
    conditions: list[tuple[str, Mapping[str, Any]]] = []
    missing: dict[str, int] = {}
    signoffs: dict[str, str] = {}
    for sc in pending:
        conditions += conditions_of(sc)
        # Every pending change must satisfy the release-level requirements (§8.2).
        for role, count in missing_signoffs(release.get("required_signoffs"), sc.get("signoffs")).items():
            missing[role] = max(missing.get(role, 0), count)
        signoffs.update(sc.get("signoffs") or {})
    return Change(
        segment=V2_SEGMENT, ident=release["name"],
        version=tuple((sc.get("sc_id"), sc.get("sc_data_version"), sc.get("path")) for sc in pending),
        conditions=tuple(conditions), missing_signoffs=missing,
        change_type=",".join(sorted({str(sc.get("change_type")) for sc in pending})),
        scheduled_by=",".join(sorted({str(sc.get("scheduled_by")) for sc in pending})),
        signoffs=signoffs, details=pending,
    )
