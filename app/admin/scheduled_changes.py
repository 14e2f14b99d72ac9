"""Scheduled changes (admin-api.md §4, §8; scheduled-changes-and-agent.md §1–§5, §7;
auth-and-permissions.md §2.4, §3).

    GET|POST         /scheduled_changes/<type>                      list (``?all``) / create
    GET|POST|DELETE  /scheduled_changes/<type>/<sc_id>              one / edit / cancel
    POST             /scheduled_changes/<type>/<sc_id>/enact        apply now (``scheduled_change``/``enact``)
    POST|DELETE      /scheduled_changes/<type>/<sc_id>/signoffs     sign off / revoke
    GET              /scheduled_changes/<type>/<sc_id>/revisions    the SC's history

``<type>``: ``rules``, ``permissions``, ``required_signoffs/product``,
``required_signoffs/permissions``, ``emergency_shutoff`` (delete only); ``releases`` and
``pinnable_releases`` are list (+ enact for pins) only here.

Each type is a :class:`Kind`: how to read its body, which roles must sign off a change
(§5.2), the permission dry-run a scheduler must pass (§4.1 step 6) and the base-table write at
enactment, made as ``scheduled_by`` with the SC's signoffs (§4.4). One request is one storage
transaction; writes made on someone else's behalf swap ``Session.changed_by`` for their duration.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import falcon

from balrog_engine import RULE_COLUMNS, AlreadyExists, Invalid, NotFound, Session, StaleVersion

from . import permissions, rules, signoffs, users
from .app import AdminContext, Resource, send_json
from .problems import Problem, bad_request, forbidden, invalid, not_found, outdated, unknown_error
from .required_signoffs import role_holders, sc_revision
from .requests import (
    INT32, check_encodable, check_query, integer_like, json_object, query_int, query_value, required_query_int,
)

CHANGE_TYPES = ("insert", "update", "delete")
SC_MISSING = "Scheduled change does not exist"


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
    creatable = True

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

    def dry_run(self, session: Session, user: str, change_type: str, current: dict | None, new: dict) -> None:
        raise NotImplementedError

    def apply(self, session: Session, user: str, change_type: str, current: dict | None, new: dict,
              base_data_version: int | None, given: Mapping[str, str]) -> None:
        """The base-table write (checks included), with the SC's signoffs ``given``."""
        self.dry_run(session, user, change_type, current, new)
        signoffs.verify(self.requirements(session, current, None if change_type == "delete" else new), given)
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

    def dry_run(self, session, user, change_type, current, new):
        grants = permissions.load(session, user)
        if change_type == "insert":
            rules._require(grants, user, "create", [new.get("product")], "create new")
        elif change_type == "update":
            rules._require(grants, user, "modify", [new.get("product"), current.get("product")], "modify")
        else:
            rules._require(grants, user, "delete", [current.get("product")], "delete")
        if change_type != "delete":
            rules._check_mappings(session, new)
            rules._check_alias(session, new, new.get("rule_id"))

    def apply(self, session, user, change_type, current, new, base_data_version, given):
        super().apply(session, user, change_type, current, new, base_data_version, given)
        if change_type == "update":
            what = {c: new.get(c) for c in self.columns if c != "rule_id"}
            after = session.get("rules", {"rule_id": new["rule_id"]})
            rules.merge_into_scheduled_changes(session, current, what, after["data_version"], "POST")


_RuleFields = rules._RuleSchema.from_dict(rules._rule_fields(), name="ScheduledRuleSchema")


class PermissionKind(Kind):
    segment, table, key, title = "permissions", "permissions", ("permission", "username"), "Permission"
    columns = ("permission", "username", "options")
    editable = {"insert": ("options", "permission", "username"), "update": ("options",), "delete": ()}

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
            values["options"] = raw  # parsed once the kind is known (see ``finish``)
        return values

    def finish(self, new: dict) -> dict:
        options = new.get("options")
        if isinstance(options, str):
            new["options"] = users.parse_options(new.get("permission") or "", options)
        return new

    def requirements(self, session, current, new):
        rows = [(row["permission"], row.get("options")) for row in (current, new) if row is not None]
        return users.requirements(session, rows)

    def dry_run(self, session, user, change_type, current, new):
        verbs = {"insert": ("create", "grant permissions"), "update": ("modify", "modify permissions"),
                 "delete": ("delete", "revoke permissions")}
        action, what = verbs[change_type]
        users.require_action(session, user, action, f"{user} is not allowed to {what}")

    def apply(self, session, user, change_type, current, new, base_data_version, given):
        super().apply(session, user, change_type, current, new, base_data_version, given)
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

    def dry_run(self, session, user, change_type, current, new):
        action = {"insert": "create", "update": "modify", "delete": "delete"}[change_type]
        grants = permissions.load(session, user)
        if not permissions.has_permission(grants, "required_signoff", action, None):
            verb = {"insert": "create new", "update": "modify", "delete": "delete"}[change_type]
            raise forbidden(f"{user} is not allowed to {verb} Required Signoffs.")
        if change_type != "delete":
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

    def parse(self, body, change_type, fields):
        allowed = self.columns if fields is None else fields
        values = {name: _string(body, name) for name in allowed if name in body}
        return values

    def requirements(self, session, current, new):
        row = current or new
        return signoffs.for_product_channel(session, row.get("product"), row.get("channel"))

    def dry_run(self, session, user, change_type, current, new):
        permissions.require(permissions.load(session, user), "emergency_shutoff", "delete", [new.get("product")],
                            f"{user} is not allowed to delete shutoffs for product {{product}}")


class ReleaseKind(Kind):
    """v1 release SCs: listed (and enacted) only; creating them is not implemented here."""

    segment, table, key, title = "releases", "releases", ("name",), "Release"
    columns = ("name", "product", "read_only", "data")
    filters = ("name",)
    creatable = False

    def present(self, values):
        values.pop("position", None)
        if values.get("read_only") is not None:
            values["read_only"] = bool(values["read_only"])
        return values

    def requirements(self, session, current, new):
        row = new or current or {}
        return signoffs.for_release(session, row.get("name"))

    def dry_run(self, session, user, change_type, current, new):
        action = {"insert": "create", "update": "modify", "delete": "delete"}[change_type]
        product = (new or current or {}).get("product")
        permissions.require(permissions.load(session, user), "release", action, [product],
                            f"{user} is not allowed to {action} releases for product {{product}}")


class PinKind(Kind):
    """Pins are scheduled through ``PUT /v2/releases/<name>/pinnable``; here: list and enact."""

    segment, table, key, title = "pinnable_releases", "pinnable_releases", ("product", "channel", "version"), "Pin"
    columns = ("product", "channel", "version", "mapping")
    creatable = False

    def requirements(self, session, current, new):
        return {}

    def dry_run(self, session, user, change_type, current, new):
        action = "create" if current is None else "modify"
        permissions.require(permissions.load(session, user), "pinnable_release", action, [new.get("product")],
                            f"{user} is not allowed to {action} pinnable releases for product {{product}}")

    def apply(self, session, user, change_type, current, new, base_data_version, given):
        # An insert of a pin that exists by now moves it (as the v2 endpoint does directly).
        if change_type == "insert" and current is not None:
            change_type, base_data_version = "update", current["data_version"]
        super().apply(session, user, change_type, current, new, base_data_version, given)


KINDS: tuple[Kind, ...] = (
    RuleKind(), ReleaseKind(), PermissionKind(),
    RequiredSignoffKind("required_signoffs/product", "product_req_signoffs", ("product", "channel")),
    RequiredSignoffKind("required_signoffs/permissions", "permissions_req_signoffs", ("product",)),
    ShutoffKind(), PinKind(),
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
    conditions = session.get(kind.conditions_table, {"sc_id": sc["sc_id"]}) or {}
    for name in kind.condition_columns():
        out[name] = conditions.get(name)
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


# --- writing SCs -------------------------------------------------------------------------------------------
def check_when(when: Any, required: bool) -> Any:
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
    telemetry = [conditions.get(n) for n in ("telemetry_product", "telemetry_channel", "telemetry_uptake")]
    has_time = conditions.get("when") is not None
    has_uptake = any(v is not None for v in telemetry)
    if has_uptake and not kind.uptake:
        raise unknown_error("uptake condition is disabled")
    if has_time and has_uptake:
        raise unknown_error("Invalid combination of conditions: when, telemetry_product, telemetry_channel, "
                            "telemetry_uptake")
    if not has_time and not has_uptake:
        raise unknown_error("No conditions found")
    if has_uptake and not all(v is not None for v in telemetry):
        raise unknown_error("Invalid combination of conditions: " +
                            ", ".join(n for n, v in zip(("telemetry_product", "telemetry_channel",
                                                         "telemetry_uptake"), telemetry) if v is not None))


def auto_signoff(session: Session, kind: Kind, sc_id: int, user: str, required: Mapping[str, int]) -> None:
    """§4.1 step 8: the caller's only required role, if they hold exactly one."""
    held = {row["role"] for row in session.rows("user_roles", {"username": user})}
    candidates = [role for role in required if role in held]
    if len(candidates) != 1:
        return
    existing = session.get(kind.signoffs_table, {"sc_id": sc_id, "username": user})
    if existing is None:
        session.insert(kind.signoffs_table, {"sc_id": sc_id, "username": user, "role": candidates[0]})


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


class List(Resource):
    def __init__(self, ctx: AdminContext, kind: Kind):
        super().__init__(ctx)
        self.kind = kind

    def on_get(self, req, resp):
        check_query(req, ("all",) + self.kind.filters + (("channel",) if self.kind.segment ==
                                                           "required_signoffs/permissions" else ()))
        where = self.kind.list_filter(req)
        if "all" not in req.params:
            where["complete"] = False
        with self.ctx.reading() as session:
            rows = session.rows(self.kind.sc_table, where, order_by=("sc_id",))
            changes = [sc_json(session, self.kind, row) for row in rows]
        send_json(resp, {"count": len(changes), "scheduled_changes": changes})

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
        if kind.change_types != ("delete",) and body.get("when") is None:
            raise bad_request(f"'when' cannot be set to null when scheduling a new change for a {kind.title}")
        if "sc_id" in body:
            raise bad_request("sc_id cannot be set when scheduling a new change")
        if change_type not in kind.change_types:
            raise bad_request("Invalid or missing change_type")
        conditions = {"when": body.get("when")}
        if kind.uptake:
            for name in ("telemetry_product", "telemetry_channel", "telemetry_uptake"):
                conditions[name] = body.get(name)
        conditions["when"] = check_when(conditions["when"], True)
        new = kind.parse(body, change_type, None)
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            current = _base_checks(session, kind, change_type, new, body.get("data_version"), req.method)
            if kind.auto_key and change_type == "insert":
                new.pop(kind.auto_key, None)
            if isinstance(kind, PermissionKind):
                kind.finish(new)
            if not (kind.auto_key and change_type == "insert"):
                pending = session.count(kind.sc_table, {**{f"base_{k}": v for k, v in kind.key_of(new).items()},
                                                        "complete": False})
                if pending:
                    raise bad_request("ChangeScheduledError",
                                      f"Couldn't perform the request {req.method} due a conflict with a scheduled "
                                      "change. Cannot schedule a change for a row with one already scheduled")
            check_conditions(kind, conditions)
            kind.dry_run(session, user, change_type, current, new)
            values = {f"base_{c}": new.get(c) for c in kind.columns}
            values["base_data_version"] = current["data_version"] if current is not None else None
            values.update({"scheduled_by": user, "complete": False, "change_type": change_type})
            sc_id = session.insert(kind.sc_table, values)["sc_id"]
            session.insert(kind.conditions_table, {"sc_id": sc_id, **conditions})
            required = kind.requirements(session, current, None if change_type == "delete" else new)
            auto_signoff(session, kind, sc_id, user, required)
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
        if not kind.creatable:
            raise falcon.HTTPMethodNotAllowed(["GET"])
        check_query(req)
        body = json_object(req)
        check_encodable(body)
        if "sc_data_version" not in body:
            raise invalid("'sc_data_version' is a required property")
        sc_version = body["sc_data_version"]
        if isinstance(sc_version, bool) or not isinstance(sc_version, int):
            raise invalid(f"sc_data_version: {sc_version!r} is not of type 'integer'")
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            sc = load_pending_sc(session, kind, sc_id, "update", missing=lambda: not_found("Unknown sc_id"))
            change_type = sc["change_type"]
            stored = base_values(sc)
            provided = kind.parse(body, change_type, kind.editable.get(change_type, ()))
            new = {**{c: stored.get(c) for c in kind.columns}, **provided}
            if isinstance(kind, PermissionKind):
                kind.finish(new)
            conditions_row = session.get(kind.conditions_table, {"sc_id": sc["sc_id"]}) or {}
            conditions = {name: conditions_row.get(name) for name in kind.condition_columns()}
            for name in kind.condition_columns():
                if name in body:
                    conditions[name] = body[name]
            conditions["when"] = check_when(conditions["when"], False)
            data_version = body.get("data_version", stored.get("data_version"))
            if change_type == "insert":
                current = None
                kind.check_key(change_type, new)
            else:
                current = _base_checks(session, kind, change_type, new, data_version, req.method)
            check_conditions(kind, conditions)
            kind.dry_run(session, user, change_type, current, new)
            values = {f"base_{c}": new.get(c) for c in kind.columns}
            if current is not None:
                values["base_data_version"] = current["data_version"]
            values["scheduled_by"] = user
            try:
                session.update(kind.conditions_table, {"sc_id": sc["sc_id"]}, conditions, sc_version, merge=False)
                new_version = session.update(kind.sc_table, {"sc_id": sc["sc_id"]}, values, sc_version, merge=False)
            except (StaleVersion, NotFound):
                raise outdated(req.method) from None
            required = kind.requirements(session, current, None if change_type == "delete" else new)
            auto_signoff(session, kind, sc["sc_id"], user, required)
            for row in session.rows(kind.signoffs_table, {"sc_id": sc["sc_id"]}):
                if row["username"] != user:
                    session.delete(kind.signoffs_table, {"sc_id": sc["sc_id"], "username": row["username"]},
                                   row["data_version"])
            given = signoff_map(session, kind, sc["sc_id"])
        send_json(resp, {"new_data_version": new_version, "signoffs": given})

    def on_delete(self, req, resp, sc_id):
        kind = self.kind
        if not kind.creatable:
            raise falcon.HTTPMethodNotAllowed(["GET"])
        check_query(req, ("data_version",))
        data_version = required_query_int(req, "data_version")
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            sc = load_pending_sc(session, kind, sc_id, "delete")
            new = base_values(sc)
            current = None if sc["change_type"] == "insert" else current_row(session, kind, new)
            kind.dry_run(session, user, sc["change_type"], current or new, new)
            try:
                session.delete(kind.sc_table, {"sc_id": sc["sc_id"]}, data_version)
                conditions = session.get(kind.conditions_table, {"sc_id": sc["sc_id"]})
                if conditions is not None:
                    session.delete(kind.conditions_table, {"sc_id": sc["sc_id"]}, conditions["data_version"])
            except (StaleVersion, NotFound):
                raise outdated(req.method) from None
        send_json(resp, {})


class Enact(Resource):
    def __init__(self, ctx: AdminContext, kind: Kind):
        super().__init__(ctx)
        self.kind = kind

    def on_post(self, req, resp, sc_id):
        kind = self.kind
        check_query(req)
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            if not permissions.has_permission(permissions.load(session, user), "scheduled_change", "enact", None):
                raise forbidden(f"('%s is not allowed to enact scheduled changes', '{user}')")
            sc = load_pending_sc(session, kind, sc_id, "enact")
            scheduled_by = sc["scheduled_by"]
            given = signoff_map(session, kind, sc["sc_id"])
            new = base_values(sc)
            change_type = sc["change_type"]
            current = None if change_type == "insert" and kind.auto_key else current_row(session, kind, new)
            if change_type != "insert" and current is None:
                raise outdated(req.method)
            # Refuse before writing anything: on PostgreSQL even a rolled-back insert uses up its
            # history ids, and the recorded change_ids assume a refused enact wrote nothing.
            signoffs.verify(kind.requirements(session, current, None if change_type == "delete" else new), given)
            with session.acting_as(scheduled_by):
                conditions = session.get(kind.conditions_table, {"sc_id": sc["sc_id"]})
                if conditions is not None:
                    session.update(kind.conditions_table, {"sc_id": sc["sc_id"]}, {}, conditions["data_version"],
                                   merge=False)
                session.update(kind.sc_table, {"sc_id": sc["sc_id"]}, {"complete": True}, sc["data_version"],
                               merge=False)
                kind.apply(session, scheduled_by, change_type, current, new, new.get("data_version"), given)
        send_json(resp, {})


class Signoffs(Resource):
    def __init__(self, ctx: AdminContext, kind: Kind):
        super().__init__(ctx)
        self.kind = kind

    def on_post(self, req, resp, sc_id):
        kind = self.kind
        check_query(req)
        body = json_object(req)
        check_encodable(body)
        role = body.get("role")
        if "role" not in body:
            raise invalid("'role' is a required property")
        if not isinstance(role, str):
            raise invalid(f"role: {role!r} is not of type 'string'")
        number = _sc_id(sc_id)
        if number is None:
            raise _sc_missing()
        user = self.ctx.user(req)
        if body.get("username") is not None and body["username"] != user:
            raise forbidden("Cannot signoff on behalf of another user")
        if user in self.ctx.system_accounts:
            raise forbidden("System account cannot signoff")
        with self.ctx.writing(user) as session:
            if session.get("user_roles", {"username": user, "role": role}) is None:
                raise forbidden(f"{user} cannot signoff with role '{role}'")
            existing = session.get(kind.signoffs_table, {"sc_id": number, "username": user})
            if existing is not None:
                if existing["role"] != role:
                    raise forbidden("Cannot signoff with a second role")
            else:
                session.insert(kind.signoffs_table, {"sc_id": number, "username": user, "role": role})
        send_json(resp, {})

    def on_delete(self, req, resp, sc_id):
        kind = self.kind
        check_query(req, ("username",))
        number = _sc_id(sc_id)
        if number is None:
            raise _sc_missing()
        user = self.ctx.user(req)
        target = query_value(req, "username") or user
        if user in self.ctx.system_accounts:
            raise forbidden("System accounts cannot revoke a signoff")
        with self.ctx.writing(user) as session:
            existing = session.get(kind.signoffs_table, {"sc_id": number, "username": target})
            if existing is None:
                send_json(resp, {"error": f"{user} has no signoff to revoke"})
                return
            holds = session.get("user_roles", {"username": user, "role": existing["role"]}) is not None
            if not holds and not permissions.is_admin(permissions.load(session, user)):
                raise forbidden("Cannot revoke a signoff made by someone in a group you do not belong to")
            session.delete(kind.signoffs_table, {"sc_id": number, "username": target}, existing["data_version"])
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
                revisions = [rules.sc_history_json(session, row) for row in rows]
            else:
                revisions = [kind.present(_revision(session, kind, row)) for row in rows]
        send_json(resp, {"count": count, "revisions": revisions})


def _revision(session: Session, kind: Kind, row: Mapping[str, Any]) -> dict:
    out = sc_revision(session, kind.table, row)
    if out.get("complete") is not None:
        out["complete"] = bool(out["complete"])
    return out


def routes(ctx: AdminContext) -> list[tuple[str, Resource]]:
    found: list[tuple[str, Resource]] = []
    for kind in KINDS:
        base = f"/scheduled_changes/{kind.segment}"
        found.append((base, List(ctx, kind)))
        found.append((f"{base}/{{sc_id}}/enact", Enact(ctx, kind)))
        if kind.creatable:
            found += [
                (f"{base}/{{sc_id}}", Single(ctx, kind)),
                (f"{base}/{{sc_id}}/signoffs", Signoffs(ctx, kind)),
            ]
            if not isinstance(kind, ShutoffKind):
                found.append((f"{base}/{{sc_id}}/revisions", Revisions(ctx, kind)))
        elif isinstance(kind, ReleaseKind):
            found.append((f"{base}/{{sc_id}}", Single(ctx, kind)))
    return found


__all__ = ["KINDS", "routes"]
