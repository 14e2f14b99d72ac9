"""The admin API's wire schemas (admin-api.md, scheduled-changes-and-agent.md): one marshmallow
schema per request body and per response body, the source of the OpenAPI document
(:mod:`.openapi`) and, through :func:`load`, of request validation.

What the schemas say is what the server does, as read in the family modules and in the recorded
transcripts, not only what the reference's swagger claimed:

* Request schemas ignore keys they do not know (``unknown = EXCLUDE``): the reference ignores them
  and release automation sends extra keys (client-compat.md §5). The document says so with
  ``additionalProperties: true``.
* A few integer fields also take a numeric string (admin-api.md §0.2): :class:`IntegerLike`.
  Several v1 fields carry JSON *inside a string* (``blob``, ``data``, ``copyTo``, ``alias``,
  permission ``options``): :class:`JsonString`.
* Response schemas whose members are fixed refuse others (``unknown = RAISE``, i.e.
  ``additionalProperties: false``), so a body that grows a member is caught by the document's
  tests; rows copied from the database (history, scheduled changes) list the members that are
  always there and allow more.

Marshmallow cannot name members by a pattern; a schema may put the schema of its *other* members in
``Meta.additional_properties`` (a field, or ``True``/``False``), which the document generator
(:class:`.openapi.Converter`) renders as ``additionalProperties``.
"""
from __future__ import annotations

import json
import numbers
from typing import Any, Mapping

from marshmallow import EXCLUDE, INCLUDE, RAISE, Schema, ValidationError, fields, validate

from balrog_engine import RULE_COLUMNS

from . import permissions
from .problems import invalid
from .requests import check_encodable

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

#: Rule string columns and their sizes (the reference's ``maxLength``s, = the column sizes).
RULE_STRING_SIZES = {
    "alias": 50, "mapping": 100, "fallbackMapping": 100, "product": 15, "version": 75, "channel": 75,
    "buildTarget": 75, "buildID": 20, "locale": 200, "osVersion": 1000, "memory": 100, "instructionSet": 1000,
    "distribution": 2000, "distVersion": 100, "headerArchitecture": 10, "comment": 500,
}
#: Sizes of the other columns request strings are stored in (plugins/storage/sql_schema.py): a longer
#: value is the schema's 400 naming the member, not a refusal from the database after the checks.
NAME_SIZE = 100      # release names, usernames
PRODUCT_SIZE = 100   # products outside the rules (the reference's String(15) is rules-only here)
CHANNEL_SIZE = 75
ROLE_SIZE = 50
COMMENT_SIZE = 500
PIN_VERSION_SIZE = 75
UPDATE_TYPES = ("minor", "major")
CHANGE_TYPES = ("insert", "update", "delete")


# --- fields --------------------------------------------------------------------------------------------
class StrictInteger(fields.Integer):
    """A JSON integer: no numeric strings, no booleans, no floats."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """A JSON boolean: marshmallow's Boolean would take ``"yes"`` or ``1``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


class IntegerLike(fields.Raw):
    """A JSON integer or a string holding one (``priority``, ``backgroundRate``,
    ``signoffs_required``, …): loads as an int."""

    def __init__(self, minimum: int | None = None, maximum: int | None = None, **kwargs):
        self.minimum, self.maximum = minimum, maximum
        bounds = {k: v for k, v in (("minimum", minimum), ("maximum", maximum)) if v is not None}
        branches: list[dict] = [{"type": "integer", **bounds},
                                {"type": "string", "pattern": r"^\s*[-+]?[0-9]+\s*$"}]
        if kwargs.get("allow_none"):
            branches.append({"type": "null"})
        metadata = {"anyOf": branches, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (numbers.Integral, str)):
            raise ValidationError("Not an integer.")
        try:
            number = int(value)
        except ValueError:
            raise ValidationError("Not an integer.") from None
        if self.minimum is not None and number < self.minimum:
            raise ValidationError(f"Must be >= {self.minimum}.")
        if self.maximum is not None and number > self.maximum:
            raise ValidationError(f"Must be <= {self.maximum}.")
        return number


class JsonString(fields.String):
    """A string whose content is a JSON document (of ``json_type`` when given); loads parsed.

    ``blank``: ``""`` is taken and loads as None (the v1 form's ``copyTo``/``alias``).
    ``empty``: blank, and the documents ``null``, ``{}`` and ``[]``, all load as None (permission
    ``options``, which the views store as null). ``null_document``: the document ``null`` loads as
    None (a locale's ``alias``, which release automation sends as ``"null"``)."""

    def __init__(self, json_type: str | None = None, blank: bool = False, empty: bool = False,
                 null_document: bool = False, **kwargs):
        self.json_type = json_type
        self.blank, self.empty = blank or empty, empty
        self.null_document = null_document or empty
        metadata = {"contentMediaType": "application/json", **kwargs.pop("metadata", {})}
        if json_type:
            content: dict = {"type": json_type}
            if empty:
                content = {"anyOf": [content, {"type": "null"}, {"type": "array", "maxItems": 0}]}
            elif null_document:
                content = {"anyOf": [content, {"type": "null"}]}
            metadata["contentSchema"] = content
        if self.blank:
            metadata.setdefault("description", "JSON text; an empty string means none.")
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if self.blank and text == "":
            return None
        try:
            parsed = json.loads(text)
        except ValueError:
            raise ValidationError("Not a JSON document.") from None
        if self.empty and (parsed is None or parsed in ({}, [])):
            return None
        if self.null_document and parsed is None:
            return None
        expected = {"object": dict, "array": list}.get(self.json_type or "")
        if expected is not None and not isinstance(parsed, expected):
            raise ValidationError(f"Not a JSON {self.json_type}.")
        return parsed


class BooleanOrString(fields.Raw):
    """A JSON boolean, or a string read as one (``""`` is false): v1's ``read_only`` flag."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"anyOf": [{"type": "boolean"}, {"type": "string"}]}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, (bool, str)):
            raise ValidationError("Not a boolean or a string.")
        return bool(value)


def _any(**kwargs) -> fields.Raw:
    """Any JSON value (blobs, locales, options)."""
    return fields.Raw(**kwargs)


def _object(**kwargs) -> fields.Dict:
    """A JSON object with any members."""
    return fields.Dict(**kwargs)


def _str(size: int | None = None, **kwargs) -> fields.String:
    """A string; ``size``: the column's, the longest value taken."""
    if size is not None:
        kwargs["validate"] = validate.Length(max=size)
    return fields.String(**kwargs)


def _nullable_str(size: int | None = None, **kwargs) -> fields.String:
    return _str(size, allow_none=True, **kwargs)


def _int(**kwargs) -> StrictInteger:
    return StrictInteger(**kwargs)


def _timestamp(**kwargs) -> StrictInteger:
    """Milliseconds since the epoch."""
    return StrictInteger(validate=validate.Range(0, INT64_MAX), **kwargs)


def _role_counts(**kwargs) -> fields.Dict:
    """``{role: number of signoffs}``."""
    return fields.Dict(keys=fields.String(), values=StrictInteger(), **kwargs)


def _signoff_map(**kwargs) -> fields.Dict:
    """``{username: role}``."""
    return fields.Dict(keys=fields.String(), values=fields.String(), **kwargs)


# --- bases -------------------------------------------------------------------------------------------
class Request(Schema):
    """A request body: keys the server does not know are accepted and ignored."""

    class Meta:
        unknown = EXCLUDE


class Fixed(Schema):
    """A response body whose members are all listed."""

    class Meta:
        unknown = RAISE


class Open(Schema):
    """A response body (a database row) that lists the members always present; there may be more."""

    class Meta:
        unknown = INCLUDE


# --- errors -------------------------------------------------------------------------------------------
class ProblemSchema(Fixed):
    """Every error body (admin-api.md §0.3): ``application/json`` when Balrog's views raise it,
    ``application/problem+json`` when the validation layer or the router does."""

    type = _str(required=True)
    title = _nullable_str(required=True)
    detail = _str(required=True)
    status = _int(required=True)
    exception = fields.Raw(metadata={"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})


class NewDataVersionSchema(Fixed):
    new_data_version = _int(required=True)


class EmptySchema(Fixed):
    """``{}``; the signoff revocation answers ``{"error": …}`` when there was nothing to revoke."""

    error = _str()


# --- rules (§1) -------------------------------------------------------------------------------------------
def _rule_column(name: str, *, required: bool = False, response: bool = False, **kwargs) -> fields.Field:
    """One rule column: what a request may send (numeric strings for the integers) or what a
    response holds (JSON types only)."""
    nullable = kwargs.pop("allow_none", True)
    if name in ("rule_id", "data_version"):
        return StrictInteger(required=required, allow_none=nullable) if response else \
            IntegerLike(minimum=1, maximum=INT32_MAX, required=required, allow_none=nullable)
    if name == "priority":
        return StrictInteger(required=required, allow_none=nullable) if response else \
            IntegerLike(minimum=0, maximum=INT32_MAX, required=required, allow_none=nullable)
    if name == "backgroundRate":
        return StrictInteger(required=required, allow_none=nullable) if response else \
            IntegerLike(minimum=0, maximum=100, required=required, allow_none=nullable)
    if name == "update_type":
        return fields.String(required=required, allow_none=nullable,
                             validate=validate.OneOf(UPDATE_TYPES))
    if name in ("jaws", "mig64"):
        return StrictBoolean(required=required, allow_none=nullable)
    size = {} if response else {"validate": validate.Length(max=RULE_STRING_SIZES[name])}
    if name == "buildID" and not response:
        kwargs["metadata"] = {"pattern": r"^\s*((<=|>=|<|>)?[0-9]+)?\s*$"}
    if name == "version" and not response:
        kwargs["metadata"] = {"description": "A comma list of versions without operators, or one version with an "
                                             "optional operator (<, <=, >, >=, =); `60.*` globs allowed."}
    return fields.String(required=required, allow_none=nullable, **size, **kwargs)


WRITABLE_RULE_COLUMNS = tuple(c for c in RULE_COLUMNS if c not in ("rule_id", "data_version"))

def _rule_row(history: bool = False) -> dict[str, fields.Field]:
    """A rule as responses print it: every column; the id, the version and ``update_type`` are
    never null (except in history rows, where they may be)."""
    out = {}
    for c in RULE_COLUMNS:
        never_null = c in ("rule_id", "data_version", "update_type") and not history
        out[c] = _rule_column(c, required=True, response=True, allow_none=not never_null)
    return out


RuleSchema = Fixed.from_dict(_rule_row(), name="Rule")
RuleSchema.__doc__ = "A rule: every column, null when unset (admin-api.md §1)."

_HISTORY = {"change_id": _int(required=True), "changed_by": _str(required=True), "timestamp": _timestamp(required=True)}
RuleRevisionSchema = Fixed.from_dict(
    {**_rule_row(), **_HISTORY},
    name="RuleRevision")
#: ``GET /rules`` rows: a rule, and at a point in time (``?timestamp=``) also its history members.
RuleListItemSchema = Fixed.from_dict(
    {**_rule_row(),
     "change_id": _int(), "changed_by": _str(), "timestamp": _timestamp()},
    name="RuleListItem")


class RuleListSchema(Fixed):
    count = _int(required=True)
    rules = fields.List(fields.Nested(RuleListItemSchema), required=True)


class RuleRevisionsSchema(Fixed):
    count = _int(required=True)
    rules = fields.List(fields.Nested(RuleRevisionSchema), required=True)


NewRuleSchema = Request.from_dict(
    {**{c: _rule_column(c) for c in WRITABLE_RULE_COLUMNS},
     "priority": _rule_column("priority", required=True),
     "backgroundRate": _rule_column("backgroundRate", required=True),
     "update_type": _rule_column("update_type", required=True, allow_none=False),
     # The view refuses a rule without a mapping (400 "mapping value cannot be set to null/empty").
     "mapping": fields.String(required=True, validate=[validate.Length(max=100), validate.Regexp(r"\S")])},
    name="NewRule")
RuleUpdateSchema = Request.from_dict(
    {**{c: _rule_column(c) for c in WRITABLE_RULE_COLUMNS},
     "data_version": _rule_column("data_version", required=True, allow_none=False),
     "update_type": _rule_column("update_type", allow_none=False),
     "mapping": fields.String(validate=[validate.Length(max=100), validate.Regexp(r"\S")])},
    name="RuleUpdate")


class RevertSchema(Request):
    """``POST …/revisions``: go back to one history entry."""

    change_id = IntegerLike(minimum=1, required=True)


#: A rule scheduled change's history entry (``/rules/history``, ``…/rules/<sc_id>/revisions``).
RuleSCRevisionSchema = Fixed.from_dict(
    {**_rule_row(history=True),
     "sc_id": _int(required=True), "sc_data_version": _int(required=True, allow_none=True),
     **_HISTORY, "scheduled_by": _nullable_str(required=True),
     "complete": StrictBoolean(required=True, allow_none=True),
     "change_type": _nullable_str(required=True), "when": _timestamp(required=True, allow_none=True),
     "telemetry_product": _nullable_str(required=True), "telemetry_channel": _nullable_str(required=True),
     "telemetry_uptake": _int(required=True, allow_none=True),
     "conditions": fields.Dict(keys=fields.String(), values=fields.Dict())},
    name="RuleScheduledChangeRevision")


class _HistoryHalf(Fixed):
    count = _int(required=True)


class RuleHistoryHalfSchema(_HistoryHalf):
    revisions = fields.List(fields.Nested(RuleRevisionSchema), required=True)


class RuleSCHistoryHalfSchema(_HistoryHalf):
    revisions = fields.List(fields.Nested(RuleSCRevisionSchema), required=True)


class RulesHistorySchema(Fixed):
    """``GET /rules/history`` (admin-api.md §9.2)."""

    rules = fields.Nested(RuleHistoryHalfSchema, required=True, data_key="Rules")
    scheduled = fields.Nested(RuleSCHistoryHalfSchema, required=True, data_key="Rules scheduled change")


class ColumnValuesSchema(Fixed):
    """``GET …/columns/<column>``: ``{"count": n, "<column>": [distinct values]}``."""

    count = _int(required=True)

    class Meta:
        unknown = INCLUDE
        additional_properties = fields.List(fields.Raw())


# --- releases, v1 (§2) --------------------------------------------------------------------------------------
class RuleInfoSchema(Fixed):
    product = _nullable_str(required=True)
    channel = _nullable_str(required=True)


class ReleaseListItemSchema(Fixed):
    name = _str(required=True)
    product = _nullable_str(required=True)
    data_version = _int(required=True)
    read_only = StrictBoolean(required=True)
    rule_ids = fields.List(StrictInteger(), required=True)
    rule_info = fields.Dict(keys=fields.String(), values=fields.Nested(RuleInfoSchema), required=True)
    required_signoffs = _role_counts(required=True)


class ReleaseListSchema(Fixed):
    releases = fields.List(fields.Nested(ReleaseListItemSchema), required=True)


class ReleaseNamesSchema(Fixed):
    """``GET /releases?names_only``."""

    names = fields.List(fields.String(), required=True)


class NewReleaseSchema(Request):
    """``POST /releases``; ``data_version`` is accepted and ignored."""

    name = _str(NAME_SIZE, required=True)
    product = _str(PRODUCT_SIZE, required=True)
    blob = JsonString("object", required=True)
    data_version = _int(allow_none=True)


class ReleasePutSchema(Request):
    """``PUT /releases/<name>``: the whole blob; ``data_version`` is required when the release exists."""

    name = _str(NAME_SIZE, required=True)
    product = _str(PRODUCT_SIZE, required=True)
    blob = JsonString("object", required=True)
    data_version = _int(allow_none=True)


class ReleaseFormSchema(Request):
    """The v1 "partial release" form (§2.2): ``POST /releases/<name>`` and
    ``PUT /releases/<name>/builds/<platform>/<locale>``."""

    product = _str(PRODUCT_SIZE, required=True)
    data = JsonString("object", required=True)
    schema_version = IntegerLike(allow_none=True)
    hashFunction = _nullable_str()
    data_version = _int(allow_none=True)
    #: Release names (each created when missing); blank means none.
    copyTo = JsonString("array", blank=True, allow_none=True)
    #: Platforms made aliases of the locale's platform (the locale form only); blank means none.
    alias = JsonString("array", blank=True, null_document=True, allow_none=True)  # automation sends "null"
    name = _nullable_str()


class ReadOnlySchema(Fixed):
    read_only = StrictBoolean(required=True)


class ReadOnlyPutSchema(Request):
    """``PUT /releases/<name>/read_only``: ``""`` counts as false."""

    read_only = BooleanOrString(required=True)
    data_version = _int(required=True)


class ReleaseRequiredSignoffsSchema(Fixed):
    required_signoffs = _role_counts(required=True)


# --- releases, v2 (§3) --------------------------------------------------------------------------------------
class V2ReleaseListItemSchema(Fixed):
    name = _str(required=True)
    product = _nullable_str(required=True)
    data_version = _int(required=True, allow_none=True)
    read_only = StrictBoolean(required=True, allow_none=True)
    rule_info = fields.Dict(keys=fields.String(), values=fields.Nested(RuleInfoSchema), required=True)
    required_signoffs = _role_counts()
    product_required_signoffs = _role_counts()
    scheduled_changes = fields.List(_object(), required=True)


class V2ReleaseListSchema(Fixed):
    releases = fields.List(fields.Nested(V2ReleaseListItemSchema), required=True)


class V2ReleaseSchema(Fixed):
    """``GET /v2/releases/<name>``: the joined blob, its versions tree, and the same with the
    pending scheduled changes applied (``{}`` when there are none)."""

    blob = _object(required=True)
    data_versions = _object(required=True)
    sc_blob = _object(required=True)
    sc_data_versions = _object(required=True)


class DataVersionsSchema(Fixed):
    data_versions = _object(required=True)


class DataVersionSchema(Fixed):
    data_version = _int(required=True)


class V2ReleasePutSchema(Request):
    """``PUT /v2/releases/<name>``: the whole blob (``product`` needed to create)."""

    blob = _object(required=True)
    product = _nullable_str(PRODUCT_SIZE)
    old_data_versions = _object(allow_none=True)
    when = _timestamp(allow_none=True)


class V2ReleasePostSchema(Request):
    """``POST /v2/releases/<name>``: a partial blob, deep-merged."""

    blob = _object(required=True)
    old_data_versions = _object(required=True, allow_none=True)
    when = _timestamp(allow_none=True)


class V2ReadOnlySchema(Request):
    read_only = StrictBoolean(required=True)
    old_data_version = _int(required=True)


class PinnableSchema(Request):
    """``PUT /v2/releases/<name>/pinnable``."""

    product = _str(PRODUCT_SIZE, required=True)
    channel = _str(CHANNEL_SIZE, required=True)
    version = _str(PIN_VERSION_SIZE, required=True)
    when = _timestamp(allow_none=True)


class PinNotSetSchema(Fixed):
    pin_not_set = StrictBoolean(required=True)
    reason = _str(required=True)


class PinSchema(Fixed):
    product = _str(required=True)
    channel = _str(required=True)
    version = _str(required=True)
    mapping = _str(required=True)
    data_version = _int(required=True)


class SignoffSchema(Request):
    """A signoff: the role the caller signs with. ``username``, when given, must be the caller."""

    role = _str(ROLE_SIZE, required=True)
    username = _nullable_str(NAME_SIZE)


# --- users, permissions, roles (§7) -----------------------------------------------------------------------
class PermissionEntrySchema(Fixed):
    options = fields.Dict(required=True, allow_none=True)
    data_version = _int(required=True)


class RoleEntrySchema(Fixed):
    role = _str(required=True)
    data_version = _int(required=True)


class RoleVersionSchema(Fixed):
    data_version = _int(required=True)


def _permission_map(**kwargs) -> fields.Dict:
    return fields.Dict(keys=fields.String(validate=validate.OneOf(permissions.KINDS)),
                       values=fields.Nested(PermissionEntrySchema), **kwargs)


class UserSummarySchema(Fixed):
    permissions = _permission_map(required=True)
    roles = fields.List(fields.Nested(RoleEntrySchema), required=True)


class UsersSchema(Fixed):
    """``GET /users``: keyed by username."""

    class Meta:
        unknown = INCLUDE
        additional_properties = fields.Nested(UserSummarySchema)


class UserSchema(Fixed):
    """``GET /users/<username>`` (``roles`` is an object here, a list in ``/users``)."""

    username = _str(required=True)
    permissions = _permission_map(required=True)
    roles = fields.Dict(keys=fields.String(), values=fields.Nested(RoleVersionSchema), required=True)


class UserPermissionsSchema(Fixed):
    """``GET /users/<username>/permissions``: keyed by permission."""

    class Meta:
        unknown = INCLUDE
        additional_properties = fields.Nested(PermissionEntrySchema)


def _options(**kwargs) -> JsonString:
    """Permission ``options``: a JSON object in a string; blank, ``null``, ``{}`` and ``[]`` mean none."""
    return JsonString("object", empty=True, allow_none=True, **kwargs)


class PermissionPutSchema(Request):
    """``PUT /users/<u>/permissions/<p>``: ``options`` is a JSON object in a string;
    ``data_version`` is required when the permission exists."""

    options = _options()
    data_version = _int(allow_none=True)


class PermissionPostSchema(Request):
    """``POST /users/<u>/permissions/<p>``: an update of an existing permission."""

    options = _options()
    data_version = _int(required=True)


class PermissionRevisionSchema(Open):
    permission = _nullable_str(required=True)
    username = _nullable_str(required=True)
    options = fields.Dict(required=True, allow_none=True)
    data_version = _int(required=True, allow_none=True)
    change_id = _int(required=True)
    changed_by = _str(required=True)
    timestamp = _timestamp(required=True)


# --- scheduled changes (§4) --------------------------------------------------------------------------------
class _SCCommon(Schema):
    """The members every scheduled change has (admin-api.md §4.1)."""

    class Meta:
        unknown = RAISE

    sc_id = _int(required=True)
    sc_data_version = _int(required=True)
    change_type = fields.String(required=True, validate=validate.OneOf(CHANGE_TYPES))
    scheduled_by = _str(required=True)
    complete = StrictBoolean(required=True)
    when = _timestamp(required=True, allow_none=True)
    data_version = _int(required=True, allow_none=True)
    signoffs = _signoff_map(required=True)
    required_signoffs = _role_counts(required=True)
    conditions = fields.Dict(keys=fields.String(), values=fields.Dict())  # only when it has some


class _SCRevisionCommon(Schema):
    """The members every scheduled-change history entry has (admin-api.md §9.2)."""

    class Meta:
        unknown = INCLUDE

    sc_id = _int(required=True)
    sc_data_version = _int(required=True, allow_none=True)
    change_type = _nullable_str(required=True)
    scheduled_by = _nullable_str(required=True)
    complete = StrictBoolean(required=True, allow_none=True)
    when = _timestamp(required=True, allow_none=True)
    data_version = _int(required=True, allow_none=True)
    change_id = _int(required=True)
    changed_by = _str(required=True)
    timestamp = _timestamp(required=True)
    conditions = fields.Dict(keys=fields.String(), values=fields.Dict())


def _sc_schemas(title: str, columns: Mapping[str, fields.Field], uptake: bool = False) -> tuple[type, type]:
    """(scheduled change, history entry) of one type: the common members plus its columns."""
    conditions = {"telemetry_product": _nullable_str(required=True), "telemetry_channel": _nullable_str(required=True),
                  "telemetry_uptake": _int(required=True, allow_none=True)} if uptake else {}
    change = _SCCommon.from_dict({**columns, **conditions}, name=f"{title}ScheduledChange")
    history_columns = {}
    for name, field in columns.items():
        # every history column is nullable
        history_columns[name] = fields.Raw(required=True, allow_none=True) if not isinstance(field, fields.Dict) else \
            fields.Dict(required=True, allow_none=True)
    revision = _SCRevisionCommon.from_dict(history_columns, name=f"{title}ScheduledChangeRevision")
    return change, revision


RuleSCSchema, _ = _sc_schemas("Rule", {c: _rule_column(c, required=True, response=True) for c in RULE_COLUMNS
                                        if c != "data_version"}, uptake=True)
ReleaseSCSchema, ReleaseSCRevisionSchema = _sc_schemas("Release", {
    "name": _str(required=True), "product": _nullable_str(required=True),
    "read_only": StrictBoolean(required=True, allow_none=True), "data": _any(required=True, allow_none=True)})
PermissionSCSchema, PermissionSCRevisionSchema = _sc_schemas("Permission", {
    "permission": _str(required=True), "username": _str(required=True),
    "options": fields.Dict(required=True, allow_none=True)})
ProductRSSCSchema, ProductRSSCRevisionSchema = _sc_schemas("ProductRequiredSignoff", {
    "product": _str(required=True), "channel": _str(required=True), "role": _str(required=True),
    "signoffs_required": _int(required=True, allow_none=True)})
PermissionsRSSCSchema, PermissionsRSSCRevisionSchema = _sc_schemas("PermissionsRequiredSignoff", {
    "product": _str(required=True), "role": _str(required=True),
    "signoffs_required": _int(required=True, allow_none=True)})
ShutoffSCSchema, ShutoffSCRevisionSchema = _sc_schemas("EmergencyShutoff", {
    "product": _str(required=True), "channel": _str(required=True), "comment": _nullable_str(required=True)})
PinSCSchema, PinSCRevisionSchema = _sc_schemas("Pin", {
    "product": _str(required=True), "channel": _str(required=True), "version": _str(required=True),
    "mapping": _str(required=True)})


def sc_list_schema(title: str, change: type) -> type:
    return Fixed.from_dict({"count": _int(required=True),
                            "scheduled_changes": fields.List(fields.Nested(change), required=True)},
                           name=f"{title}ScheduledChangeList")


def sc_one_schema(title: str, change: type) -> type:
    return Fixed.from_dict({"scheduled_change": fields.Nested(change, required=True)},
                           name=f"{title}ScheduledChangeOne")


def sc_revisions_schema(title: str, revision: type) -> type:
    return Fixed.from_dict({"count": _int(required=True),
                            "revisions": fields.List(fields.Nested(revision), required=True)},
                           name=f"{title}ScheduledChangeRevisions")


class SCCreatedSchema(Fixed):
    sc_id = _int(required=True)
    signoffs = _signoff_map(required=True)


class SCUpdatedSchema(Fixed):
    new_data_version = _int(required=True)
    signoffs = _signoff_map(required=True)


class SCEnactmentSchema(Fixed):
    """Who enacted a scheduled change, and when (the change's history says who scheduled it)."""

    sc_id = _int(required=True)
    segment = _str(required=True)
    enacted_by = _str(required=True)
    timestamp = _timestamp(required=True)


def _when(**kwargs) -> IntegerLike:
    """``when``: milliseconds, not in the past. A new change needs it unless it has other
    conditions (uptake of rule changes, or plugin ``conditions``): the view refuses one with none."""
    return IntegerLike(minimum=0, maximum=INT64_MAX, **kwargs)


def _conditions(**kwargs) -> fields.Dict:
    """Condition plugins' parameters, ``{<condition type>: {params}}``; each type's own schema
    checks its parameters (admin-api.md: scheduled-change conditions)."""
    return fields.Dict(keys=fields.String(), values=fields.Dict(), allow_none=True, **kwargs)


def _change_type(choices=CHANGE_TYPES, **kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf(choices), **kwargs)


_SC_UPTAKE = {"telemetry_product": _nullable_str(PRODUCT_SIZE), "telemetry_channel": _nullable_str(CHANNEL_SIZE),
              "telemetry_uptake": IntegerLike(minimum=0, allow_none=True)}

NewRuleSCSchema = Request.from_dict(
    {**{c: _rule_column(c) for c in WRITABLE_RULE_COLUMNS}, "change_type": _change_type(),
     "when": _when(allow_none=True), "conditions": _conditions(), **_SC_UPTAKE, "rule_id": _rule_column("rule_id"),
     "data_version": _rule_column("data_version")},
    name="NewRuleScheduledChange")
RuleSCUpdateSchema = Request.from_dict(
    {**{c: _rule_column(c) for c in WRITABLE_RULE_COLUMNS}, "sc_data_version": _int(required=True),
     "when": _when(allow_none=True), "conditions": _conditions(), **_SC_UPTAKE, "data_version": _rule_column("data_version")},
    name="RuleScheduledChangeUpdate")
NewPermissionSCSchema = Request.from_dict(
    {"change_type": _change_type(required=True), "when": _when(allow_none=True), "conditions": _conditions(),
     "permission": fields.String(required=True, validate=validate.OneOf(permissions.KINDS)),
     "username": _str(NAME_SIZE, required=True), "options": _options(),
     "data_version": IntegerLike(minimum=1, allow_none=True)},
    name="NewPermissionScheduledChange")
PermissionSCUpdateSchema = Request.from_dict(
    {"sc_data_version": _int(required=True), "when": _when(allow_none=True), "conditions": _conditions(),
     "permission": fields.String(validate=validate.OneOf(permissions.KINDS)), "username": _str(NAME_SIZE),
     "options": _options(), "data_version": IntegerLike(minimum=1, allow_none=True)},
    name="PermissionScheduledChangeUpdate")
NewProductRSSCSchema = Request.from_dict(
    {"change_type": _change_type(required=True), "when": _when(allow_none=True), "conditions": _conditions(),
     "product": _str(PRODUCT_SIZE, required=True), "channel": _str(CHANNEL_SIZE, required=True),
     "role": _str(ROLE_SIZE, required=True),
     "signoffs_required": IntegerLike(minimum=1, maximum=INT32_MAX, allow_none=True),
     "data_version": IntegerLike(minimum=1, allow_none=True)},
    name="NewProductRequiredSignoffScheduledChange")
ProductRSSCUpdateSchema = Request.from_dict(
    {"sc_data_version": _int(required=True), "when": _when(allow_none=True), "conditions": _conditions(), "product": _str(PRODUCT_SIZE),
     "channel": _str(CHANNEL_SIZE), "role": _str(ROLE_SIZE),
     "signoffs_required": IntegerLike(minimum=1, maximum=INT32_MAX, allow_none=True),
     "data_version": IntegerLike(minimum=1, allow_none=True)},
    name="ProductRequiredSignoffScheduledChangeUpdate")
NewPermissionsRSSCSchema = Request.from_dict(
    {"change_type": _change_type(required=True), "when": _when(allow_none=True), "conditions": _conditions(),
     "product": _str(PRODUCT_SIZE, required=True), "role": _str(ROLE_SIZE, required=True),
     "signoffs_required": IntegerLike(minimum=1, maximum=INT32_MAX, allow_none=True),
     "data_version": IntegerLike(minimum=1, allow_none=True)},
    name="NewPermissionsRequiredSignoffScheduledChange")
PermissionsRSSCUpdateSchema = Request.from_dict(
    {"sc_data_version": _int(required=True), "when": _when(allow_none=True), "conditions": _conditions(), "product": _str(PRODUCT_SIZE),
     "role": _str(ROLE_SIZE),
     "signoffs_required": IntegerLike(minimum=1, maximum=INT32_MAX, allow_none=True),
     "data_version": IntegerLike(minimum=1, allow_none=True)},
    name="PermissionsRequiredSignoffScheduledChangeUpdate")
NewReleaseSCSchema = Request.from_dict(
    {"change_type": _change_type(required=True), "when": _when(allow_none=True), "conditions": _conditions(),
     "name": _str(NAME_SIZE, required=True), "product": _nullable_str(PRODUCT_SIZE),
     "data": JsonString("object", allow_none=True), "read_only": StrictBoolean(allow_none=True),
     "data_version": IntegerLike(minimum=1, allow_none=True)},
    name="NewReleaseScheduledChange")
ReleaseSCUpdateSchema = Request.from_dict(
    {"sc_data_version": _int(required=True), "when": _when(allow_none=True), "conditions": _conditions(), "name": _str(NAME_SIZE),
     "product": _nullable_str(PRODUCT_SIZE), "data": JsonString("object", allow_none=True),
     "data_version": IntegerLike(minimum=1, allow_none=True)},
    name="ReleaseScheduledChangeUpdate")
NewShutoffSCSchema = Request.from_dict(
    {"change_type": _change_type(("delete",), required=True), "when": _when(allow_none=True), "conditions": _conditions(),
     "product": _str(PRODUCT_SIZE, required=True), "channel": _str(CHANNEL_SIZE, required=True),
     "comment": _nullable_str(COMMENT_SIZE),
     "data_version": IntegerLike(minimum=1, required=True)},
    name="NewEmergencyShutoffScheduledChange")
ShutoffSCUpdateSchema = Request.from_dict(
    {"sc_data_version": _int(required=True), "when": _when(allow_none=True), "conditions": _conditions()},
    name="EmergencyShutoffScheduledChangeUpdate")

#: The request bodies of each ``/scheduled_changes/<segment>`` type: (create, edit).
SC_BODIES: dict[str, tuple[type, type]] = {
    "rules": (NewRuleSCSchema, RuleSCUpdateSchema),
    "releases": (NewReleaseSCSchema, ReleaseSCUpdateSchema),
    "permissions": (NewPermissionSCSchema, PermissionSCUpdateSchema),
    "required_signoffs/product": (NewProductRSSCSchema, ProductRSSCUpdateSchema),
    "required_signoffs/permissions": (NewPermissionsRSSCSchema, PermissionsRSSCUpdateSchema),
    "emergency_shutoff": (NewShutoffSCSchema, ShutoffSCUpdateSchema),
}


# --- required signoffs (§5) ------------------------------------------------------------------------------
class ProductRSSchema(Fixed):
    product = _str(required=True)
    channel = _str(required=True)
    role = _str(required=True)
    signoffs_required = _int(required=True)
    data_version = _int(required=True)


class PermissionsRSSchema(Fixed):
    product = _str(required=True)
    role = _str(required=True)
    signoffs_required = _int(required=True)
    data_version = _int(required=True)


class ProductRSListSchema(Fixed):
    count = _int(required=True)
    required_signoffs = fields.List(fields.Nested(ProductRSSchema), required=True)


class PermissionsRSListSchema(Fixed):
    count = _int(required=True)
    required_signoffs = fields.List(fields.Nested(PermissionsRSSchema), required=True)


class NewProductRSSchema(Request):
    product = _str(PRODUCT_SIZE, required=True)
    channel = _str(CHANNEL_SIZE, required=True)
    role = _str(ROLE_SIZE, required=True)
    signoffs_required = IntegerLike(minimum=1, maximum=INT32_MAX, required=True)


class NewPermissionsRSSchema(Request):
    product = _str(PRODUCT_SIZE, required=True)
    role = _str(ROLE_SIZE, required=True)
    signoffs_required = IntegerLike(minimum=1, maximum=INT32_MAX, required=True)


class RSRevisionSchema(Open):
    """A required-signoff history row (``channel`` only for product requirements)."""

    product = _nullable_str(required=True)
    role = _nullable_str(required=True)
    signoffs_required = _int(required=True, allow_none=True)
    data_version = _int(required=True, allow_none=True)
    change_id = _int(required=True)
    changed_by = _str(required=True)
    timestamp = _timestamp(required=True)


class RSRevisionsSchema(Fixed):
    count = _int(required=True)
    required_signoffs = fields.List(fields.Nested(RSRevisionSchema), required=True)


def history_schema(name: str, plain_title: str, plain_key: str, plain_row: type, sc_title: str,
                   sc_row: type) -> type:
    """An aggregate ``…/history`` document: two halves, each ``{"count", <key>: [rows]}``."""
    plain = Fixed.from_dict({"count": _int(required=True), plain_key: fields.List(fields.Nested(plain_row),
                                                                                  required=True)},
                            name=f"{name}Half")
    scheduled = Fixed.from_dict({"count": _int(required=True),
                                 "revisions": fields.List(fields.Nested(sc_row), required=True)},
                                name=f"{name}ScheduledChangeHalf")
    return Fixed.from_dict({"plain": fields.Nested(plain, required=True, data_key=plain_title),
                            "scheduled": fields.Nested(scheduled, required=True, data_key=sc_title)}, name=name)


PermissionsHistorySchema = history_schema("PermissionsHistory", "Permissions", "revisions", PermissionRevisionSchema,
                                          "Permissions Scheduled Change", PermissionSCRevisionSchema)
ProductRSHistorySchema = history_schema(
    "ProductRequiredSignoffsHistory", "Product Required Signoffs", "required_signoffs", RSRevisionSchema,
    "Product Required Signoffs Scheduled Change", ProductRSSCRevisionSchema)
PermissionsRSHistorySchema = history_schema(
    "PermissionsRequiredSignoffsHistory", "Permissions Required Signoffs", "required_signoffs", RSRevisionSchema,
    "Permissions Required Signoffs Scheduled Change", PermissionsRSSCRevisionSchema)


# --- emergency shutoffs (§6) ---------------------------------------------------------------------------
class ShutoffSchema(Fixed):
    product = _str(required=True)
    channel = _str(required=True)
    comment = _nullable_str(required=True)
    data_version = _int(required=True)


class ShutoffListSchema(Fixed):
    count = _int(required=True)
    shutoffs = fields.List(fields.Nested(ShutoffSchema), required=True)


class NewShutoffSchema(Request):
    product = _str(PRODUCT_SIZE, required=True)
    channel = _str(CHANNEL_SIZE, required=True)
    comment = _nullable_str(COMMENT_SIZE)


# --- explain, preview, lint (docs/explain.md) -------------------------------------------------------------
class ExplainReasonSchema(Fixed):
    """Why a rule does not match: the first failing column, both values, in words."""

    field = _str(required=True)
    rule_value = fields.Raw(required=True, allow_none=True)
    request_value = fields.Raw(required=True, allow_none=True)
    text = _str(required=True)


class RuleVerdictSchema(Fixed):
    rule_id = _int(required=True)
    alias = _nullable_str(required=True)
    priority = _int(required=True, allow_none=True)
    mapping = _nullable_str(required=True)
    fallbackMapping = _nullable_str(required=True)
    backgroundRate = _int(required=True, allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(("selected", "matched", "no match", "error")))
    reason = fields.Nested(ExplainReasonSchema, required=True, allow_none=True)


class OutcomeSchema(Fixed):
    """One answer of the public server and the share of such requests that get it."""

    share = _int(required=True, allow_none=True)
    roll = _int(required=True, allow_none=True)
    branch = _str(required=True)
    release = _nullable_str(required=True)
    note = _str(required=True)
    status = _int(required=True)
    content_type = _nullable_str(required=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    body = _str(required=True)


class ProductChannelSchema(Fixed):
    product = _str(required=True)
    channel = _str(required=True)


class ExplainAnswerSchema(Fixed):
    rule_id = _int(required=True, allow_none=True)
    summary = _str(required=True)
    shutoff = fields.Nested(ProductChannelSchema, required=True, allow_none=True)
    error = _nullable_str(required=True)
    random = StrictBoolean(required=True)
    outcomes = fields.List(fields.Nested(OutcomeSchema), required=True)


class ExplanationSchema(Fixed):
    """``GET /explain``: how the public server answers the URL, rule by rule."""

    url = _str(required=True)
    user_agent = _str(required=True)
    query = _object(required=True)
    matched_rule = _int(required=True, allow_none=True)
    answer = fields.Nested(ExplainAnswerSchema, required=True)
    rules = fields.List(fields.Nested(RuleVerdictSchema), required=True)


class RuleChangeSchema(Schema):
    """A proposed rule change: ``create`` (``rule``), ``update`` (``rule_id``, ``rule``) or
    ``delete`` (``rule_id``). Other members are refused."""

    class Meta:
        unknown = RAISE

    action = fields.String(required=True, validate=validate.OneOf(("create", "update", "delete")))
    rule_id = _int()
    rule = _object()


class PreviewRequestSchema(Schema):
    """``POST /explain/preview``: other members are refused (a misspelt one would be a silent no-op)."""

    class Meta:
        unknown = RAISE

    change = fields.Nested(RuleChangeSchema, required=True)
    urls = fields.List(fields.String(), required=True, validate=validate.Length(min=1, max=1000))
    user_agent = _str()


class PreviewSummarySchema(Fixed):
    urls = _int(required=True)
    changed = _int(required=True)
    unchanged = _int(required=True)
    rule_changed = _int(required=True)


class PreviewResultSchema(Fixed):
    url = _str(required=True)
    changed = StrictBoolean(required=True)
    rule_changed = StrictBoolean(required=True)
    before = fields.Nested(ExplainAnswerSchema, required=True)
    after = fields.Nested(ExplainAnswerSchema, required=True)


class PreviewSchema(Fixed):
    change = fields.Nested(RuleChangeSchema, required=True)
    summary = fields.Nested(PreviewSummarySchema, required=True)
    results = fields.List(fields.Nested(PreviewResultSchema), required=True)


class LintFindingSchema(Fixed):
    rule_id = _int(required=True)
    shadowed_by = _int(required=True)
    reasons = fields.List(fields.String(), required=True)
    text = _str(required=True)


class LintSchema(Fixed):
    count = _int(required=True)
    findings = fields.List(fields.Nested(LintFindingSchema), required=True)


# --- Dockerflow (§10) -----------------------------------------------------------------------------------
class VersionSchema(Open):
    """``/__version__``: the deployed version file, or the reference's placeholder."""

    source = _str(required=True)
    version = _str(required=True)
    commit = _str(required=True)
    build = _str()


# --- validation ----------------------------------------------------------------------------------------
def load(schema: Schema | type[Schema], body: Any) -> dict:
    """``body`` validated and loaded with ``schema``; otherwise the validation layer's 400
    (``application/problem+json``) naming the first offending member, e.g.
    ``priority: Not an integer.`` or ``'name' is a required property``.

    The families call it on every request body, after their own checks (which give the
    reference's texts) and before anything is written: whatever those checks let through (a wrong
    nested type, a string longer than its column, …) is refused here, never by the database."""
    instance = schema() if isinstance(schema, type) else schema
    if not isinstance(body, dict):
        raise invalid(f"{json.dumps(body)} is not of type 'object'")
    for name, field in instance.load_fields.items():
        key = field.data_key or name
        if key in body:  # JSON takes unpaired surrogates ("\ud800"), no database does
            check_encodable(body[key], key)
    try:
        return instance.load(body)
    except ValidationError as error:
        raise invalid(_first_error(error.messages)) from None


def _first_error(messages: Any, path: str = "") -> str:
    """The first error of marshmallow's nested messages as ``<member path>: <message>``
    (``blob.platforms``, ``copyTo[0]``)."""
    if isinstance(messages, dict) and messages:
        name, value = next(iter(messages.items()))
        if isinstance(value, list) and value and value[0] == "Missing data for required field.":
            return f"'{_join(path, name)}' is a required property"
        return _first_error(value, _join(path, name))
    if isinstance(messages, list) and messages:
        first = messages[0]
        if isinstance(first, (dict, list)):
            return _first_error(first, path)
        return f"{path}: {first}" if path else str(first)
    return f"{path}: invalid" if path else "invalid"


def _join(path: str, name: Any) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    if name == "_schema":
        return path
    return f"{path}.{name}" if path else str(name)
