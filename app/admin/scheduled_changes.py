"""Scheduled changes (admin-api.md §2.1 diff, §4, §8, §9.2; scheduled-changes-and-agent.md §1–§5,
§7; auth-and-permissions.md §2.4, §3).

    GET|POST         /scheduled_changes/<type>                      list (``?all``) / create
    GET|POST|DELETE  /scheduled_changes/<type>/<sc_id>              one / edit / cancel
    POST             /scheduled_changes/<type>/<sc_id>/enact        apply now (``scheduled_change``/``enact``)
    GET              /scheduled_changes/<type>/<sc_id>/enactment    who enacted it, and when (ours)
    POST|DELETE      /scheduled_changes/<type>/<sc_id>/signoffs     sign off / revoke
    GET|POST         /scheduled_changes/<type>/<sc_id>/revisions    the SC's history / revert to one version
    GET              /scheduled_change/diff/release/<sc_id>         current v1 blob vs the scheduled one

``<type>``: ``rules``, ``releases`` (v1), ``permissions``, ``required_signoffs/product``,
``required_signoffs/permissions``, ``emergency_shutoff`` (delete only, no revisions) and
``pinnable_releases`` (list and enact only: pins are scheduled by ``PUT /v2/releases/<name>/pinnable``).

Each type is a :class:`Kind`: how to read its body, which roles must sign off a change (§5.2),
the permission dry-run a scheduler must pass (§4.1 step 6) and the base-table write at
enactment, made as ``scheduled_by`` with the SC's signoffs (§4.4). The operations on one SC
(:func:`schedule`, :func:`rewrite`, :func:`cancel`, :func:`prepare_enact`/:func:`enact`,
:func:`sign`, :func:`revoke`) are functions of this module, so the v2 release API (whose changes
live in tables of their own, :mod:`.releases_v2`) runs exactly the same lifecycle. One request is
one storage transaction; writes made on someone else's behalf swap ``Session.changed_by`` for
their duration.

Beyond the reference, a change may carry *plugin conditions* (:func:`plugin_conditions`): a body's
``"conditions": {"<condition type>": {params}}`` names registered condition types other than
``time`` (which stays the top-level ``when``), each checked with its type's schema. They are stored
in the ``conditions`` column of ``<T>_scheduled_changes_conditions`` and shown in the change's JSON
only when it has some (the recorded transcripts have none). A change needs ``when`` or at least one
condition; all of them must hold, and the agent, which reads the metrics, evaluates them.

Also beyond the reference: who enacted a change. Its target's history is written as the change's
``scheduled_by`` (as the reference does, and its recordings show), so each enactment also writes a
``scheduled_change_enactments`` row as the enacting user (:func:`record_enactment`), readable at
``.../<sc_id>/enactment``.

One deliberate divergence, on by default but off for the recorded transcripts (they have the agent
enact changes due in 2100): with ``enact_due_only_for_system_accounts`` set on the context, a system
account (the agent) may only enact changes whose ``when`` has come (:func:`check_due`).
"""
from __future__ import annotations

import datetime
import difflib
import json
import time
from typing import Any, Callable, Mapping

import falcon
from marshmallow import ValidationError

from balrog_engine import RULE_COLUMNS, AlreadyExists, Invalid, NotFound, Session, StaleVersion

from . import permissions, releases, rules, sc_merge, schemas, signoffs, users
from .app import AdminContext, Resource, send_json
from .problems import Problem, bad_request, forbidden, invalid, not_found, outdated, unknown_error
from .required_signoffs import role_holders, sc_revision
from .requests import (
    INT32, PAGING, check_encodable, check_query, integer_like, json_object, list_page, query_int, query_value,
    required_query_int,
)

CHANGE_TYPES = ("insert", "update", "delete")
SC_MISSING = "Scheduled change does not exist"

#: The stages a permission dry-run is made for: creating or editing a change, cancelling it, or
#: applying it to the base table.
SCHEDULE, CANCEL, ENACT = "schedule", "cancel", "enact"

#: The context attribute that turns the agent's due check on (see the module docstring).
DUE_CHECK = "enact_due_only_for_system_accounts"

#: The body member and ``<T>_scheduled_changes_conditions`` column of the plugin conditions.
PLUGIN_CONDITIONS = "conditions"

#: The largest plugin-conditions object taken, as compact UTF-8 JSON: far beyond any real one, and
#: well within the 64 KB a TEXT column holds on MySQL.
MAX_CONDITIONS_BYTES = 16 * 1024


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sc_missing() -> Problem:
    return Problem(404, "Bad Request", SC_MISSING)


# --- the kinds ---------------------------------------------------------------------------------------
class Kind:
    """What differs between the schedulable tables."""

    segment: str
    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...]  # base columns (not data_version)
    auto_key: str | None = None
    uptake = False
    title = "Scheduled Change"
    filters: tuple[str, ...] = ()
    change_types: tuple[str, ...] = CHANGE_TYPES
    #: fields an edit takes from the body, per change type (beyond ``when``)
    editable: Mapping[str, tuple[str, ...]] = {}
    #: change types whose edits must name the target row's ``data_version`` (admin-api.md §4.3)
    edit_needs_data_version: tuple[str, ...] = ()
    creatable = True
    revisions = True

    @property
    def enactment_segment(self) -> str:
        """The ``segment`` of this kind's ``scheduled_change_enactments`` rows: one per change
        table, as sc_ids are only unique within their table."""
        return self.segment

    @property
    def sc_table(self) -> str:
        return f"{self.table}_scheduled_changes"

    @property
    def conditions_table(self) -> str:
        return f"{self.sc_table}_conditions"

    @property
    def signoffs_table(self) -> str:
        return f"{self.sc_table}_signoffs"

    def condition_columns(self) -> tuple[str, ...]:
        return ("when", "telemetry_product", "telemetry_channel", "telemetry_uptake") if self.uptake else ("when",)

    # -- representation
    def present(self, values: dict) -> dict:
        return values

    def list_filter(self, req) -> dict:
        return {f"base_{name}": query_value(req, name) for name in self.filters if query_value(req, name) is not None}

    # -- per-type behaviour
    def parse(self, body: Mapping[str, Any], change_type: str, fields: tuple[str, ...] | None) -> dict:
        """The base values the body sets (only ``fields`` when given)."""
        raise NotImplementedError

    def complete(self, session: Session, change_type: str, current: dict | None, new: dict) -> dict:
        """The desired row once the target is known (``current``: the row now, None for inserts)."""
        return new

    def key_of(self, values: Mapping[str, Any]) -> dict:
        return {name: values.get(name) for name in self.key}

    def check_key(self, change_type: str, values: Mapping[str, Any]) -> None:
        if self.auto_key:
            return
        for name in self.key:
            if values.get(name) is None:
                raise bad_request("Missing field", f"{name} is missing")

    def requirements(self, session: Session, current: dict | None, new: dict | None) -> dict:
        raise NotImplementedError

    def dry_run(self, ctx: AdminContext, session: Session, user: str, change_type: str, current: dict | None,
                new: dict, stage: str) -> None:
        """The checks a direct write would make for ``user`` (not the signoffs): permissions and,
        unless ``stage`` is :data:`CANCEL`, the validity of the new row."""
        raise NotImplementedError

    def apply(self, ctx: AdminContext, session: Session, user: str, change_type: str, current: dict | None,
              new: dict, base_data_version: int | None, given: Mapping[str, str]) -> None:
        """The base-table write (checks included), with the SC's signoffs ``given``."""
        self.dry_run(ctx, session, user, change_type, current, new, ENACT)
        signoffs.verify(self.requirements(session, current, None if change_type == "delete" else new), given)
        self.write(session, change_type, new, base_data_version)

    def write(self, session: Session, change_type: str, new: dict, base_data_version: int | None) -> None:
        key = self.key_of(new)
        try:
            if change_type == "insert":
                values = {c: new.get(c) for c in self.columns if c != self.auto_key}
                session.insert(self.table, values)
            elif change_type == "update":
                values = {c: new.get(c) for c in self.columns if c not in self.key}
                session.update(self.table, key, values, base_data_version, merge=False)
            else:
                session.delete(self.table, key, base_data_version)
        except StaleVersion:
            raise outdated("POST") from None
        except NotFound:
            raise outdated("POST") from None
        except AlreadyExists:
            raise unknown_error("Cannot schedule change for duplicate PK") from None
        except Invalid as exc:
            raise invalid(str(exc)) from None


def _string(body: Mapping[str, Any], name: str, nullable: bool = True) -> Any:
    value = body.get(name)
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise invalid(f"{name}: {value!r} is not of type 'string'")
    return value


class RuleKind(Kind):
    segment, table, key, auto_key, uptake, title = "rules", "rules", ("rule_id",), "rule_id", True, "Rule"
    columns = tuple(c for c in RULE_COLUMNS if c != "data_version")
    filters = ("rule_id",)
    editable = {"insert": rules.WRITABLE, "update": rules.WRITABLE, "delete": ()}
    edit_needs_data_version = ("update",)

    def list_filter(self, req) -> dict:
        value = query_value(req, "rule_id")
        if value is None:
            return {}
        try:
            number = int(value)
        except ValueError:
            raise invalid(f"'{value}' is not of type 'integer'") from None
        if not INT32[0] <= number <= INT32[1]:
            raise invalid(f"rule_id: {number} is out of range")
        return {"base_rule_id": number}

    def present(self, values: dict) -> dict:
        for column in ("jaws", "mig64"):
            if values.get(column) is not None:
                values[column] = bool(values[column])
        return values

    def parse(self, body, change_type, fields):
        creating = fields is None
        if change_type == "delete" and creating:
            fields = ()
        allowed = rules.WRITABLE if fields is None else fields
        picked = {k: v for k, v in body.items() if k in allowed}
        values = rules.load_body(_RuleFields, picked)
        if change_type == "insert" and fields is None:
            for name in ("update_type", "backgroundRate", "priority"):
                if values.get(name) is None:
                    raise bad_request("Null/Empty Value", f"{name} cannot be null/empty")
        if "mapping" in values and values["mapping"] is None and change_type != "delete":
            raise bad_request(rules.MAPPING_EMPTY)
        if change_type == "insert" and fields is None and values.get("mapping") is None:
            raise bad_request(rules.MAPPING_EMPTY)
        if change_type != "insert" and creating:
            rule_id = body.get("rule_id")
            if rule_id is None:
                raise bad_request("Missing field", "rule_id is missing")
            values["rule_id"] = integer_like(rule_id, "rule_id", 1, INT32[1])
        return values

    def requirements(self, session, current, new):
        return signoffs.for_rules(session, [row for row in (current, new) if row is not None])

    def dry_run(self, ctx, session, user, change_type, current, new, stage):
        grants = permissions.load(session, user)
        if change_type == "insert":
            rules._require(grants, user, "create", [new.get("product")], "create new")
        elif change_type == "update":
            rules._require(grants, user, "modify", [new.get("product"), current.get("product")], "modify")
        else:
            rules._require(grants, user, "delete", [current.get("product")], "delete")
        if change_type != "delete" and stage != CANCEL:
            rules._check_mappings(session, new)
            rules._check_alias(session, new, new.get("rule_id"))

    def apply(self, ctx, session, user, change_type, current, new, base_data_version, given):
        super().apply(ctx, session, user, change_type, current, new, base_data_version, given)
        if change_type == "update":
            what = {c: new.get(c) for c in self.columns if c != "rule_id"}
            after = session.get("rules", {"rule_id": new["rule_id"]})
            sc_merge.merge_update(session, "rules", {"rule_id": new["rule_id"]}, current, what,
                                  after["data_version"], "POST")


_RuleFields = rules._RuleSchema.from_dict(rules._rule_fields(), name="ScheduledRuleSchema")


class ReleaseKind(Kind):
    """v1 releases (the single-blob ``releases`` table, admin-api.md §2, §4.2). The blob travels
    as a JSON string (``data``) and is validated through its blob type as a direct write would be;
    read-only releases refuse blob and product changes, and making one writable needs the
    release's signoffs or, when no rule maps it, those of its product (§2.4)."""

    segment, table, key, title = "releases", "releases", ("name",), "Release"
    columns = ("name", "product", "read_only", "data")
    filters = ("name",)
    editable = {"insert": ("name", "product", "data"), "update": ("data",), "delete": ()}
    edit_needs_data_version = ("update", "delete")

    def present(self, values):
        if values.get("read_only") is not None:
            values["read_only"] = bool(values["read_only"])
        return values

    def parse(self, body, change_type, fields):
        creating = fields is None
        if creating:
            fields = ("name",) if change_type == "delete" else self.columns
        values: dict[str, Any] = {}
        for name in ("name", "product"):
            if name in fields and name in body:
                values[name] = _string(body, name)
        if "data" in fields and body.get("data") is not None:
            raw = body["data"]
            if not isinstance(raw, str):
                raise invalid(f"data: {raw!r} is not of type 'string'")
            try:
                data = json.loads(raw)
            except ValueError:
                raise invalid(f"data: {raw!r} is not a 'JSONStringField'") from None
            if not isinstance(data, dict):
                raise invalid(f"data: {raw!r} is not a JSON object")
            check_encodable(data, "data")
            values["data"] = data
        if "read_only" in fields and body.get("read_only") is not None:
            if not isinstance(body["read_only"], bool):
                raise invalid(f"read_only: {body['read_only']!r} is not of type 'boolean'")
            values["read_only"] = body["read_only"]
        if change_type == "insert" and creating:
            if not values.get("product"):
                raise bad_request("Missing field", "product is missing")
            if values.get("data") is None:
                raise bad_request("Missing field", "Missing blob 'data' value")
        return values

    def complete(self, session, change_type, current, new):
        if change_type == "insert":
            new.setdefault("read_only", False)
        elif change_type == "update":
            # An update is the complete new row: what the body leaves out stays as it is (a
            # ``read_only``-only change keeps the current blob).
            for column in ("product", "read_only", "data"):
                if new.get(column) is None:
                    new[column] = current[column]
        return new

    def requirements(self, session, current, new):
        return signoffs.for_release_change(session, current, new)

    def dry_run(self, ctx, session, user, change_type, current, new, stage):
        grants = permissions.load(session, user)
        if change_type == "delete":
            permissions.require(grants, "release", "delete", [current["product"]],
                                f"{user} is not allowed to delete releases for product {{product}}")
            if stage != CANCEL and current["read_only"]:
                raise self._read_only(current["name"], stage)
            return
        if change_type == "insert":
            permissions.require(grants, "release", "create", [new.get("product")],
                                f"{user} is not allowed to create releases for product {{product}}")
            was_read_only = False
        else:
            permissions.require(grants, "release", "modify", dict.fromkeys([current["product"], new.get("product")]),
                                f"{user} is not allowed to modify releases for product {{product}}")
            was_read_only = bool(current["read_only"])
        if bool(new.get("read_only")) != was_read_only:
            action = "set" if new.get("read_only") else "unset"
            permissions.require(grants, "release_read_only", action, [new.get("product")],
                                f"{user} is not allowed to {action} read_only for product {{product}}")
        if stage == CANCEL:
            return
        # A read-only release keeps its blob and product; a change may only make it writable.
        if was_read_only and new.get("read_only") and \
                (new.get("data") != current["data"] or new.get("product") != current["product"]):
            raise self._read_only(current["name"], stage)
        try:
            releases.validate_blob(ctx, new.get("data"), new.get("product"))
            releases.check_name(new["name"], new["data"])
        except releases.BlobRefused as error:
            raise bad_request("Invalid Blob", error.errors) from None

    @staticmethod
    def _read_only(name: str, stage: str) -> Problem:
        message = releases.ReadOnly(name).message
        if stage == ENACT:  # (§0.3: the ReadOnlyError no view catches)
            return bad_request("Read only", message)
        return bad_request(f"Failed to schedule change - {message}", [message])

    def apply(self, ctx, session, user, change_type, current, new, base_data_version, given):
        if change_type == "delete" and (session.count("rules", {"mapping": new["name"]})
                                        or session.count("rules", {"fallbackMapping": new["name"]})):
            raise unknown_error(f"{new['name']} has rules pointing to it. Hence it cannot be deleted.")
        super().apply(ctx, session, user, change_type, current, new, base_data_version, given)


class PermissionKind(Kind):
    segment, table, key, title = "permissions", "permissions", ("permission", "username"), "Permission"
    columns = ("permission", "username", "options")
    editable = {"insert": ("options", "permission", "username"), "update": ("options",), "delete": ()}
    edit_needs_data_version = ("update", "delete")

    def parse(self, body, change_type, fields):
        allowed = self.columns if fields is None else fields
        if change_type == "delete" and fields is None:
            allowed = ("permission", "username")
        values = {}
        for name in ("permission", "username"):
            if name in allowed and name in body:
                values[name] = _string(body, name)
        if "permission" in values and values["permission"] is not None:
            users.check_kind(values["permission"])
        if "options" in allowed and "options" in body:
            raw = body["options"]
            if raw is not None and not isinstance(raw, str):
                raise invalid(f"options: {raw!r} is not of type 'string', 'null'")
            values["options"] = raw  # parsed once the kind is known (see ``complete``)
        return values

    def complete(self, session, change_type, current, new):
        options = new.get("options")
        if isinstance(options, str):
            new["options"] = users.parse_options(new.get("permission") or "", options)
        return new

    def requirements(self, session, current, new):
        rows = [(row["permission"], row.get("options")) for row in (current, new) if row is not None]
        return users.requirements(session, rows)

    def dry_run(self, ctx, session, user, change_type, current, new, stage):
        verbs = {"insert": ("create", "grant permissions"), "update": ("modify", "modify permissions"),
                 "delete": ("delete", "revoke permissions")}
        action, what = verbs[change_type]
        users.require_action(session, user, action, f"{user} is not allowed to {what}")

    def apply(self, ctx, session, user, change_type, current, new, base_data_version, given):
        super().apply(ctx, session, user, change_type, current, new, base_data_version, given)
        if change_type == "delete" and not session.count("permissions", {"username": new["username"]}):
            for role in session.rows("user_roles", {"username": new["username"]}):
                try:
                    users.revoke_role(session, new["username"], role["role"], role["data_version"])
                except users.RevocationRefused as refused:
                    raise bad_request(str((str(refused),))) from None


class RequiredSignoffKind(Kind):
    title = "Required Signoff"

    def __init__(self, segment: str, table: str, decision: tuple[str, ...]):
        self.segment, self.table, self.decision = segment, table, decision
        self.key = decision + ("role",)
        self.columns = self.key + ("signoffs_required",)
        self.editable = {"insert": self.columns, "update": ("signoffs_required",), "delete": ()}
        self.filters = decision

    def parse(self, body, change_type, fields):
        allowed = (self.columns if change_type != "delete" else self.key) if fields is None else fields
        values = {}
        for name in self.key:
            if name in allowed and name in body:
                values[name] = _string(body, name)
        if "signoffs_required" in allowed:
            if "signoffs_required" in body and body["signoffs_required"] is not None:
                values["signoffs_required"] = integer_like(body["signoffs_required"], "signoffs_required", 1,
                                                           INT32[1])
            elif fields is None:
                raise bad_request("Missing field", "signoffs_required is missing")
        return values

    def requirements(self, session, current, new):
        needed: dict[str, int] = {}
        for row in (current, new):
            if row is None:
                continue
            where = {name: row.get(name) for name in self.decision}
            for found in session.rows(self.table, where):
                needed[found["role"]] = max(needed.get(found["role"], 0), found["signoffs_required"])
        return needed

    def dry_run(self, ctx, session, user, change_type, current, new, stage):
        action = {"insert": "create", "update": "modify", "delete": "delete"}[change_type]
        grants = permissions.load(session, user)
        if not permissions.has_permission(grants, "required_signoff", action, None):
            verb = {"insert": "create new", "update": "modify", "delete": "delete"}[change_type]
            raise forbidden(f"{user} is not allowed to {verb} Required Signoffs.")
        if change_type != "delete" and stage != CANCEL:
            needed, holders = new.get("signoffs_required") or 0, role_holders(session, new.get("role"))
            if needed > holders:
                target = ", ".join(str(new.get(name)) for name in self.decision)
                raise bad_request(str((f"Cannot require {needed} signoffs for {target} - only {holders} users hold "
                                       f"the {new.get('role')} role",)))


class ShutoffKind(Kind):
    segment, table, key, title = "emergency_shutoff", "emergency_shutoffs", ("product", "channel"), "Emergency Shutoff"
    columns = ("product", "channel", "comment")
    change_types = ("delete",)
    editable = {"delete": ()}
    revisions = False

    def parse(self, body, change_type, fields):
        allowed = self.columns if fields is None else fields
        values = {name: _string(body, name) for name in allowed if name in body}
        return values

    def requirements(self, session, current, new):
        row = current or new
        return signoffs.for_product_channel(session, row.get("product"), row.get("channel"))

    def dry_run(self, ctx, session, user, change_type, current, new, stage):
        permissions.require(permissions.load(session, user), "emergency_shutoff", "delete", [new.get("product")],
                            f"{user} is not allowed to delete shutoffs for product {{product}}")


class PinKind(Kind):
    """Pins are scheduled through ``PUT /v2/releases/<name>/pinnable``; here: list and enact."""

    segment, table, key, title = "pinnable_releases", "pinnable_releases", ("product", "channel", "version"), "Pin"
    columns = ("product", "channel", "version", "mapping")
    creatable = False
    revisions = False

    def requirements(self, session, current, new):
        return {}

    def dry_run(self, ctx, session, user, change_type, current, new, stage):
        action = "create" if current is None else "modify"
        permissions.require(permissions.load(session, user), "pinnable_release", action, [new.get("product")],
                            f"{user} is not allowed to {action} pinnable releases for product {{product}}")

    def apply(self, ctx, session, user, change_type, current, new, base_data_version, given):
        # An insert of a pin that exists by now moves it (as the v2 endpoint does directly).
        if change_type == "insert" and current is not None:
            change_type, base_data_version = "update", current["data_version"]
        super().apply(ctx, session, user, change_type, current, new, base_data_version, given)


RULES, RELEASES, PERMISSIONS = RuleKind(), ReleaseKind(), PermissionKind()
PINS = PinKind()
KINDS: tuple[Kind, ...] = (
    RULES, RELEASES, PERMISSIONS,
    RequiredSignoffKind("required_signoffs/product", "product_req_signoffs", ("product", "channel")),
    RequiredSignoffKind("required_signoffs/permissions", "permissions_req_signoffs", ("product",)),
    ShutoffKind(), PINS,
)


# --- reading SCs -------------------------------------------------------------------------------------------
def base_values(row: Mapping[str, Any]) -> dict:
    return {name[5:]: value for name, value in row.items() if name.startswith("base_")}


def signoff_map(session: Session, kind: Kind, sc_id: int) -> dict[str, str]:
    return {row["username"]: row["role"] for row in session.rows(kind.signoffs_table, {"sc_id": sc_id})}


def current_row(session: Session, kind: Kind, values: Mapping[str, Any]) -> dict | None:
    key = kind.key_of(values)
    if any(v is None for v in key.values()):
        return None
    return session.get(kind.table, key)


def conditions_of(session: Session, kind: Kind, sc_id: int) -> dict:
    """The change's conditions: the reference's columns and :data:`PLUGIN_CONDITIONS` (None for none)."""
    row = session.get(kind.conditions_table, {"sc_id": sc_id}) or {}
    return {name: row.get(name) for name in kind.condition_columns() + (PLUGIN_CONDITIONS,)}


def sc_requirements(session: Session, kind: Kind, sc: Mapping[str, Any]) -> dict:
    if sc["complete"]:
        return {}
    new = base_values(sc)
    current = None if sc["change_type"] == "insert" else current_row(session, kind, new)
    return kind.requirements(session, current, None if sc["change_type"] == "delete" else new)


def sc_json(session: Session, kind: Kind, sc: Mapping[str, Any]) -> dict:
    out = kind.present(base_values(sc))
    out.update({"sc_id": sc["sc_id"], "sc_data_version": sc["data_version"], "change_type": sc["change_type"],
                "scheduled_by": sc["scheduled_by"], "complete": bool(sc["complete"])})
    conditions = conditions_of(session, kind, sc["sc_id"])
    plugin = conditions.pop(PLUGIN_CONDITIONS)
    out.update(conditions)
    if plugin:  # only then: the reference's changes (and the recorded transcripts) have no such member
        out[PLUGIN_CONDITIONS] = plugin
    out["signoffs"] = signoff_map(session, kind, sc["sc_id"])
    out["required_signoffs"] = sc_requirements(session, kind, sc)
    return out


def _sc_id(segment: str) -> int | None:
    if not segment.isascii() or not segment.isdigit() or int(segment) > INT32[1]:
        return None
    return int(segment)


def load_sc(session: Session, kind: Kind, segment: str) -> dict | None:
    sc_id = _sc_id(segment)
    return None if sc_id is None else session.get(kind.sc_table, {"sc_id": sc_id})


def load_pending_sc(session: Session, kind: Kind, segment: str, verb: str,
                    missing: Callable[[], Problem] = _sc_missing) -> dict:
    """The scheduled change to ``verb`` (update/delete/enact): 404 if unknown, 400 if completed."""
    sc = load_sc(session, kind, segment)
    if sc is None:
        raise missing()
    if sc["complete"]:
        raise unknown_error(f"Scheduled change already completed. Cannot {verb} now.")
    return sc


# --- checks ------------------------------------------------------------------------------------------------
def check_when(when: Any) -> Any:
    """``when``: integer milliseconds (a numeric string is taken), not in the past (§3)."""
    if when is None:
        return None
    if isinstance(when, bool) or not isinstance(when, int):
        if isinstance(when, str) and when.strip().isdigit():
            when = int(when)
        else:
            raise invalid(f"when: {when!r} is not of type 'integer'")
    if when > 2**63 - 1:
        raise invalid(f"when: {when} is out of range")
    if when < _now_ms():
        raise unknown_error("Cannot schedule changes in the past")
    return when


def check_conditions(kind: Kind, conditions: Mapping[str, Any]) -> None:
    """The reference's rules for ``when`` and the telemetry columns; plugin conditions (checked by
    :func:`plugin_conditions`) compose with either, and count as conditions of their own."""
    telemetry = [conditions.get(n) for n in ("telemetry_product", "telemetry_channel", "telemetry_uptake")]
    has_time = conditions.get("when") is not None
    has_uptake = any(v is not None for v in telemetry)
    has_plugin = bool(conditions.get(PLUGIN_CONDITIONS))
    if has_uptake and not kind.uptake:
        raise unknown_error("uptake condition is disabled")
    if has_time and has_uptake:
        raise unknown_error("Invalid combination of conditions: when, telemetry_product, telemetry_channel, "
                            "telemetry_uptake")
    if not has_time and not has_uptake and not has_plugin:
        raise unknown_error("No conditions found")
    if has_uptake and not all(v is not None for v in telemetry):
        raise unknown_error("Invalid combination of conditions: " +
                            ", ".join(n for n, v in zip(("telemetry_product", "telemetry_channel",
                                                         "telemetry_uptake"), telemetry) if v is not None))


def plugin_conditions(ctx: AdminContext, value: Any) -> dict | None:
    """The ``conditions`` member of a create or edit body, checked: an object of registered
    condition types (other than ``time``, the top-level ``when``) to parameters that type's schema
    loads. Returned as given (the agent loads them again, defaults included); None for none
    (null or ``{}``). Refusals are schema 400s naming ``conditions.<type>[.<field>]``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid(f"{PLUGIN_CONDITIONS}: {value!r} is not of type 'object'")
    types = ctx.registry.condition_types
    for name, params in value.items():
        where = f"{PLUGIN_CONDITIONS}.{name}"
        if name == "time":
            raise invalid(f"{where}: the time condition is set with the top-level 'when'")
        condition = types.get(name)
        if condition is None:
            known = ", ".join(sorted(n for n in types if n != "time")) or "none"
            raise invalid(f"{where}: unknown condition type (known: {known})")
        if not isinstance(params, dict):
            raise invalid(f"{where}: {params!r} is not of type 'object'")
        try:
            condition.load(params)
        except ValidationError as error:
            raise invalid("; ".join(f"{where}{path}: {message}" for path, message in _messages(error.messages))) \
                from None
        try:  # what a schema lets through must still be JSON the agent can read back
            json.dumps(params, allow_nan=False)
        except ValueError:
            raise invalid(f"{where}: NaN and Infinity are not JSON numbers") from None
    size = len(json.dumps(value, separators=(",", ":")).encode("utf-8"))
    if size > MAX_CONDITIONS_BYTES:
        raise invalid(f"{PLUGIN_CONDITIONS}: {size} bytes of JSON, more than the {MAX_CONDITIONS_BYTES} taken")
    return value or None


def _messages(messages: Any, path: str = "") -> list[tuple[str, str]]:
    """marshmallow's error messages (``{field: [message] | {nested}}``) as ``(".field.sub", message)``;
    schema-level messages (``_schema``) and bare lists stay at ``path``."""
    if isinstance(messages, dict):
        found = []
        for key, nested in messages.items():
            found += _messages(nested, path if key == "_schema" else f"{path}.{key}")
        return found
    if isinstance(messages, (list, tuple)):
        return [item for nested in messages for item in _messages(nested, path)]
    return [(path, str(messages))]


def check_due(ctx: AdminContext, user: str, sc_id: int, when: int | None) -> None:
    """A system account (the agent) may only enact a change whose ``when`` has come: the agent's
    clock decides when it calls, and a change enacted early reaches clients early. People with the
    ``enact`` permission may still enact at any time, as in the reference. Only with the context's
    :data:`DUE_CHECK` set (the reference does not check, and the recorded transcripts rely on that).

    Only ``when`` is checked: the other conditions (uptake, error rates, …) depend on metrics that
    the agent reads and the admin API cannot, so a change without ``when`` is the agent's to judge."""
    if not getattr(ctx, DUE_CHECK, False) or user not in ctx.system_accounts or when is None:
        return
    if when > _now_ms():
        moment = datetime.datetime.fromtimestamp(when / 1000, datetime.timezone.utc).isoformat(timespec="seconds")
        raise bad_request("Not due yet", f"Scheduled change {sc_id} is not due yet: it is scheduled for {when} "
                                         f"({moment}); {user} only enacts changes whose 'when' has come")


def require_enact(session: Session, user: str) -> None:
    if not permissions.has_permission(permissions.load(session, user), "scheduled_change", "enact", None):
        raise forbidden(f"('%s is not allowed to enact scheduled changes', '{user}')")


def _base_checks(session: Session, kind: Kind, change_type: str, new: dict, data_version: Any,
                 method: str) -> dict | None:
    """§4.1 steps 2–3: the target row for update/delete, at the given version; no duplicate insert."""
    kind.check_key(change_type, new)
    if change_type == "insert":
        if not kind.auto_key and current_row(session, kind, new) is not None:
            raise unknown_error("Cannot schedule change for duplicate PK")
        return None
    if data_version is None:
        raise bad_request("Missing field", "data_version is missing")
    data_version = integer_like(data_version, "data_version", None, INT32[1])
    current = current_row(session, kind, new)
    if current is None:
        raise unknown_error("Cannot create scheduled change with data_version for non-existent row")
    if current["data_version"] != data_version:
        raise outdated(method)
    return current


# --- the lifecycle of one SC ------------------------------------------------------------------------------
def auto_signoff(session: Session, kind: Kind, sc_id: int, user: str, required: Mapping[str, int]) -> None:
    """§4.1 step 8: the caller's only required role, if they hold exactly one."""
    held = {row["role"] for row in session.rows("user_roles", {"username": user})}
    candidates = [role for role in required if role in held]
    if len(candidates) != 1:
        return
    existing = session.get(kind.signoffs_table, {"sc_id": sc_id, "username": user})
    if existing is None:
        session.insert(kind.signoffs_table, {"sc_id": sc_id, "username": user, "role": candidates[0]})


def schedule(ctx: AdminContext, session: Session, kind: Kind, user: str, change_type: str, current: dict | None,
             new: dict, conditions: Mapping[str, Any], method: str = "POST") -> int:
    """§4.1 steps 4–8, once the target row (``current``) is known: refuse a second pending change
    of the row, check the conditions and the caller's right to make the change, write the change
    and its conditions, and sign off for the caller when that is unambiguous. Returns the sc_id."""
    if not (kind.auto_key and change_type == "insert"):
        if sc_merge.has_pending(session, kind.table, kind.key_of(new)):
            raise bad_request("ChangeScheduledError",
                              f"Couldn't perform the request {method} due a conflict with a scheduled "
                              "change. Cannot schedule a change for a row with one already scheduled")
    check_conditions(kind, conditions)
    kind.dry_run(ctx, session, user, change_type, current, new, SCHEDULE)
    values = {f"base_{c}": new.get(c) for c in kind.columns}
    values["base_data_version"] = current["data_version"] if current is not None else None
    values.update({"scheduled_by": user, "complete": False, "change_type": change_type})
    sc_id = session.insert(kind.sc_table, values)["sc_id"]
    session.insert(kind.conditions_table, {"sc_id": sc_id, **conditions})
    auto_signoff(session, kind, sc_id, user, kind.requirements(session, current,
                                                                None if change_type == "delete" else new))
    return sc_id


def rewrite(ctx: AdminContext, session: Session, kind: Kind, sc: Mapping[str, Any], user: str, new: dict,
            conditions: Mapping[str, Any], sc_version: int, data_version: Any, method: str) -> int:
    """§4.2 steps 3–5, for an edit or a revert: check the new content as a creation would (the
    duplicate-change check aside), write it guarded by ``sc_version``, make ``user`` the
    scheduler, and reset the approvals (only ``user``'s automatic signoff remains). Returns the
    new sc_data_version."""
    change_type = sc["change_type"]
    current = _base_checks(session, kind, change_type, new, data_version, method)
    check_conditions(kind, conditions)
    kind.dry_run(ctx, session, user, change_type, current, new, SCHEDULE)
    values = {f"base_{c}": new.get(c) for c in kind.columns}
    if current is not None:
        values["base_data_version"] = current["data_version"]
    values["scheduled_by"] = user
    try:
        session.update(kind.conditions_table, {"sc_id": sc["sc_id"]}, dict(conditions), sc_version, merge=False)
        new_version = session.update(kind.sc_table, {"sc_id": sc["sc_id"]}, values, sc_version, merge=False)
    except (StaleVersion, NotFound):
        raise outdated(method) from None
    required = kind.requirements(session, current, None if change_type == "delete" else new)
    auto_signoff(session, kind, sc["sc_id"], user, required)
    for row in session.rows(kind.signoffs_table, {"sc_id": sc["sc_id"]}):
        if row["username"] != user:
            session.delete(kind.signoffs_table, {"sc_id": sc["sc_id"], "username": row["username"]},
                           row["data_version"])
    return new_version


def cancel(session: Session, kind: Kind, sc: Mapping[str, Any], sc_version: int, method: str) -> None:
    """§4.3: delete the change and its conditions. Its signoffs go too: a database that reuses the
    id of the newest row would otherwise hand them to the next change scheduled."""
    try:
        session.delete(kind.sc_table, {"sc_id": sc["sc_id"]}, sc_version)
        conditions = session.get(kind.conditions_table, {"sc_id": sc["sc_id"]})
        if conditions is not None:
            session.delete(kind.conditions_table, {"sc_id": sc["sc_id"]}, conditions["data_version"])
    except (StaleVersion, NotFound):
        raise outdated(method) from None
    for row in session.rows(kind.signoffs_table, {"sc_id": sc["sc_id"]}):
        session.delete(kind.signoffs_table, {"sc_id": sc["sc_id"], "username": row["username"]}, row["data_version"])


class Enactment:
    """A change checked for enactment (:func:`prepare_enact`), to be written by :func:`enact`."""

    def __init__(self, kind: Kind, sc: Mapping[str, Any], current: dict | None, new: dict, given: dict):
        self.kind, self.sc, self.current, self.new, self.given = kind, sc, current, new, given


def prepare_enact(ctx: AdminContext, session: Session, kind: Kind, sc: Mapping[str, Any], user: str,
                  method: str) -> Enactment:
    """§4.4, everything before the first write: the change's target is where it was, its
    signoffs meet the requirements computed now, and it is due (for the agent, see
    :func:`check_due`; checked last, so the agent's refusals are the reference's until then).
    Refusing before writing matters: on PostgreSQL even a rolled-back insert uses up its history
    ids, and the recorded change_ids assume a refused enact wrote nothing."""
    new = base_values(sc)
    change_type = sc["change_type"]
    current = None if change_type == "insert" and kind.auto_key else current_row(session, kind, new)
    if change_type != "insert" and current is None:
        raise outdated(method)
    given = signoff_map(session, kind, sc["sc_id"])
    signoffs.verify(kind.requirements(session, current, None if change_type == "delete" else new), given)
    check_due(ctx, user, sc["sc_id"], conditions_of(session, kind, sc["sc_id"]).get("when"))
    return Enactment(kind, sc, current, new, given)


def enact(ctx: AdminContext, session: Session, enactment: Enactment) -> None:
    """§4.4 steps 2–6: mark the change complete, then apply it, both as its ``scheduled_by``."""
    kind, sc = enactment.kind, enactment.sc
    scheduled_by = sc["scheduled_by"]
    with session.acting_as(scheduled_by):
        conditions = session.get(kind.conditions_table, {"sc_id": sc["sc_id"]})
        if conditions is not None:
            session.update(kind.conditions_table, {"sc_id": sc["sc_id"]}, {}, conditions["data_version"], merge=False)
        session.update(kind.sc_table, {"sc_id": sc["sc_id"]}, {"complete": True}, sc["data_version"], merge=False)
        kind.apply(ctx, session, scheduled_by, sc["change_type"], enactment.current, enactment.new,
                   enactment.new.get("data_version"), enactment.given)


#: Who enacted which change (see the module docstring).
ENACTMENTS = "scheduled_change_enactments"
ENACTMENT_MISSING = "Scheduled change was not enacted"


def record_enactment(session: Session, kind: Kind, sc_id: int, user: str) -> None:
    """Record that ``user`` enacted the change, in the enactment's transaction. Call it after
    every check that may refuse the request: on PostgreSQL even a rolled-back insert uses up ids.
    It writes as the session's user, the enacting one (not inside :func:`enact`'s ``acting_as``)."""
    session.insert(ENACTMENTS, {"segment": kind.enactment_segment, "sc_id": sc_id, "enacted_by": user,
                                "enacted_at": _now_ms()})


def signoff_role(body: Mapping[str, Any]) -> str:
    """The ``role`` of a signoff body (the schema's 400s)."""
    if "role" not in body:
        raise invalid("'role' is a required property")
    if not isinstance(body["role"], str):
        raise invalid(f"role: {body['role']!r} is not of type 'string'")
    return body["role"]


def check_signer(ctx: AdminContext, user: str, body: Mapping[str, Any]) -> None:
    """§5.1: one signs only for oneself, and never as a system account."""
    if body.get("username") is not None and body["username"] != user:
        raise forbidden("Cannot signoff on behalf of another user")
    if user in ctx.system_accounts:
        raise forbidden("System account cannot signoff")


def sign(session: Session, kind: Kind, sc_id: int, user: str, role: str) -> None:
    """Record ``user``'s signoff with ``role`` (a no-op if already given with that role)."""
    if session.get("user_roles", {"username": user, "role": role}) is None:
        raise forbidden(f"{user} cannot signoff with role '{role}'")
    existing = session.get(kind.signoffs_table, {"sc_id": sc_id, "username": user})
    if existing is not None:
        if existing["role"] != role:
            raise forbidden("Cannot signoff with a second role")
        return
    session.insert(kind.signoffs_table, {"sc_id": sc_id, "username": user, "role": role})


def revoke(session: Session, kind: Kind, sc_id: int, user: str, target: str) -> bool:
    """Remove ``target``'s signoff; the revoker must hold its role or be an admin. False if
    there was none."""
    existing = session.get(kind.signoffs_table, {"sc_id": sc_id, "username": target})
    if existing is None:
        return False
    holds = session.get("user_roles", {"username": user, "role": existing["role"]}) is not None
    if not holds and not permissions.is_admin(permissions.load(session, user)):
        raise forbidden("Cannot revoke a signoff made by someone in a group you do not belong to")
    session.delete(kind.signoffs_table, {"sc_id": sc_id, "username": target}, existing["data_version"])
    return True


# --- resources ---------------------------------------------------------------------------------------------
class List(Resource):
    def __init__(self, ctx: AdminContext, kind: Kind):
        super().__init__(ctx)
        self.kind = kind

    def on_get(self, req, resp):
        check_query(req, ("all",) + PAGING + self.kind.filters + (("channel",) if self.kind.segment ==
                                                                    "required_signoffs/permissions" else ()))
        where = self.kind.list_filter(req)
        if "all" not in req.params:
            where["complete"] = False
        with self.ctx.reading() as session:
            rows = session.rows(self.kind.sc_table, where, order_by=("sc_id",))
            changes = [sc_json(session, self.kind, row) for row in list_page(req, resp, rows)]
        send_json(resp, {"count": len(rows), "scheduled_changes": changes})

    def on_post(self, req, resp):
        kind = self.kind
        if not kind.creatable:
            raise falcon.HTTPMethodNotAllowed(["GET"])
        check_query(req, ("change_type",) if isinstance(kind, RuleKind) else ())
        body = json_object(req)
        check_encodable(body)
        change_type = body.get("change_type")
        if change_type is None and not body and isinstance(kind, RuleKind):
            change_type = query_value(req, "change_type")
        if kind.change_types == ("delete",) and change_type != "delete":
            raise invalid(f"change_type: {change_type!r} is not one of ['delete']")
        plugin = plugin_conditions(self.ctx, body.get(PLUGIN_CONDITIONS))
        # A change with conditions may leave the time open (e.g. a halt prepared for an error rate).
        if kind.change_types != ("delete",) and body.get("when") is None and plugin is None:
            raise bad_request(f"'when' cannot be set to null when scheduling a new change for a {kind.title}")
        if "sc_id" in body:
            raise bad_request("sc_id cannot be set when scheduling a new change")
        if change_type not in kind.change_types:
            raise bad_request("Invalid or missing change_type")
        conditions = {"when": body.get("when")}
        if kind.uptake:
            for name in ("telemetry_product", "telemetry_channel", "telemetry_uptake"):
                conditions[name] = body.get(name)
        conditions["when"] = check_when(conditions["when"])
        conditions[PLUGIN_CONDITIONS] = plugin
        new = kind.parse(body, change_type, None)
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            current = _base_checks(session, kind, change_type, new, body.get("data_version"), req.method)
            if kind.auto_key and change_type == "insert":
                new.pop(kind.auto_key, None)
            kind.complete(session, change_type, current, new)
            schemas.load(schemas.SC_BODIES[kind.segment][0], body)
            sc_id = schedule(self.ctx, session, kind, user, change_type, current, new, conditions, req.method)
            given = signoff_map(session, kind, sc_id)
        send_json(resp, {"sc_id": sc_id, "signoffs": given})


class Single(Resource):
    def __init__(self, ctx: AdminContext, kind: Kind):
        super().__init__(ctx)
        self.kind = kind

    def on_get(self, req, resp, sc_id):
        check_query(req)
        with self.ctx.reading() as session:
            sc = load_sc(session, self.kind, sc_id)
            if sc is None:
                raise _sc_missing()
            out = sc_json(session, self.kind, sc)
        send_json(resp, {"scheduled_change": out})

    def on_post(self, req, resp, sc_id):
        kind = self.kind
        check_query(req)
        body = json_object(req)
        check_encodable(body)
        if "sc_data_version" not in body:
            raise invalid("'sc_data_version' is a required property")
        sc_version = body["sc_data_version"]
        if isinstance(sc_version, bool) or not isinstance(sc_version, int):
            raise invalid(f"sc_data_version: {sc_version!r} is not of type 'integer'")
        # Absent: the conditions stay as they are; null or {}: the change has none any more.
        edited = PLUGIN_CONDITIONS in body
        plugin = plugin_conditions(self.ctx, body[PLUGIN_CONDITIONS]) if edited else None
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            sc = load_pending_sc(session, kind, sc_id, "update", missing=lambda: not_found("Unknown sc_id"))
            change_type = sc["change_type"]
            if change_type in kind.edit_needs_data_version and body.get("data_version") is None:
                raise bad_request("Missing field", "data_version is missing")
            stored = base_values(sc)
            provided = kind.parse(body, change_type, kind.editable.get(change_type, ()))
            new = {**{c: stored.get(c) for c in kind.columns}, **provided}
            conditions = conditions_of(session, kind, sc["sc_id"])
            for name in kind.condition_columns():
                if name in body:
                    conditions[name] = body[name]
            conditions["when"] = check_when(conditions["when"])
            if edited:
                conditions[PLUGIN_CONDITIONS] = plugin
            data_version = body.get("data_version", stored.get("data_version"))
            current = None if change_type == "insert" else current_row(session, kind, new)
            kind.complete(session, change_type, current, new)
            schemas.load(schemas.SC_BODIES[kind.segment][1], body)
            new_version = rewrite(self.ctx, session, kind, sc, user, new, conditions, sc_version, data_version,
                                  req.method)
            given = signoff_map(session, kind, sc["sc_id"])
        send_json(resp, {"new_data_version": new_version, "signoffs": given})

    def on_delete(self, req, resp, sc_id):
        kind = self.kind
        check_query(req, ("data_version",))
        data_version = required_query_int(req, "data_version")
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            sc = load_pending_sc(session, kind, sc_id, "delete")
            new = base_values(sc)
            current = None if sc["change_type"] == "insert" else current_row(session, kind, new)
            kind.dry_run(self.ctx, session, user, sc["change_type"], current or new, new, CANCEL)
            cancel(session, kind, sc, data_version, req.method)
        send_json(resp, {})


class Enact(Resource):
    def __init__(self, ctx: AdminContext, kind: Kind):
        super().__init__(ctx)
        self.kind = kind

    def on_post(self, req, resp, sc_id):
        check_query(req)
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            require_enact(session, user)
            sc = load_pending_sc(session, self.kind, sc_id, "enact")
            enact(self.ctx, session, prepare_enact(self.ctx, session, self.kind, sc, user, req.method))
            record_enactment(session, self.kind, sc["sc_id"], user)
        send_json(resp, {})


class EnactedBy(Resource):
    """``GET .../<sc_id>/enactment``: who enacted the change and when; 404 unless it was enacted
    (unknown, pending, or cancelled). Unauthenticated, like the other reads of scheduled changes."""

    def __init__(self, ctx: AdminContext, kind: Kind):
        super().__init__(ctx)
        self.kind = kind

    def on_get(self, req, resp, sc_id):
        check_query(req)
        number = _sc_id(sc_id)
        with self.ctx.reading() as session:
            row = None if number is None else \
                session.get(ENACTMENTS, {"segment": self.kind.enactment_segment, "sc_id": number})
        if row is None:
            raise not_found(ENACTMENT_MISSING)
        send_json(resp, {"sc_id": row["sc_id"], "segment": row["segment"], "enacted_by": row["enacted_by"],
                         "timestamp": row["enacted_at"]})


class Signoffs(Resource):
    def __init__(self, ctx: AdminContext, kind: Kind):
        super().__init__(ctx)
        self.kind = kind

    def on_post(self, req, resp, sc_id):
        check_query(req)
        body = json_object(req)
        check_encodable(body)
        role = signoff_role(body)
        number = _sc_id(sc_id)
        if number is None:
            raise _sc_missing()
        user = self.ctx.user(req)
        check_signer(self.ctx, user, body)
        schemas.load(schemas.SignoffSchema, body)
        with self.ctx.writing(user) as session:
            # (The reference records a signoff for an unknown id, which the next change to get
            # that id would inherit: refused here.)
            if session.get(self.kind.sc_table, {"sc_id": number}) is None:
                raise _sc_missing()
            sign(session, self.kind, number, user, role)
        send_json(resp, {})

    def on_delete(self, req, resp, sc_id):
        check_query(req, ("username",))
        number = _sc_id(sc_id)
        if number is None:
            raise _sc_missing()
        user = self.ctx.user(req)
        target = query_value(req, "username") or user
        if user in self.ctx.system_accounts:
            raise forbidden("System accounts cannot revoke a signoff")
        with self.ctx.writing(user) as session:
            if not revoke(session, self.kind, number, user, target):
                send_json(resp, {"error": f"{user} has no signoff to revoke"})
                return
        send_json(resp, {})


class Revisions(Resource):
    def __init__(self, ctx: AdminContext, kind: Kind):
        super().__init__(ctx)
        self.kind = kind

    def on_get(self, req, resp, sc_id):
        kind = self.kind
        check_query(req, ("page", "limit"))
        page = query_int(req, "page", 1, minimum=1, maximum=INT32[1])
        limit = query_int(req, "limit", 10, minimum=1, maximum=INT32[1])
        with self.ctx.reading() as session:
            sc = load_sc(session, kind, sc_id)
            if sc is None:
                raise _sc_missing()
            where = {"sc_id": sc["sc_id"]}
            count = session.history_count(kind.sc_table, where)
            rows = session.history(kind.sc_table, where, limit=limit, offset=(page - 1) * limit)
            if isinstance(kind, RuleKind):
                revisions = [_with_plugin_conditions(session, kind, row, rules.sc_history_json(session, row))
                             for row in rows]
            else:
                revisions = [kind.present(_revision(session, kind, row)) for row in rows]
        send_json(resp, {"count": count, "revisions": revisions})

    def on_post(self, req, resp, sc_id):
        """Revert (§7): the change's content and conditions as recorded by ``change_id``, written
        as an edit by the caller (so the approvals reset, as for any edit)."""
        kind = self.kind
        check_query(req)
        body = json_object(req)
        change_id = body.get("change_id")
        if change_id is not None and (isinstance(change_id, bool) or not isinstance(change_id, (int, str))):
            raise invalid(f"change_id: {change_id!r} is not of type 'integer'")
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            sc = load_sc(session, kind, sc_id)
            if sc is None:
                raise not_found("given sc_id was not found in the database")
            if not change_id:
                raise bad_request("No change_id passed in the request body")
            try:
                number = int(change_id)
            except ValueError:
                number = None
            found = session.history(kind.sc_table, {"change_id": number}, versions_only=False) \
                if number is not None and 0 < number <= INT32[1] else []
            if not found:
                raise bad_request(f"Invalid change_id : {change_id} passed in the request body")
            change = found[0]
            if change["sc_id"] != sc["sc_id"]:
                raise bad_request("Bad sc_id passed in the request")
            if change["data_version"] is None:  # a placeholder or a tombstone is no version
                raise bad_request(f"Invalid change_id : {change_id} passed in the request body")
            if sc["complete"]:
                raise unknown_error("Scheduled change already completed. Cannot update now.")
            recorded = session.history(kind.conditions_table, {"sc_id": sc["sc_id"],
                                                               "data_version": change["data_version"]}, limit=1)
            conditions = {name: (recorded[0] if recorded else {}).get(name)
                          for name in kind.condition_columns() + (PLUGIN_CONDITIONS,)}
            conditions["when"] = check_when(conditions["when"])
            values = base_values(change)
            new = {c: values.get(c) for c in kind.columns}
            schemas.load(schemas.RevertSchema, body)
            rewrite(self.ctx, session, kind, sc, user, new, conditions, sc["data_version"],
                    values.get("data_version"), req.method)
        resp.status = falcon.HTTP_200
        resp.content_type = "text/html; charset=utf-8"
        resp.text = "Success"


def _revision(session: Session, kind: Kind, row: Mapping[str, Any]) -> dict:
    out = sc_revision(session, kind.table, row)  # plugin conditions included, when the version had some
    if out.get("complete") is not None:
        out["complete"] = bool(out["complete"])
    return out


def _with_plugin_conditions(session: Session, kind: Kind, row: Mapping[str, Any], revision: dict) -> dict:
    """``revision`` (of history row ``row``) with the plugin conditions of its version, if it had any
    (for rules, whose revisions :func:`.rules.sc_history_json` builds from the reference's columns)."""
    recorded = session.history(kind.conditions_table, {"sc_id": row["sc_id"], "data_version": row["data_version"]},
                               limit=1)
    plugin = recorded[0].get(PLUGIN_CONDITIONS) if recorded else None
    if plugin:
        revision[PLUGIN_CONDITIONS] = plugin
    return revision


class ReleaseDiff(Resource):
    """``GET /scheduled_change/diff/release/<sc_id>``: a unified diff of the current v1 blob and
    the scheduled one, both pretty-printed with sorted keys (text/plain). A scheduled insert
    diffs against nothing, a scheduled delete against nothing (where the reference answers 500)."""

    def on_get(self, req, resp, sc_id):
        check_query(req)
        with self.ctx.reading() as session:
            sc = load_sc(session, RELEASES, sc_id)
            if sc is None:
                raise _sc_missing()
            current = session.get(RELEASES.table, {"name": sc["base_name"]})
        before = _pretty(current["data"]) if current is not None else []
        after = _pretty(sc["base_data"]) if sc["base_data"] is not None else []
        version = current["data_version"] if current is not None else None
        lines = difflib.unified_diff(before, after, fromfile=f"Current Version (Data Version {version})",
                                     tofile=f"Scheduled Update (sc_id {sc['sc_id']})", lineterm="")
        resp.status = falcon.HTTP_200
        resp.content_type = "text/plain; charset=utf-8"
        resp.text = "\n".join(lines)


def _pretty(blob: Any) -> list[str]:
    return json.dumps(blob, indent=4, sort_keys=True).splitlines()


def routes(ctx: AdminContext) -> list[tuple[str, Resource]]:
    found: list[tuple[str, Resource]] = []
    for kind in KINDS:
        base = f"/scheduled_changes/{kind.segment}"
        found.append((base, List(ctx, kind)))
        found.append((f"{base}/{{sc_id}}/enact", Enact(ctx, kind)))
        found.append((f"{base}/{{sc_id}}/enactment", EnactedBy(ctx, kind)))
        if kind.creatable:
            found += [
                (f"{base}/{{sc_id}}", Single(ctx, kind)),
                (f"{base}/{{sc_id}}/signoffs", Signoffs(ctx, kind)),
            ]
            if kind.revisions:
                found.append((f"{base}/{{sc_id}}/revisions", Revisions(ctx, kind)))
    found.append(("/scheduled_change/diff/release/{sc_id}", ReleaseDiff(ctx)))
    return found


__all__ = ["ENACTMENTS", "KINDS", "Kind", "PINS", "PLUGIN_CONDITIONS", "RELEASES", "cancel", "check_due",
           "check_signer", "check_when", "enact", "plugin_conditions", "prepare_enact", "record_enactment", "revoke",
           "rewrite", "routes", "schedule", "sign", "signoff_role"]
