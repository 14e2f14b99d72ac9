"""The rules family of the admin API (admin-api.md §1, §9; auth-and-permissions.md §2.3–2.4;
scheduled-changes-and-agent.md §4.5, §5.2–5.3).

    GET|HEAD /rules                          list (``?product=``) or point in time (``?timestamp=``)
    POST     /rules                          create; the body is the bare new id (text/html)
    GET|HEAD|POST|PUT|DELETE /rules/<id_or_alias>
    GET|POST /rules/<id>/revisions           history of one rule / revert to one of its versions
    GET      /rules/columns/<column>         distinct values of a column
    GET      /rules/history                  every rule change and every rule scheduled change

Order of checks, as the reference (v1): routing → body/query validation (problem+json 400s) →
authentication → the view's own checks (404, mapping, alias) → permission (403) → required
signoffs (400 ``Signoff Required``) → data_version (400 ``OutdatedDataError``).
"""
from __future__ import annotations

import operator
import re
from typing import Any, Iterable, Mapping

import falcon
from marshmallow import EXCLUDE, Schema, ValidationError, fields

from balrog_engine import RULE_COLUMNS, AlreadyExists, Invalid, NotFound, Session, StaleVersion
from balrog_engine.matching import MalformedExpression, split_expression
from balrog_engine.versions import InvalidVersion, parse_mozilla, parse_mozilla_or_glob

from . import permissions, sc_merge, schemas, signoffs
from .app import AdminContext, Resource, send_empty, send_html_json, send_json
from .problems import (PROBLEM_JSON, Problem, bad_request, forbidden, invalid, not_found, outdated,
                       route_not_found)
from .requests import PAGING, check_query, integer_like, json_object, list_page, query_int, query_value, \
    required_query_int

# --- texts of the reference ------------------------------------------------------------------------
RULE_NOT_FOUND = ("Requested rule wasn't found", "Requested rule does not exist")
MAPPING_EMPTY = "mapping value cannot be set to null/empty"
ALIAS_EXISTS = "Rule with alias exists."
NO_RELEASE = "Invalid {field} value. No release name found in DB"
TIMESTAMP_AND_PRODUCT = "Cannot query with a timestamp and a product at the same time"

#: ``id_or_alias`` path segments matching this are aliases; anything else is an id.
ALIAS_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]*$")
INT32_MAX = 2 ** 31 - 1

#: The rule columns a client may write (the key and the version are not among them).
WRITABLE = tuple(c for c in RULE_COLUMNS if c not in ("rule_id", "data_version"))
#: Columns a revert copies from the historical row: **(quirk)** not ``jaws`` and ``mig64``.
REVERTED = tuple(c for c in WRITABLE if c not in ("jaws", "mig64"))
#: String columns and their sizes (the reference's schema ``maxLength``s, = the column sizes).
STRING_SIZES = {
    "alias": 50, "mapping": 100, "fallbackMapping": 100, "product": 15, "version": 75, "channel": 75,
    "buildTarget": 75, "buildID": 20, "locale": 200, "osVersion": 1000, "memory": 100, "instructionSet": 1000,
    "distribution": 2000, "distVersion": 100, "headerArchitecture": 10, "comment": 500,
}
UPDATE_TYPES = ["minor", "major"]
#: Filters of the two halves of ``/rules/history`` (§9.2); equality on the history column.
HISTORY_EQUALITY = ("changed_by", "change_id", "data_version")
HISTORY_QUERY = ("page", "limit", "product", "channel", "timestamp_from", "timestamp_to") + HISTORY_EQUALITY
SC_TABLE = "rules_scheduled_changes"
SC_CONDITIONS = "rules_scheduled_changes_conditions"


# --- value checks (the reference's jsonschema formats) -----------------------------------------------
def version_error(value: str) -> str | None:
    """Why ``value`` is not a valid rule ``version`` (None when it is): a comma list of versions
    without operators, or one version with an optional operator; ``60.*`` globs allowed.
    Blank is valid (it is stored as null)."""
    text = value.strip()
    if not text:
        return None
    parts = text.split(",")
    for part in parts:
        try:
            op, operand, is_glob = split_expression(part.strip())
            if len(parts) > 1 and op is not operator.eq:
                return (f"Invalid input for {value} .Relational Operators are not allowed with comma separated "
                        f"list of versions.")
            parse_mozilla_or_glob(operand) if is_glob else parse_mozilla(operand)
        except (MalformedExpression, InvalidVersion):
            return f"Invalid input for {value} . No Operator or Match found."
    return None


_BUILD_ID = re.compile(r"^(<=|>=|<|>)?[0-9]+$")


def build_id_error(value: str) -> str | None:
    """Why ``value`` is not a valid rule ``buildID``: an optional operator and an integer."""
    text = value.strip()
    if not text or _BUILD_ID.match(text):
        return None
    return "Invalid input for buildID: must be an integer."


# --- the body schemas (marshmallow), with the reference's error texts -------------------------------
class _Nullable(fields.Field):
    """A field of the reference's swagger: ``x-nullable`` unless ``nullable=False``; errors are
    jsonschema's texts, prefixed with the field name as the reference's validator does."""

    json_type = "string"

    def __init__(self, nullable: bool = True, **kwargs):
        super().__init__(allow_none=nullable, **kwargs)
        self.nullable = nullable

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if value is None and not self.nullable:
            raise ValidationError(f"{attr}: None is not of type '{self.json_type}'")
        return super().deserialize(value, attr, data, **kwargs)


class RuleString(_Nullable):
    def __init__(self, max_length: int | None = None, check=None, format_name: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.check = check
        self.format_name = format_name

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError(f"{attr}: {_repr(value)} is not of type 'string'")
        if self.max_length is not None and len(value) > self.max_length:
            raise ValidationError(f"{attr}: {_repr(value)} is too long")
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise ValidationError(f"{problem} {attr}: {_repr(value)} is not a '{self.format_name or attr}'")
        return value


class RuleEnum(_Nullable):
    def __init__(self, choices: list[str], **kwargs):
        super().__init__(**kwargs)
        self.choices = choices

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError(f"{attr}: {_repr(value)} is not of type 'string'")
        if value not in self.choices:
            raise ValidationError(f"{attr}: {_repr(value)} is not one of {self.choices!r}")
        return value


class RuleBoolean(_Nullable):
    json_type = "boolean"

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError(f"{attr}: {_repr(value)} is not of type 'boolean'")
        return value


class RuleInteger(_Nullable):
    """A JSON integer or a numeric string (priority, backgroundRate, data_version)."""

    json_type = "integer"

    def __init__(self, minimum: int | None = None, maximum: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.minimum, self.maximum = minimum, maximum

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return integer_like(value, attr, self.minimum, self.maximum)
        except Problem as problem:
            raise ValidationError(problem.detail) from None


def _repr(value: Any) -> str:
    """A value as jsonschema prints it (Python's repr)."""
    return repr(value)


def _rule_fields(required: Iterable[str] = ()) -> dict[str, fields.Field]:
    required = set(required)

    def needed(name: str) -> dict:
        return {"required": name in required,
                "error_messages": {"required": f"'{name}' is a required property"}}

    out: dict[str, fields.Field] = {}
    for name in WRITABLE:
        if name == "priority":
            out[name] = RuleInteger(minimum=0, **needed(name))
        elif name == "backgroundRate":
            out[name] = RuleInteger(minimum=0, maximum=100, **needed(name))
        elif name == "update_type":
            out[name] = RuleEnum(UPDATE_TYPES, nullable=False, **needed(name))
        elif name in ("jaws", "mig64"):
            out[name] = RuleBoolean(**needed(name))
        elif name == "version":
            out[name] = RuleString(STRING_SIZES[name], version_error, **needed(name))
        elif name == "buildID":
            out[name] = RuleString(STRING_SIZES[name], build_id_error, **needed(name))
        else:
            out[name] = RuleString(STRING_SIZES[name], **needed(name))
    return out


class _RuleSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # the reference ignores keys it does not know (``whatever``, ``csrf_token``)


#: ``POST /rules``: the reference's schema requires these three.
NewRuleSchema = _RuleSchema.from_dict(_rule_fields(("update_type", "backgroundRate", "priority")),
                                      name="NewRuleSchema")
#: ``POST|PUT /rules/<id>``: a partial rule and the version it was read at.
RuleUpdateSchema = _RuleSchema.from_dict(
    {"data_version": RuleInteger(minimum=1, nullable=False, required=True,
                                 error_messages={"required": "'data_version' is a required property"}),
     **_rule_fields()},
    name="RuleUpdateSchema")

_ERROR_ORDER = ("data_version", "update_type", "backgroundRate", "priority") + WRITABLE


def load_body(schema: type[Schema], body: Mapping[str, Any]) -> dict:
    """Validate ``body`` (problem+json 400 with the first error) and return the rule fields it
    sets, normalised (:func:`normalise`)."""
    try:
        loaded = schema().load(body)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"": exc.messages}
        name = next((n for n in _ERROR_ORDER if n in messages), next(iter(messages)))
        message = messages[name]
        while isinstance(message, (list, dict)):
            message = message[0] if isinstance(message, list) else next(iter(message.values()))
        raise invalid(str(message)) from None
    return normalise(loaded)


def normalise(values: Mapping[str, Any]) -> dict:
    """The reference's input processing: strings trimmed, blank → null, every whitespace
    removed from ``locale`` and ``distribution``."""
    out = {}
    for name, value in values.items():
        if isinstance(value, str):
            value = "".join(value.split()) if name in ("locale", "distribution") else value.strip()
            value = value or None
        out[name] = value
    return out


# --- reading rules -----------------------------------------------------------------------------------
def rule_json(row: Mapping[str, Any], extra: Iterable[str] = ()) -> dict:
    """A rule as the API prints it: every column, in the reference's order (+ ``extra`` keys)."""
    out = {column: row.get(column) for column in RULE_COLUMNS}
    for column in ("jaws", "mig64"):
        if out[column] is not None:
            out[column] = bool(out[column])
    for key in extra:
        out[key] = row.get(key)
    return out


def _none_first(value: Any) -> tuple:
    return (value is not None, value)


def ordered(rows: Iterable[Mapping[str, Any]]) -> list:
    """The reference's rule order: priority, version, mapping ascending (nulls first, as SQLite and
    MySQL sort them), then the id."""
    return sorted(rows, key=lambda r: (_none_first(r.get("priority")), _none_first(r.get("version")),
                                       _none_first(r.get("mapping")), r.get("rule_id") or 0))


def find_rule(session: Session, id_or_alias: str) -> dict | None:
    """The rule named by a path segment: an alias when it looks like one, else an id."""
    if ALIAS_PATTERN.match(id_or_alias):
        found = session.rows("rules", {"alias": id_or_alias}, limit=1)
        return found[0] if found else None
    if not id_or_alias.isascii() or not id_or_alias.isdigit() or int(id_or_alias) > INT32_MAX:
        return None
    return session.get("rules", {"rule_id": int(id_or_alias)})


def _not_found_json() -> Problem:
    return not_found(*RULE_NOT_FOUND)


# --- writing rules -----------------------------------------------------------------------------------
def _check_mappings(session: Session, values: Mapping[str, Any]) -> None:
    """``mapping``/``fallbackMapping`` must name an existing release, v1 or v2."""
    for field in ("mapping", "fallbackMapping"):
        name = values.get(field)
        if name is not None and not session.count("releases", {"name": name}) \
                and not session.count("releases_json", {"name": name}):
            raise bad_request(NO_RELEASE.format(field=field))


def _check_alias(session: Session, values: Mapping[str, Any], rule_id: int | None = None) -> None:
    alias = values.get("alias")
    if alias is None:
        return
    for row in session.rows("rules", {"alias": alias}, limit=1):
        if row["rule_id"] != rule_id:
            raise bad_request(ALIAS_EXISTS)


def _require(grants, user: str, action: str, products: Iterable[str | None], verb: str) -> None:
    for product in products:
        if not permissions.has_permission(grants, "rule", action, product):
            raise forbidden(f"{user} is not allowed to {verb} rules for product {product}")


def update_rule(session: Session, user: str, current: dict, what: Mapping[str, Any], old_data_version: int,
                method: str) -> int:
    """A direct update (view update and revert): permissions (the new product first, then the
    current one, as the reference), signoffs on the old and new row, the data_version, then the
    merge into pending scheduled changes (§4.5)."""
    grants = permissions.load(session, user)
    products = ([what["product"]] if "product" in what else []) + [current["product"]]
    _require(grants, user, "modify", products, "modify")
    new_row = {**current, **what}
    signoffs.verify(signoffs.for_rules(session, [current, new_row]), {})
    try:
        # Rules refuse a stale data_version outright, as the reference does (OutdatedDataError):
        # the storage could merge a stale write that does not overlap, but clients and the recorded
        # transcripts rely on the refusal (a later step re-sends an old version and expects a 400).
        new_version = session.update("rules", {"rule_id": current["rule_id"]}, dict(what), old_data_version,
                                     merge=False)
    except StaleVersion:
        raise outdated(method) from None
    except NotFound:
        raise _not_found_json() from None
    except AlreadyExists:
        raise bad_request(ALIAS_EXISTS) from None
    except Invalid as exc:
        raise invalid(str(exc)) from None
    sc_merge.merge_update(session, "rules", {"rule_id": current["rule_id"]}, current, what, new_version, method)
    return new_version


# --- resources ---------------------------------------------------------------------------------------
class Rules(Resource):
    """``/rules``"""

    def on_get(self, req, resp):
        check_query(req, ("product", "timestamp") + PAGING)
        timestamp = query_int(req, "timestamp")
        product = query_value(req, "product")
        if timestamp is not None and product is not None:
            raise Problem(400, "Bad Request", TIMESTAMP_AND_PRODUCT, content_type=PROBLEM_JSON)
        with self.ctx.reading() as session:
            if timestamp is not None:
                rows, extra = point_in_time(session, timestamp), ("change_id", "changed_by", "timestamp")
            else:
                rows, extra = session.rows("rules", {"product": product} if product is not None else None), ()
        rows = ordered(rows)
        send_json(resp, {"count": len(rows), "rules": [rule_json(row, extra) for row in list_page(req, resp, rows)]})

    def on_post(self, req, resp):
        check_query(req)
        body = json_object(req)
        what = load_body(NewRuleSchema, body)
        user = self.ctx.user(req)
        if what.get("mapping") is None:
            raise bad_request(MAPPING_EMPTY)
        schemas.load(schemas.NewRuleSchema, body)
        with self.ctx.writing(user) as session:
            _check_alias(session, what)
            _check_mappings(session, what)
            grants = permissions.load(session, user)
            _require(grants, user, "create", [what.get("product")], "create new")
            signoffs.verify(signoffs.for_rules(session, [what]), {})
            try:
                key = session.insert("rules", what)
            except AlreadyExists:
                raise bad_request(ALIAS_EXISTS) from None
            except Invalid as exc:
                raise invalid(str(exc)) from None
        send_html_json(resp, key["rule_id"])


def point_in_time(session: Session, timestamp: int) -> list[dict]:
    """Every rule as it was at ``timestamp`` (ms): per rule the newest history row not after it,
    rules deleted (or not yet created) by then left out."""
    newest: dict[int, dict] = {}
    for row in session.history("rules", until=timestamp, versions_only=False):
        newest.setdefault(row["rule_id"], row)
    return [row for row in newest.values() if row["data_version"] is not None]


class SingleRule(Resource):
    """``/rules/<id_or_alias>``"""

    def on_get(self, req, resp, id_or_alias):
        check_query(req)
        with self.ctx.reading() as session:
            rule = find_rule(session, id_or_alias)
        if rule is None:
            raise not_found(*RULE_NOT_FOUND, content_type=PROBLEM_JSON)
        send_json(resp, rule_json(rule))
        resp.set_header("X-Data-Version", str(rule["data_version"]))

    def on_post(self, req, resp, id_or_alias):
        check_query(req)
        body = json_object(req)
        what = load_body(RuleUpdateSchema, body)
        old_data_version = what.pop("data_version")
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            current = find_rule(session, id_or_alias)
            if current is None:
                raise _not_found_json()
            if "mapping" in what and what["mapping"] is None:
                raise bad_request(MAPPING_EMPTY)
            schemas.load(schemas.RuleUpdateSchema, body)
            _check_mappings(session, what)
            _check_alias(session, what, current["rule_id"])
            new_version = update_rule(session, user, current, what, old_data_version, req.method)
        send_json(resp, {"new_data_version": new_version})

    on_put = on_post

    def on_delete(self, req, resp, id_or_alias):
        check_query(req, ("data_version",))
        data_version = required_query_int(req, "data_version")
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            current = find_rule(session, id_or_alias)
            if current is None:
                raise _not_found_json()
            grants = permissions.load(session, user)
            _require(grants, user, "delete", [current["product"]], "delete")
            signoffs.verify(signoffs.for_rules(session, [current]), {})
            sc_merge.refuse_delete(session, "rules", {"rule_id": current["rule_id"]})
            if not -INT32_MAX <= data_version <= INT32_MAX:  # cannot be the current version (nor go to SQL)
                raise outdated(req.method)
            try:
                session.delete("rules", {"rule_id": current["rule_id"]}, data_version)
            except StaleVersion:
                raise outdated(req.method) from None
            except NotFound:
                raise _not_found_json() from None
        send_empty(resp)


def _rule_id(segment: str) -> int:
    """The integer id of ``/rules/<rule_id>/revisions`` (anything else: no such route)."""
    if not segment.isascii() or not segment.isdigit() or int(segment) > INT32_MAX:
        raise route_not_found()
    return int(segment)


class RuleRevisions(Resource):
    """``/rules/<rule_id>/revisions``"""

    def on_get(self, req, resp, id_or_alias):
        rule_id = _rule_id(id_or_alias)
        check_query(req, ("page", "limit"))
        page = query_int(req, "page", 1, minimum=1)
        limit = query_int(req, "limit", 10, minimum=1)
        with self.ctx.reading() as session:
            if session.get("rules", {"rule_id": rule_id}) is None:
                resp.status = falcon.HTTP_404
                resp.content_type = "text/html; charset=utf-8"
                resp.text = "Requested rule does not exist"
                return
            where = {"rule_id": rule_id}
            count = session.history_count("rules", where)
            rows = session.history("rules", where, limit=limit, offset=(page - 1) * limit)
        send_json(resp, {"count": count, "rules": [history_json(row) for row in rows]})

    def on_post(self, req, resp, id_or_alias):
        rule_id = _rule_id(id_or_alias)
        check_query(req)
        body = json_object(req)
        change_id = body.get("change_id")
        if change_id is not None and (isinstance(change_id, bool) or not isinstance(change_id, (int, str))):
            raise invalid(f"change_id: {_repr(change_id)} is not of type 'integer'")
        user = self.ctx.user(req)
        with self.ctx.writing(user) as session:
            current = session.get("rules", {"rule_id": rule_id})
            if current is None:
                raise not_found("bad rule_id")
            if not change_id:
                raise bad_request("No change_id passed in the request body")
            try:
                change_number = int(change_id)
            except ValueError:
                change_number = None
            found = session.history("rules", {"change_id": change_number}, versions_only=False) \
                if change_number is not None and 0 < change_number <= INT32_MAX else []
            # A placeholder or tombstone is not a version one can go back to.
            if not found or found[0]["data_version"] is None and found[0]["rule_id"] == rule_id:
                raise bad_request(f"Invalid change_id : {change_id} passed in the request body")
            change = found[0]
            if change["rule_id"] != rule_id:
                raise bad_request("Bad rule_id passed in the request")
            schemas.load(schemas.RevertSchema, body)
            what = {column: change[column] for column in REVERTED}
            update_rule(session, user, current, what, current["data_version"], req.method)
        resp.status = falcon.HTTP_200
        resp.content_type = "text/html; charset=utf-8"
        resp.text = "Excellent!"


def history_json(row: Mapping[str, Any]) -> dict:
    return rule_json(row, ("change_id", "changed_by", "timestamp"))


class RuleColumn(Resource):
    """``/rules/columns/<column>``"""

    def on_get(self, req, resp, column):
        check_query(req)
        if column not in RULE_COLUMNS:
            raise not_found("Rule column was not found", "Requested column does not exist")
        with self.ctx.reading() as session:
            rows = session.rows("rules")
        values: list = []
        for row in rows:
            value = row[column]
            if column in ("jaws", "mig64") and value is not None:
                value = bool(value)
            if value is not None and value not in values:
                values.append(value)
        # (The reference answers 500 when there are no rules at all; an empty list here.)
        send_json(resp, {"count": len(values), column: values})


class RulesHistory(Resource):
    """``/rules/history``: both halves, paged independently (admin-api.md §9.2)."""

    def on_get(self, req, resp):
        check_query(req, HISTORY_QUERY)
        page = query_int(req, "page", 1, minimum=1)
        limit = query_int(req, "limit", 10, minimum=1)
        since = query_int(req, "timestamp_from")
        until = query_int(req, "timestamp_to")
        where: dict[str, Any] = {}
        for name in HISTORY_EQUALITY:
            if name == "changed_by":
                value = query_value(req, name)
            else:  # both are 32-bit columns
                value = query_int(req, name, maximum=INT32_MAX)
            if value is not None:
                where[name] = value
        offset = (page - 1) * limit
        product = query_value(req, "product") or None
        channel = query_value(req, "channel") or None
        with self.ctx.reading() as session:
            rule_where = dict(where)
            if product:
                rule_where["product"] = product
            if channel:
                rule_where["channel"] = channel
            # (quirk) rows without a product or a channel never appear: filtered here, as the
            # storage has no "is not null" condition.
            rows = [row for row in session.history("rules", rule_where, since, until)
                    if row["product"] is not None and row["channel"] is not None]
            rules = {"count": len(rows), "revisions": [history_json(row) for row in rows[offset:offset + limit]]}
            # (quirk) product and channel do not filter the scheduled-change half.
            sc_count = session.history_count(SC_TABLE, where, since, until)
            sc_rows = session.history(SC_TABLE, where, since, until, limit=limit, offset=offset)
            scheduled = {"count": sc_count, "revisions": [sc_history_json(session, row) for row in sc_rows]}
        send_json(resp, {"Rules": rules, "Rules scheduled change": scheduled})


def sc_history_json(session: Session, row: Mapping[str, Any]) -> dict:
    """A scheduled-change history row joined with the conditions-history row of the same
    ``sc_id`` and version; ``base_`` stripped, the SC's own version as ``sc_data_version``."""
    out: dict[str, Any] = {}
    for column in RULE_COLUMNS:
        out[column] = row.get(f"base_{column}")
    for column in ("jaws", "mig64"):
        if out[column] is not None:
            out[column] = bool(out[column])
    out.update({"sc_id": row["sc_id"], "sc_data_version": row["data_version"], "change_id": row["change_id"],
                "changed_by": row["changed_by"], "timestamp": row["timestamp"], "scheduled_by": row["scheduled_by"],
                "complete": bool(row["complete"]) if row["complete"] is not None else None,
                "change_type": row["change_type"]})
    conditions = session.history(SC_CONDITIONS, {"sc_id": row["sc_id"], "data_version": row["data_version"]},
                                 limit=1)
    condition = conditions[0] if conditions else {}
    for column in ("when", "telemetry_product", "telemetry_channel", "telemetry_uptake"):
        out[column] = condition.get(column)
    return out


def routes(ctx: AdminContext) -> list[tuple[str, Resource]]:
    return [
        ("/rules", Rules(ctx)),
        ("/rules/history", RulesHistory(ctx)),
        ("/rules/columns/{column}", RuleColumn(ctx)),
        ("/rules/{id_or_alias}", SingleRule(ctx)),
        ("/rules/{id_or_alias}/revisions", RuleRevisions(ctx)),
    ]
