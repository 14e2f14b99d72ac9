"""The admin API's OpenAPI 3.1 document, built with apispec from the wire schemas
(:mod:`.schemas`) and from the app's own route table, and served at ``GET /openapi.json``
(no authentication).

The paths come from the route families themselves (``routes(ctx)`` of every module in
:data:`.app.FAMILIES`): every responder a resource defines is an operation of the document. What
an operation takes and answers (summary, parameters, body, statuses and their bodies) comes from
:func:`catalogue`, keyed by ``(method, path template)``. A responder the catalogue does not
describe still appears, marked ``x-undocumented: true`` and answering anything, so the published
document never hides an endpoint; the tests refuse such operations, so a new endpoint fails the
build until it is described here. ``HEAD`` is documented wherever ``GET`` is (the base resource
answers it like ``GET``, without a body); ``OPTIONS`` (the framework's CORS answer, 200 on every
route) is not.
"""
from __future__ import annotations

import copy
import importlib
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from marshmallow import EXCLUDE, INCLUDE, fields

from . import permissions, schemas as s
from .app import AdminContext, Resource
from .requests import MAX_PAGE, check_query

OPENAPI_VERSION = "3.1.0"
TITLE = "Balrog admin API"

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
#: Many v1 answers are JSON text labelled ``text/html; charset=utf-8`` (admin-api.md §0.4), and the
#: plain-text ones (``Excellent!``, ``OK!``) carry the same label.
HTML = "text/html"

METHODS = ("get", "head", "post", "put", "delete", "patch")

ERROR_TEXTS = {
    400: "Refused: a request that fails its schema or its query rules (`application/problem+json`), or one the "
         "endpoint refuses itself (`application/json`: signoff required, outdated data_version, …).",
    401: "No usable bearer token.",
    403: "Not a known user, or not allowed to do this.",
    404: "No such object (or no such route).",
    413: "The body is larger than the server accepts.",
}
INT32_MAX = s.INT32_MAX


# --- marshmallow -> JSON Schema ------------------------------------------------------------------------
class Converter(OpenAPIConverter):
    """apispec's converter, with ``additionalProperties`` always explicit: ``true`` for request
    bodies (unknown keys are ignored, client-compat.md §5) and open rows, ``false`` for fixed
    bodies, or the schema ``Meta.additional_properties`` gives for members named at run time."""

    def schema2jsonschema(self, schema):
        jsonschema = super().schema2jsonschema(schema)
        instance = schema() if isinstance(schema, type) else schema
        extra = getattr(getattr(instance, "Meta", None), "additional_properties", None)
        if isinstance(extra, fields.Field):
            jsonschema["additionalProperties"] = self.field2property(extra)
        elif isinstance(extra, bool):
            jsonschema["additionalProperties"] = extra
        else:
            jsonschema["additionalProperties"] = instance.unknown in (EXCLUDE, INCLUDE)
        return jsonschema


class Plugin(MarshmallowPlugin):
    Converter = Converter


# --- the catalogue ----------------------------------------------------------------------------------------
BodySchema = Any  # a marshmallow schema class, or a JSON Schema dict (it may contain marshmallow classes)


@dataclass(frozen=True)
class Answer:
    """One documented status: its body (``schema`` None: no body) and content type."""

    description: str
    schema: BodySchema = None
    content_type: str = JSON
    headers: tuple[str, ...] = ()
    #: Other content types the same status may come with, and their bodies.
    also: Mapping[str, BodySchema] = field(default_factory=dict)


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict
    description: str = ""
    required: bool = False
    example: Any = None


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    answers: Mapping[int, Answer]
    errors: tuple[int, ...] = ()
    body: BodySchema = None
    example: Any = None  # an example body (documentation, and schemathesis' explicit phase)
    query: tuple[Param, ...] = ()
    path: Mapping[str, dict] = field(default_factory=dict)  # path parameter schemas (default: string)
    auth: bool = False
    description: str = ""
    #: Whether the route's resource answers this method (some responders always answer 405).
    served: Callable[[Any], bool] = lambda resource: True


def _int_param(name: str, description: str = "", required: bool = False, minimum: int | None = None,
               maximum: int = 2**63 - 1) -> Param:
    schema: dict = {"type": "integer", "maximum": maximum, "minimum": -maximum - 1 if minimum is None else minimum}
    return Param(name, schema, description, required)


def _str_param(name: str, description: str = "", required: bool = False) -> Param:
    return Param(name, {"type": "string"}, description, required)


def _flag_param(name: str, description: str) -> Param:
    return Param(name, {"type": "string"}, description + " Any value, even empty, counts.")


DATA_VERSION_QUERY = Param("data_version", {"type": "integer", "minimum": -INT32_MAX - 1, "maximum": INT32_MAX},
                           "The data_version the object was read at.", True, example=1)
PAGING = (_int_param("page", "Page number (default 1).", minimum=1, maximum=INT32_MAX),
          _int_param("limit", "Entries per page.", minimum=1, maximum=INT32_MAX))
#: Opt-in paging of the whole lists (:func:`.requests.list_page`): without either parameter the
#: whole list, as the reference answers; with one, a slice and its total in ``X-Total-Count``.
LIST_PAGING = (_int_param("page", "Page number, from 1 (default 1). Without `page` and `limit`, the whole list.",
                          minimum=1, maximum=INT32_MAX),
               _int_param("limit", f"Entries per page (default 100, at most {MAX_PAGE}).", minimum=1,
                          maximum=MAX_PAGE))
TOTAL = "X-Total-Count"
#: What the response headers the document names hold.
HEADERS = {
    "X-Data-Version": ("The object's data_version.", {"type": "string"}),
    TOTAL: ("The length of the whole list; only when `page` or `limit` is given.", {"type": "integer", "minimum": 0}),
}
HISTORY_FILTERS = PAGING + (
    _str_param("changed_by", "Only changes made by this user."),
    _int_param("change_id", "Only this history entry."),
    _int_param("data_version", "Only entries of this version."),
    _int_param("timestamp_from", "Only changes at or after this time (ms)."),
    _int_param("timestamp_to", "Only changes at or before this time (ms)."))
SC_ID = {"sc_id": {"type": "integer", "minimum": 0, "maximum": INT32_MAX, "example": 1}}
#: Example values of path parameters, by name (an operation's ``path`` entry may give its own).
PATH_EXAMPLES = {
    "id_or_alias": "firefox-release", "name": "Firefox-60.0-build1", "platform": "WINNT_x86-msvc", "locale": "de",
    "product": "Firefox", "channel": "release", "version": "80.", "username": "admin@example.com",
    "permission": "rule", "role": "relman", "path": ".platforms.WINNT_x86_64-msvc.locales.de", "sc_id": 1,
}
V2_NAME = {"name": {"type": "string", "minLength": 1, "example": "Firefox-80.0-build1"}}
#: A time far in the future (2100-01-01), for example scheduled changes.
LATER = 4102444800000

NEW_DATA_VERSION = s.NewDataVersionSchema
EMPTY_BODY = "Done; empty body."


def _ok(description: str, schema: BodySchema = None, content_type: str = JSON, headers: tuple[str, ...] = ()) -> Answer:
    return Answer(description, schema, content_type, headers)


def _rules() -> dict:
    tag = "rules"
    rule_id = {"id_or_alias": {"type": "integer", "minimum": 0, "maximum": INT32_MAX,
                               "description": "The rule id.", "example": 1}}
    return {
        ("get", "/rules"): Operation(
            "List the rules, or all of them as they were at a point in time", tag,
            {200: _ok("The rules, by priority, version and mapping (`count`: all of them, when paged too).",
                      s.RuleListSchema, headers=(TOTAL,))}, (400,),
            query=(_str_param("product", "Only rules of this product."),
                   _int_param("timestamp", "The rules as they were at this time (ms); not with `product`."))
            + LIST_PAGING),
        ("post", "/rules"): Operation(
            "Create a rule", tag, {200: _ok("The new rule's id, as bare JSON text.", {"type": "integer"}, HTML)},
            (400, 401, 403, 413), body=s.NewRuleSchema, auth=True,
            example={"priority": 100, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
                     "channel": "release", "mapping": "Firefox-60.0-build1"}),
        ("get", "/rules/{id_or_alias}"): Operation(
            "One rule, by id or alias", tag, {200: _ok("The rule.", s.RuleSchema, headers=("X-Data-Version",))},
            (404,), path={"id_or_alias": {"type": "string", "minLength": 1,
                                          "description": "A rule id, or an alias (`^[a-zA-Z][a-zA-Z0-9-]*$`)."}}),
        **{(method, "/rules/{id_or_alias}"): Operation(
            "Change a rule (partial update)", tag, {200: _ok("The rule's new data_version.", NEW_DATA_VERSION)},
            (400, 401, 403, 404, 413), body=s.RuleUpdateSchema, auth=True,
            example={"data_version": 1, "backgroundRate": 50}) for method in ("post", "put")},
        ("delete", "/rules/{id_or_alias}"): Operation(
            "Delete a rule", tag, {200: _ok(EMPTY_BODY)}, (400, 401, 403, 404), query=(DATA_VERSION_QUERY,),
            auth=True),
        ("get", "/rules/{id_or_alias}/revisions"): Operation(
            "The versions of one rule, newest first", tag,
            {200: _ok("One page of the rule's versions.", s.RuleRevisionsSchema),
             404: Answer("The rule does not exist (plain text), or the id is not a number (no such route).",
                         {"type": "string"}, HTML, also={PROBLEM_JSON: s.ProblemSchema})},
            (400,), query=PAGING, path=rule_id),
        ("post", "/rules/{id_or_alias}/revisions"): Operation(
            "Revert a rule to one of its versions", tag, {200: _ok("`Excellent!`", {"type": "string"}, HTML)},
            (400, 401, 403, 404, 413), body=s.RevertSchema, path=rule_id, auth=True, example={"change_id": 2}),
        ("get", "/rules/columns/{column}"): Operation(
            "The distinct values of a rule column", tag, {200: _ok("The values.", s.ColumnValuesSchema)}, (404,),
            path={"column": {"type": "string", "enum": list(s.RULE_COLUMNS)}}),
        ("get", "/rules/history"): Operation(
            "Every rule change and every rule scheduled change", tag,
            {200: _ok("Both halves, paged independently.", s.RulesHistorySchema)}, (400,),
            query=HISTORY_FILTERS + (_str_param("product"), _str_param("channel"))),
    }


EXAMPLE_BLOB = {"name": "Firefox-60.0-build1", "schema_version": 1, "hashFunction": "sha512", "appv": "60.0",
                "extv": "60.0", "platforms": {"WINNT_x86-msvc": {"buildID": "20180501120000", "locales": {}}}}
EXAMPLE_LOCALE = {"complete": {"filesize": 1000, "from": "*", "hashValue": "00" * 20,
                               "fileUrl": "http://download.mozilla.org/?product=firefox-complete&os=winnt&lang=de"}}


def _releases() -> dict:
    tag = "releases"
    form = dict(body=s.ReleaseFormSchema, auth=True)
    form_answers = {200: _ok("The release's new data_version.", NEW_DATA_VERSION, HTML),
                    201: _ok("Created (the release, or the locale); its data_version.", NEW_DATA_VERSION, HTML)}
    return {
        ("get", "/releases"): Operation(
            "List the releases (v1 table)", tag,
            {200: _ok("The releases (or only their names with `names_only`).",
                      {"oneOf": [s.ReleaseListSchema, s.ReleaseNamesSchema]}, headers=(TOTAL,))}, (400,),
            query=(_str_param("product"), _str_param("name_prefix"), _flag_param("names_only", "Names only."))
            + LIST_PAGING),
        ("post", "/releases"): Operation(
            "Create a release", tag, {201: _ok("Created.", NEW_DATA_VERSION, HTML)}, (400, 401, 403, 413),
            body=s.NewReleaseSchema, auth=True,
            example={"name": "Firefox-60.0-build1", "product": "Firefox", "blob": json.dumps(EXAMPLE_BLOB)}),
        ("get", "/releases/{name}"): Operation(
            "A release's blob", tag, {200: _ok("The blob (keys sorted).", {"type": "object"},
                                               headers=("X-Data-Version",))}, (400, 404),
            query=(_flag_param("pretty", "Indent the blob."),)),
        ("put", "/releases/{name}"): Operation(
            "Create or replace a release", tag,
            {200: _ok("Replaced; the new data_version.", NEW_DATA_VERSION), 201: _ok("Created; empty body.")},
            (400, 401, 403, 413), body=s.ReleasePutSchema, auth=True,
            example={"name": "Firefox-60.0-build1", "product": "Firefox", "blob": json.dumps(EXAMPLE_BLOB),
                     "data_version": 1}),
        ("post", "/releases/{name}"): Operation(
            "Change top-level keys of a release (the partial form; creates the release if needed)", tag,
            form_answers, (400, 401, 403, 413), **form,
            example={"product": "Firefox", "data": json.dumps({"displayVersion": "60.0"}), "schema_version": 1,
                     "data_version": 1}),
        ("delete", "/releases/{name}"): Operation(
            "Delete a release", tag, {200: _ok(EMPTY_BODY)}, (400, 401, 403, 404), query=(DATA_VERSION_QUERY,),
            auth=True),
        ("get", "/releases/{name}/read_only"): Operation(
            "Whether a release is read-only", tag, {200: _ok("The flag.", s.ReadOnlySchema)}, (404,)),
        ("put", "/releases/{name}/read_only"): Operation(
            "Mark a release read-only or writable", tag, {201: _ok("The new data_version.", NEW_DATA_VERSION, HTML)},
            (400, 401, 403, 404, 413), body=s.ReadOnlyPutSchema, auth=True,
            example={"read_only": True, "data_version": 1}),
        ("get", "/releases/{name}/read_only/product/required_signoffs"): Operation(
            "The signoffs the release's product requires", tag,
            {200: _ok("Max per role, any channel.", s.ReleaseRequiredSignoffsSchema)}, (404,)),
        ("get", "/releases/columns/{column}"): Operation(
            "The distinct values of a release list column", tag, {200: _ok("The values.", s.ColumnValuesSchema)},
            (404,), path={"column": {"type": "string", "enum": ["name", "product", "data_version", "read_only"]}}),
        ("get", "/releases/{name}/builds/{platform}/{locale}"): Operation(
            "One locale of a release", tag, {200: _ok("The locale.", {"type": "object"},
                                                     headers=("X-Data-Version",))}, (404,)),
        ("put", "/releases/{name}/builds/{platform}/{locale}"): Operation(
            "Replace one locale of a release (the partial form)", tag, form_answers, (400, 401, 403, 413), **form,
            example={"product": "Firefox", "data": json.dumps(EXAMPLE_LOCALE), "schema_version": 1,
                     "data_version": 1}),
    }


def _releases_v2() -> dict:
    tag = "releases v2"
    tree = {"type": "object", "description": "A data_versions tree: `.` is the base row, "
                                             "`platforms.<p>.locales.<l>` the locales; a leaf is a new version, or "
                                             "the scheduled change made instead."}
    return {
        ("get", "/v2/releases"): Operation(
            "List the releases (v2 storage)", tag,
            {200: _ok("The releases, by name (a bare array of names with `names_only`).",
                      {"oneOf": [s.V2ReleaseListSchema, {"type": "array", "items": {"type": "string"}}]},
                      headers=(TOTAL,))},
            (400,), query=(_flag_param("names_only", "Names only."),) + LIST_PAGING),
        ("get", "/v2/releases/{name}"): Operation(
            "A release: its blob and data_versions tree", tag, {200: _ok("The release.", s.V2ReleaseSchema)}, (404,),
            path=V2_NAME),
        ("put", "/v2/releases/{name}"): Operation(
            "Create or replace a release", tag, {200: _ok("The versions of the parts written.", tree)},
            (400, 401, 403, 413), body=s.V2ReleasePutSchema, auth=True, path=V2_NAME,
            example={"product": "Firefox", "blob": {**EXAMPLE_BLOB, "name": "Firefox-80.0-build1"},
                     "old_data_versions": {".": 1}}),
        ("post", "/v2/releases/{name}"): Operation(
            "Deep-merge a partial blob into a release", tag, {200: _ok("The versions of the parts written.", tree)},
            (400, 401, 403, 404, 413), body=s.V2ReleasePostSchema, auth=True, path=V2_NAME,
            example={"blob": {"displayVersion": "80.0"}, "old_data_versions": {".": 1}}),
        ("delete", "/v2/releases/{name}"): Operation(
            "Delete a release and its locales", tag, {200: _ok(EMPTY_BODY)}, (400, 401, 403, 404), auth=True,
            path=V2_NAME),
        ("get", "/v2/releases/{name}/data_versions"): Operation(
            "A release's data_versions tree", tag, {200: _ok("The tree.", s.DataVersionsSchema)}, (404,), path=V2_NAME),
        ("get", "/v2/releases/{name}/{path}/data_version"): Operation(
            "The data_version of one locale", tag, {200: _ok("The version.", s.DataVersionSchema)}, (404,),
            path={**V2_NAME, "path": {"type": "string", "minLength": 1,
                                      "description": "`.platforms.<p>.locales.<l>`"}}),
        ("put", "/v2/releases/{name}/read_only"): Operation(
            "Mark a release read-only or writable", tag, {200: _ok("`{\".\": <new version or scheduled change>}`",
                                                                   tree)},
            (400, 401, 403, 404, 413), body=s.V2ReadOnlySchema, auth=True, path=V2_NAME,
            example={"read_only": True, "old_data_version": 1}),
        ("put", "/v2/releases/{name}/pinnable"): Operation(
            "Pin a release for a product, channel and version", tag,
            {200: _ok("The pin's version (or the scheduled change), or why it was not set.",
                      {"oneOf": [{"type": "object", "required": ["."], "properties": {".": {}}},
                                 s.PinNotSetSchema]})},
            (400, 401, 403, 404, 413), body=s.PinnableSchema, auth=True, path=V2_NAME,
            example={"product": "Firefox", "channel": "release", "version": "80."}),
        ("put", "/v2/releases/{name}/signoff"): Operation(
            "Sign off every pending scheduled change of a release", tag, {200: _ok("Done; empty or `null` body.")},
            (400, 401, 403, 404, 413), body=s.SignoffSchema, auth=True, path=V2_NAME, example={"role": "relman"}),
        ("delete", "/v2/releases/{name}/signoff"): Operation(
            "Revoke the caller's signoffs on a release's pending changes", tag,
            {200: _ok("Done; empty or `null` body.")}, (400, 401, 403, 404), auth=True, path=V2_NAME),
        ("post", "/v2/releases/{name}/enact"): Operation(
            "Enact every pending scheduled change of a release", tag, {200: _ok("Done; `null` body.")},
            (400, 401, 403, 404), auth=True, path=V2_NAME),
        ("get", "/v2/pins/{product}/{channel}/{version}"): Operation(
            "A pin", tag, {200: _ok("The pin.", s.PinSchema)}, (404,)),
    }


def _users() -> dict:
    tag = "users"
    kind = {"permission": {"type": "string", "enum": list(permissions.KINDS)}}
    return {
        ("get", "/users"): Operation(
            "Every user with a permission", tag,
            {200: _ok("Keyed by username (paged: a slice of the users, in the same order).", s.UsersSchema,
                      headers=(TOTAL,))}, (400, 401, 403), query=LIST_PAGING, auth=True),
        ("get", "/users/{username}"): Operation(
            "A user's permissions and roles", tag, {200: _ok("The user.", s.UserSchema)}, (400, 401, 403, 404),
            auth=True),
        ("get", "/users/{username}/permissions"): Operation(
            "A user's permissions", tag, {200: _ok("Keyed by permission.", s.UserPermissionsSchema)},
            (400, 401, 403), auth=True),
        ("get", "/users/{username}/permissions/{permission}"): Operation(
            "One permission of a user", tag, {200: _ok("The permission.", s.PermissionEntrySchema)},
            (400, 401, 403, 404), path=kind, auth=True),
        ("put", "/users/{username}/permissions/{permission}"): Operation(
            "Grant a permission, or change it", tag,
            {200: _ok("Changed; the new data_version.", NEW_DATA_VERSION),
             201: _ok("Granted.", NEW_DATA_VERSION, HTML)},
            (400, 401, 403, 413), body=s.PermissionPutSchema, path=kind, auth=True,
            example={"options": json.dumps({"products": ["Firefox"]})}),
        ("post", "/users/{username}/permissions/{permission}"): Operation(
            "Change a permission", tag, {200: _ok("The new data_version.", NEW_DATA_VERSION)},
            (400, 401, 403, 404, 413), body=s.PermissionPostSchema, path=kind, auth=True,
            example={"options": json.dumps({"products": ["Firefox", "Thunderbird"]}), "data_version": 1}),
        ("delete", "/users/{username}/permissions/{permission}"): Operation(
            "Revoke a permission (and the user's roles with the last one)", tag, {200: _ok(EMPTY_BODY)},
            (400, 401, 403, 404), query=(DATA_VERSION_QUERY,), path=kind, auth=True),
        ("put", "/users/{username}/roles/{role}"): Operation(
            "Grant a role (no body)", tag,
            {200: _ok("Already held; its data_version.", NEW_DATA_VERSION, HTML),
             201: _ok("Granted.", NEW_DATA_VERSION, HTML)}, (400, 401, 403), auth=True),
        ("delete", "/users/{username}/roles/{role}"): Operation(
            "Revoke a role", tag, {200: _ok(EMPTY_BODY)}, (400, 401, 403, 404), query=(DATA_VERSION_QUERY,),
            auth=True),
        ("get", "/permissions/history"): Operation(
            "Every permission change and every permission scheduled change", tag,
            {200: _ok("Both halves, paged independently.", s.PermissionsHistorySchema)}, (400, 401, 403),
            query=HISTORY_FILTERS, auth=True),
    }


def _shutoffs() -> dict:
    tag = "emergency shutoff"
    return {
        ("get", "/emergency_shutoff"): Operation(
            "The emergency shutoffs", tag,
            {200: _ok("The shutoffs (`count`: all of them, when paged too).", s.ShutoffListSchema, headers=(TOTAL,))},
            (400,), query=LIST_PAGING),
        ("post", "/emergency_shutoff"): Operation(
            "Stop updates of a product on a channel", tag, {201: _ok("The shutoff.", s.ShutoffSchema)},
            (400, 401, 403, 413), body=s.NewShutoffSchema, auth=True,
            example={"product": "Firefox", "channel": "beta", "comment": "bad build"}),
        ("get", "/emergency_shutoff/{product}/{channel}"): Operation(
            "One shutoff", tag, {200: _ok("The shutoff.", s.ShutoffSchema, headers=("X-Data-Version",))}, (400, 404)),
        ("delete", "/emergency_shutoff/{product}/{channel}"): Operation(
            "Lift a shutoff (when no signoff is required)", tag, {200: _ok(EMPTY_BODY)}, (400, 401, 403, 404),
            query=(DATA_VERSION_QUERY,), auth=True),
    }


def _required_signoffs() -> dict:
    tag = "required signoffs"
    out: dict = {}
    for segment, row, lister, new, history, decision in (
            ("product", s.ProductRSSchema, s.ProductRSListSchema, s.NewProductRSSchema, s.ProductRSHistorySchema,
             ("product", "channel")),
            ("permissions", s.PermissionsRSSchema, s.PermissionsRSListSchema, s.NewPermissionsRSSchema,
             s.PermissionsRSHistorySchema, ("product",))):
        base = f"/required_signoffs/{segment}"
        out.update({
            ("get", base): Operation(
                f"The {segment} signoff requirements", tag,
                {200: _ok("The requirements (`count`: all of them, when paged too).", lister, headers=(TOTAL,))},
                (400,), query=tuple(_str_param(n) for n in decision) + LIST_PAGING),
            ("post", base): Operation(
                f"Create the first {segment} signoff requirement of a "
                f"{'product and channel' if segment == 'product' else 'product'}", tag,
                {201: _ok("Created.", NEW_DATA_VERSION, HTML)}, (400, 401, 403, 413), body=new, auth=True,
                example={"product": "Firefox", **({"channel": "release"} if segment == "product" else {}),
                         "role": "relman", "signoffs_required": 1}),
            ("delete", base): Operation(
                "Never succeeds: requirements are removed through scheduled changes", tag, {}, (400,)),
            ("get", f"{base}/revisions"): Operation(
                "The versions of one requirement", tag, {200: _ok("One page, newest first.", s.RSRevisionsSchema)},
                (400, 404), query=tuple(_str_param(n, required=True) for n in decision + ("role",)) + PAGING),
            ("get", f"{base}/history"): Operation(
                f"Every {segment} requirement change and scheduled change", tag,
                {200: _ok("Both halves, paged independently.", history)}, (400,),
                query=HISTORY_FILTERS + tuple(_str_param(n) for n in decision + ("role",))),
        })
    return out


def _service() -> dict:
    tag = "dockerflow"
    return {
        ("get", "/__lbheartbeat__"): Operation(
            "Load-balancer heartbeat (no dependency)", tag, {200: _ok("`OK!`", {"type": "string"}, HTML)}),
        ("get", "/__heartbeat__"): Operation(
            "Heartbeat through the database", tag,
            {200: _ok("A counter (JSON text, like the other `text/html` answers).", {"type": "integer", "minimum": 1},
                      HTML),
             502: _ok("`Can't connect to the database.`", {"type": "string"}, HTML)}),
        ("get", "/__version__"): Operation(
            "The deployed version", tag, {200: _ok("The version file.", s.VersionSchema)}),
        ("get", "/openapi.json"): Operation(
            "This document", "meta", {200: _ok("The OpenAPI document.", {"type": "object"})}, (400,)),
    }


def _explain() -> dict:
    tag = "explain"
    return {
        ("get", "/explain"): Operation(
            "How the public server answers an update URL, and why", tag,
            {200: _ok("The answer and every rule's verdict.", s.ExplanationSchema)}, (400, 401, 403),
            query=(Param("url", {"type": "string", "minLength": 1}, "An update URL (path and query).", True,
                         "/update/6/Firefox/60.0/20180501120000/WINNT_x86-msvc/de/release/default/default/default/"
                         "update.xml"),
                   _str_param("user_agent", "The client's User-Agent.")), auth=True),
        ("post", "/explain/preview"): Operation(
            "Answers before and after a proposed rule change (nothing is written)", tag,
            {200: _ok("Per URL: both answers and whether they differ.", s.PreviewSchema)}, (400, 401, 403, 413),
            body=s.PreviewRequestSchema, auth=True,
            example={"change": {"action": "update", "rule_id": 1, "rule": {"backgroundRate": 0}},
                     "urls": ["/update/6/Firefox/60.0/20180501120000/WINNT_x86-msvc/de/release/default/default/"
                              "default/update.xml"]}),
        ("get", "/explain/lint"): Operation(
            "Rules that can never decide (an earlier rule always wins)", tag,
            {200: _ok("The findings.", s.LintSchema)}, (400, 401, 403), auth=True),
    }


@dataclass(frozen=True)
class SCType:
    """One ``/scheduled_changes/<segment>`` type and its schemas."""

    segment: str
    title: str
    change: Any
    revision: Any
    create: Any = None
    update: Any = None
    filters: tuple[Param, ...] = ()
    revisions: bool = True
    example: Any = None  # an example creation body


SC_TYPES = (
    SCType("rules", "Rule", s.RuleSCSchema, s.RuleSCRevisionSchema, *s.SC_BODIES["rules"],
           (_int_param("rule_id", "Only changes of this rule.", maximum=INT32_MAX),),
           example={"change_type": "update", "when": LATER, "rule_id": 1, "data_version": 1, "priority": 100,
                    "backgroundRate": 25, "update_type": "minor", "product": "Firefox", "channel": "release",
                    "mapping": "Firefox-60.0-build1"}),
    SCType("releases", "Release", s.ReleaseSCSchema, s.ReleaseSCRevisionSchema, *s.SC_BODIES["releases"],
           (_str_param("name"),),
           example={"change_type": "update", "when": LATER, "name": "Firefox-60.0-build1", "data_version": 1,
                    "read_only": True}),
    SCType("permissions", "Permission", s.PermissionSCSchema, s.PermissionSCRevisionSchema,
           *s.SC_BODIES["permissions"],
           example={"change_type": "insert", "when": LATER, "permission": "release", "username": "bob@example.com",
                    "options": json.dumps({"products": ["Firefox"]})}),
    SCType("required_signoffs/product", "ProductRequiredSignoff", s.ProductRSSCSchema, s.ProductRSSCRevisionSchema,
           *s.SC_BODIES["required_signoffs/product"], (_str_param("product"), _str_param("channel")),
           example={"change_type": "insert", "when": LATER, "product": "Firefox", "channel": "beta",
                    "role": "relman", "signoffs_required": 1}),
    SCType("required_signoffs/permissions", "PermissionsRequiredSignoff", s.PermissionsRSSCSchema,
           s.PermissionsRSSCRevisionSchema, *s.SC_BODIES["required_signoffs/permissions"],
           (_str_param("product"), _str_param("channel", "Accepted and ignored.")),
           example={"change_type": "insert", "when": LATER, "product": "Firefox", "role": "relman",
                    "signoffs_required": 1}),
    SCType("emergency_shutoff", "EmergencyShutoff", s.ShutoffSCSchema, s.ShutoffSCRevisionSchema,
           *s.SC_BODIES["emergency_shutoff"], revisions=False,
           example={"change_type": "delete", "when": LATER, "product": "Firefox", "channel": "nightly",
                    "data_version": 1}),
    SCType("pinnable_releases", "Pin", s.PinSCSchema, s.PinSCRevisionSchema, revisions=False),
)


def _creatable(resource: Any) -> bool:
    """Scheduled-change resources of a type that cannot be created or edited here (v1 releases,
    pins) keep ``POST``/``DELETE`` responders that always answer 405: no operation."""
    kind = getattr(resource, "kind", None)
    return getattr(kind, "creatable", True)


def _scheduled_changes() -> dict:
    tag = "scheduled changes"
    out: dict = {}
    for t in SC_TYPES:
        base = f"/scheduled_changes/{t.segment}"
        one = f"{base}/{{sc_id}}"
        writable = dict(served=_creatable, auth=True)
        out.update({
            ("get", base): Operation(
                f"List the pending {t.segment} scheduled changes (all with `all`)", tag,
                {200: _ok("The scheduled changes, by id.", s.sc_list_schema(t.title, t.change), headers=(TOTAL,))},
                (400,), query=(_flag_param("all", "Completed changes too."),) + t.filters + LIST_PAGING),
            ("post", base): Operation(
                f"Schedule a change of {t.segment}", tag,
                {200: _ok("The new scheduled change and its signoffs so far.", s.SCCreatedSchema)},
                (400, 401, 403, 413), body=t.create, example=t.example,
                query=(_str_param("change_type", "Used when the body is empty."),) if t.segment == "rules" else (),
                **writable),
            ("get", one): Operation(
                "One scheduled change", tag, {200: _ok("The scheduled change.", s.sc_one_schema(t.title, t.change))},
                (404,), path=SC_ID),
            ("post", one): Operation(
                "Change a pending scheduled change", tag,
                {200: _ok("Its new sc_data_version and signoffs.", s.SCUpdatedSchema)}, (400, 401, 403, 404, 413),
                body=t.update, path=SC_ID, example={"sc_data_version": 1, "when": LATER}, **writable),
            ("delete", one): Operation(
                "Cancel a pending scheduled change", tag, {200: _ok("`{}`", s.EmptySchema)}, (400, 401, 403, 404),
                query=(_int_param("data_version", "The scheduled change's sc_data_version.", required=True,
                                  maximum=INT32_MAX),), path=SC_ID, **writable),
            ("post", f"{one}/enact"): Operation(
                "Enact a scheduled change now", tag, {200: _ok("`{}`", s.EmptySchema)}, (400, 401, 403, 404),
                path=SC_ID, auth=True),
            ("get", f"{one}/enactment"): Operation(
                "Who enacted a scheduled change, and when (404 unless it was enacted)", tag,
                {200: _ok("The enactment.", s.SCEnactmentSchema)}, (400, 404), path=SC_ID),
            ("post", f"{one}/signoffs"): Operation(
                "Sign off a scheduled change", tag, {200: _ok("`{}`", s.EmptySchema)}, (400, 401, 403, 404, 413),
                body=s.SignoffSchema, path=SC_ID, example={"role": "relman"}, **writable),
            ("delete", f"{one}/signoffs"): Operation(
                "Revoke a signoff (the caller's by default)", tag,
                {200: _ok("`{}`, or `{\"error\": …}` when there was nothing to revoke.", s.EmptySchema)},
                (400, 401, 403, 404), query=(_str_param("username", "Whose signoff (default: the caller's)."),),
                path=SC_ID, **writable),
        })
        if t.revisions:
            out.update({
                ("get", f"{one}/revisions"): Operation(
                    "The versions of a scheduled change, newest first", tag,
                    {200: _ok("One page.", s.sc_revisions_schema(t.title, t.revision))}, (400, 404), query=PAGING,
                    path=SC_ID),
                ("post", f"{one}/revisions"): Operation(
                    "Revert a scheduled change to one of its versions", tag,
                    {200: _ok("`Success`", {"type": "string"}, HTML)}, (400, 401, 403, 404, 413), body=s.RevertSchema,
                    path=SC_ID, example={"change_id": 1}, **writable),
            })
    out[("get", "/scheduled_change/diff/release/{sc_id}")] = Operation(
        "What a v1 release scheduled change would change", tag,
        {200: _ok("A unified diff of the pretty-printed blobs (current vs. scheduled).", {"type": "string"},
                  "text/plain")}, (400, 404), path=SC_ID)
    return out


def catalogue() -> dict[tuple[str, str], Operation]:
    """Every operation this module can describe, keyed by (method, falcon path template). Entries
    for routes the app does not serve (yet) are left out of the document."""
    out: dict = {}
    for part in (_rules, _releases, _releases_v2, _users, _shutoffs, _required_signoffs, _service,
                 _scheduled_changes, _explain):
        out.update(part())
    for (method, path), op in list(out.items()):
        if method == "get":
            out.setdefault(("head", path), op)
    return out


# --- the route table ---------------------------------------------------------------------------------------
def app_routes(ctx: AdminContext) -> list[tuple[str, Any]]:
    """``(path template, resource)`` of every family the admin app serves."""
    from .app import FAMILIES  # read at call time: the tuple is the app's list of families

    found = []
    for name in FAMILIES:
        module = importlib.import_module(f"{__package__}.{name}")
        found.extend(module.routes(ctx))
    return found


def responder_methods(resource: Any) -> list[str]:
    """The methods a resource has a responder for (``head`` where it answers ``get``)."""
    methods = [m for m in METHODS if m != "head" and callable(getattr(resource, f"on_{m}", None))]
    if "get" in methods and callable(getattr(resource, "on_head", None)):
        methods.insert(1, "head")
    return methods


def served_operations(ctx: AdminContext) -> list[tuple[str, str, Any, Operation | None]]:
    """``(method, path, resource, operation or None when the catalogue lacks it)`` for every
    responder of the app, in route order."""
    known = catalogue()
    out = []
    for path, resource in app_routes(ctx):
        for method in responder_methods(resource):
            op = known.get((method, path))
            if op is not None and not op.served(resource):
                continue
            out.append((method, path, resource, op))
    return out


# --- building the document ---------------------------------------------------------------------------------
def _content(schema: BodySchema, content_type: str) -> dict:
    return {content_type: {"schema": copy.deepcopy(schema) if isinstance(schema, dict) else schema}}


def _path_names(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def _operation(method: str, path: str, op: Operation | None) -> dict:
    if op is None:
        return {"summary": "Served, but not described in app/admin/openapi.py", "x-undocumented": True,
                "parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                               for n in _path_names(path)],
                "responses": {"default": {"description": "Not documented."}}}
    head = method == "head"
    parameters = []
    for name in _path_names(path):
        schema = dict(op.path.get(name, {"type": "string", "minLength": 1}))
        description = schema.pop("description", "")
        example = schema.pop("example", PATH_EXAMPLES.get(name))
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema,
                           **({"description": description} if description else {}),
                           **({"example": example} if example is not None else {})})
    for param in op.query:
        parameters.append({"name": param.name, "in": "query", "required": param.required, "schema": param.schema,
                           **({"description": param.description} if param.description else {}),
                           **({"example": param.example} if param.example is not None else {})})
    responses: dict = {}
    for status, answer in op.answers.items():
        response: dict = {"description": answer.description}
        if answer.schema is not None and not head:
            response["content"] = _content(answer.schema, answer.content_type)
            for content_type, schema in answer.also.items():
                response["content"].update(_content(schema, content_type))
        if answer.headers:
            response["headers"] = {h: {"description": HEADERS[h][0], "schema": dict(HEADERS[h][1])}
                                   for h in answer.headers}
        responses[str(status)] = response
    for status in op.errors:
        response = {"description": ERROR_TEXTS[status]}
        if not head:
            response["content"] = {JSON: {"schema": s.ProblemSchema}, PROBLEM_JSON: {"schema": s.ProblemSchema}}
        responses[str(status)] = response
    out: dict = {"summary": ("(HEAD: as GET, without a body) " if head else "") + op.summary, "tags": [op.tag],
                 "operationId": _operation_id(method, path), "parameters": parameters, "responses": responses}
    if op.description:
        out["description"] = op.description
    if op.body is not None and not head:
        media: dict = {"schema": op.body}
        if op.example is not None:
            media["example"] = op.example
        out["requestBody"] = {"required": True, "content": {JSON: media}}
    out["security"] = [{"bearerAuth": []}] if op.auth else []
    return out


def _operation_id(method: str, path: str) -> str:
    words = [w.strip("{}") for w in path.replace("__", "").split("/") if w]
    return method + "_" + "_".join(w.replace(".", "_") for w in words) if words else method


DESCRIPTION = """\
The admin API of the Balrog update server (a re-implementation of Mozilla Balrog v3.121's admin
app): rules, releases (v1 and v2), pins, users and permissions, emergency shutoffs, required
signoffs, scheduled changes and their history.

Writes need `Authorization: Bearer <JWT>`; so do the user and permission reads. Errors are
RFC 7807-style problems: `application/problem+json` from request validation and routing,
`application/json` from the endpoints themselves. Many v1 writes answer JSON text labelled
`text/html; charset=utf-8`, as the reference does. Every response carries
`X-Frame-Options`, `X-Content-Type-Options`, `Strict-Transport-Security`,
`Content-Security-Policy` and the CORS headers; `OPTIONS` answers 200 on every path.
Request bodies may carry members not listed here: they are ignored.
"""


def build_document(ctx: AdminContext) -> dict:
    """The OpenAPI document of the app ``ctx`` serves."""
    spec = APISpec(title=TITLE, version=_version(ctx), openapi_version=OPENAPI_VERSION, plugins=[Plugin()],
                   info={"description": DESCRIPTION})
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    by_path: dict[str, dict] = {}
    for method, path, _, op in served_operations(ctx):
        by_path.setdefault(path, {})[method] = _operation(method, path, op)
    for path, operations in by_path.items():
        spec.path(path=path, operations=operations)
    # The document is served as JSON: round-trip it so what is returned is what clients get.
    return json.loads(json.dumps(spec.to_dict()))


def _version(ctx: AdminContext) -> str:
    version = (ctx.version or {}).get("version")
    return str(version) if version else "unknown"


class Document(Resource):
    """``GET /openapi.json``: built on first use, then kept (the route table does not change)."""

    def __init__(self, ctx: AdminContext):
        super().__init__(ctx)
        self._lock = threading.Lock()
        self._text: str | None = None

    def on_get(self, req, resp):
        check_query(req)
        with self._lock:
            if self._text is None:
                self._text = json.dumps(build_document(self.ctx))
        resp.content_type = JSON
        resp.text = self._text


def routes(ctx: AdminContext) -> list:
    return [("/openapi.json", Document(ctx))]


__all__ = ["build_document", "catalogue", "served_operations", "responder_methods", "app_routes", "routes"]
