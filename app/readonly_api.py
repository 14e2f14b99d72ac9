"""Read-only ``/api/v1`` views of the public app (public-api.md §6).

These views read storage directly: they are not on the update hot path, so
they favour being exactly right over being cached. What they reproduce of the
reference (Balrog 3.121, connexion on Flask, SQLite):

* strict query validation: undeclared parameters → 400 "Extra query
  parameter(s) … not in spec"; declared ones are checked the way connexion
  and jsonschema do, with the same error text (:class:`Param`);
* two JSON styles: Flask's ``jsonify`` ("compact", sorted keys, trailing
  newline) for lists and ``json.dumps`` ("spaced") for single objects;
* problem+json errors (2-space indent, sorted keys, trailing newline),
  sometimes with an ``exception`` member;
* anything that the reference's router would not match (empty or
  non-integer segments) falls through to the app-wide 404 text.
"""
from __future__ import annotations

import json
import pprint
import re
from dataclasses import dataclass
from textwrap import indent
from typing import Any, Callable, Iterable, NoReturn

import falcon

from balrog_engine.query import QueryError, parse_query_string, validate_params
from balrog_engine.responses import HTML_TYPE, JSON_TYPE, PROBLEM_TYPE, Response
from balrog_engine.storage import RULE_COLUMNS

from .routing import method_guard, not_found_sink, write

# --- JSON styles ---------------------------------------------------------------------------


def compact_json(obj: Any) -> Response:
    """Flask ``jsonify``: no spaces, sorted keys, ASCII only, trailing newline."""
    body = json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n"
    return Response(200, JSON_TYPE, body.encode())


def spaced_json(obj: Any, data_version: int | None = None, sort_keys: bool = False,
                pretty: bool = False) -> Response:
    """Plain ``json.dumps`` (``", "``/``": "``, no trailing newline); ``pretty`` is the
    reference's 4-space indent. ``data_version`` becomes the ``X-Data-Version`` header."""
    body = json.dumps(obj, sort_keys=sort_keys, indent=4 if pretty else None)
    headers = [] if data_version is None else [("X-Data-Version", str(data_version))]
    return Response(200, JSON_TYPE, body.encode(), headers)


# --- problems --------------------------------------------------------------------------------


class ApiProblem(Exception):
    """A problem+json answer; raised anywhere in a view, written by :class:`ApiView`."""

    def __init__(self, status: int, title: str | None, detail: str, exception: str | None = None):
        super().__init__(detail)
        self.status, self.title, self.detail, self.exception = status, title, detail, exception

    def response(self) -> Response:
        document: dict[str, Any] = {"detail": self.detail, "status": self.status, "title": self.title,
                                    "type": "about:blank"}
        if self.exception is not None:
            document["exception"] = self.exception
        body = json.dumps(document, indent=2, sort_keys=True) + "\n"
        return Response(self.status, PROBLEM_TYPE, body.encode())


def not_found(detail: str, exception: str | None = None) -> ApiProblem:
    return ApiProblem(404, "Not Found", detail, exception)


def bad_request(detail: str) -> ApiProblem:
    return ApiProblem(400, "Bad Request", detail)


# --- parameter validation -------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A declared (swagger 2.0) parameter, validated as connexion + jsonschema would.

    The reference prints the whole parameter definition inside its error text, so the
    fields below are kept in the reference's key order (see :meth:`schema`).
    """

    name: str
    location: str  # "query" or "path"
    description: str
    type: str = "string"
    format: str | None = None
    max_length: int | None = None
    minimum: int | None = None
    nullable: bool = False

    def schema(self) -> dict:
        schema: dict[str, Any] = {"name": self.name, "in": self.location, "description": self.description,
                                  "type": self.type}
        for key, value in (("format", self.format), ("maxLength", self.max_length), ("minimum", self.minimum)):
            if value is not None:
                schema[key] = value
        if self.nullable:
            schema["x-nullable"] = True
        return schema

    def check(self, raw: str) -> None:
        """Raise the reference's 400 for a value that does not fit the declaration."""
        if self.nullable and raw.strip() in ("null", "None"):
            return  # connexion lets "null" through; the view then deals with it
        value: Any = raw
        if self.type == "integer":
            try:
                value = int(raw)
            except ValueError:
                raise bad_request(
                    f"Wrong type, expected 'integer' for {self.location} parameter '{self.name}'") from None
        # jsonschema walks the keywords in definition order and reports the first failure.
        if self.format == "ascii" and not raw.isascii():
            self._fail("format", f"{value!r} is not a 'ascii'", value)
        if self.max_length is not None and len(value) > self.max_length:
            self._fail("maxLength", f"{value!r} is too long", value)
        if self.minimum is not None and value < self.minimum:
            self._fail("minimum", f"{value!r} is less than the minimum of {self.minimum!r}", value)

    def _fail(self, keyword: str, message: str, instance: Any) -> NoReturn:
        """jsonschema's ``str(ValidationError)``, which connexion sends as the detail."""
        schema = indent(pprint.pformat(self.schema(), width=72, sort_dicts=False), "    ").lstrip()
        shown = indent(pprint.pformat(instance, width=72, sort_dicts=False), "    ").lstrip()
        raise bad_request(f"{message}\n\nFailed validating {keyword!r} in schema:\n    {schema}\n\n"
                          f"On instance:\n    {shown}")


# Definitions only show in error texts. Those of ``page`` and ``release`` are the reference's
# (recorded); the others are not in any recording: their constraints follow the spec and
# their descriptions are ours.
PRODUCT_QUERY = Param("product", "query", "product name")
PRETTY_QUERY = Param("pretty", "query", "pretty-print the JSON output")
NAME_PREFIX_QUERY = Param("name_prefix", "query", "release name prefix")
NAMES_ONLY_QUERY = Param("names_only", "query", "return only release names")
PAGE_QUERY = Param("page", "query", "Variable value used pagination of response revisions.", type="integer",
                   minimum=1, nullable=True)
LIMIT_QUERY = Param("limit", "query", "Variable value used to limit the number of revisions returned.",
                    type="integer", minimum=1, nullable=True)
RELEASE_PATH = Param("release", "path", "release name", format="ascii", max_length=100)


def read_query(req: falcon.Request, declared: Iterable[Param]) -> dict[str, str]:
    """The query string (last value wins), validated against the declared parameters.

    Undeclared names are refused before any value is looked at, as connexion does.
    """
    declared = tuple(declared)
    params = parse_query_string(req.env.get("QUERY_STRING", ""))
    try:
        validate_params(params, frozenset(p.name for p in declared))
    except QueryError as exc:
        raise ApiProblem(400, exc.title, exc.detail) from None
    for param in declared:
        if param.name in params:
            param.check(params[param.name])
    return params


# --- the falcon plumbing ----------------------------------------------------------------------


class ApiView:
    """Base of every view: GET/HEAD/OPTIONS, 405s, validation and problem answers.

    Subclasses declare ``query_params`` and ``path_params`` and implement
    :meth:`answer`, which returns a :class:`Response` or raises :class:`ApiProblem`.
    """

    query_params: tuple[Param, ...] = ()
    path_params: tuple[Param, ...] = ()

    def __init__(self, engine):
        self.engine = engine

    @property
    def storage(self):
        return self.engine.storage

    def on_get(self, req: falcon.Request, resp: falcon.Response, **fields: str) -> None:
        if not self._matches(fields):
            not_found_sink(req, resp)
            return
        try:
            params = read_query(req, self.query_params)
            for param in self.path_params:
                param.check(fields[param.name])
            response = self.answer(params, **fields)
        except ApiProblem as problem:
            response = problem.response()
        write(resp, response)

    on_head = on_get

    def on_other_method(self, req: falcon.Request, resp: falcon.Response, **fields: str) -> None:
        """OPTIONS and the methods we refuse (405), but only on paths the reference routes."""
        if not self._matches(fields):
            not_found_sink(req, resp)
        else:
            method_guard(req, resp)

    def _matches(self, fields: dict[str, str]) -> bool:
        # The reference's router needs a non-empty value for every segment; falcon's does not.
        return all(fields.values()) and self.routable(fields)

    def routable(self, fields: dict[str, str]) -> bool:
        """False when the reference's URL converters would not have matched this path."""
        return True

    def answer(self, params: dict[str, str], **fields: str) -> Response:
        raise NotImplementedError


# Falcon answers a method only if the resource has an ``on_<method>`` responder.
for _method in falcon.constants.COMBINED_METHODS:
    if _method not in ("GET", "HEAD"):
        setattr(ApiView, f"on_{_method.lower()}", ApiView.on_other_method)


# --- rules (§6.1) ------------------------------------------------------------------------------

ALIAS_PATTERN = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
# What SQLite's NUMERIC affinity turns into a number when compared with the integer
# rule_id column (the reference binds the raw path text): "01", " 1", "1.0", "1e0", …
_SQLITE_NUMBER = re.compile(r"[ \t\n\v\f\r]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t\n\v\f\r]*")
_SQLITE_INTEGER = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+[ \t\n\v\f\r]*")


def rule_id_from_text(text: str) -> int | None:
    """The rule_id a non-alias path value selects in the reference, or None if none can match."""
    if _SQLITE_INTEGER.fullmatch(text):
        return int(text)
    if _SQLITE_NUMBER.fullmatch(text):
        number = float(text)
        return int(number) if number.is_integer() else None
    return None


def null_first(value: Any) -> tuple:
    """Sort key putting NULLs first, as SQLite does for ``ORDER BY … ASC``."""
    return (value is not None, value)


def ordered_rules(rules: list[dict]) -> list[dict]:
    """The reference's ``ORDER BY priority, version, mapping`` (rule_id breaks ties)."""
    return sorted(rules, key=lambda r: (null_first(r["priority"]), null_first(r["version"]),
                                        null_first(r["mapping"])))


def find_rule(rules: list[dict], id_or_alias: str) -> dict | None:
    """Alias-looking values are aliases, anything else is an id (never both)."""
    if ALIAS_PATTERN.fullmatch(id_or_alias):
        return next((r for r in rules if r["alias"] == id_or_alias), None)
    rule_id = rule_id_from_text(id_or_alias)
    return next((r for r in rules if rule_id is not None and r["rule_id"] == rule_id), None)


def rule_row(rule: dict, extra: Iterable[str] = ()) -> dict:
    """A rule in column order, with the booleans the JSON must show."""
    row = {column: rule.get(column) for column in (*RULE_COLUMNS, *extra)}
    for column in ("jaws", "mig64"):
        if row[column] is not None:
            row[column] = bool(row[column])
    return row


class RuleList(ApiView):
    """``GET /api/v1/rules[?product=P]``; an empty product means no filter."""

    query_params = (PRODUCT_QUERY,)

    def answer(self, params):
        rules = self.storage.rules()
        if params.get("product"):
            rules = [r for r in rules if r["product"] == params["product"]]
        return compact_json({"count": len(rules), "rules": [rule_row(r) for r in ordered_rules(rules)]})


class SingleRule(ApiView):
    """``GET /api/v1/rules/{id_or_alias}``."""

    def answer(self, params, id_or_alias):
        rule = find_rule(self.storage.rules(), id_or_alias)
        if rule is None:
            raise not_found("Requested rule wasn't found", exception="Requested rule does not exist")
        return spaced_json(rule_row(rule), data_version=rule["data_version"])


HISTORY_EXTRA = ("change_id", "changed_by", "timestamp")


class RuleRevisions(ApiView):
    """``GET /api/v1/rules/{rule_id}/revisions[?page=P&limit=L]``: the rule's history, newest
    first. Creation placeholders and tombstones (no data_version) are not revisions."""

    query_params = (PAGE_QUERY, LIMIT_QUERY)

    def routable(self, fields):
        return re.fullmatch(r"[0-9]+", fields["id_or_alias"]) is not None  # Flask's <int:rule_id>

    def answer(self, params, id_or_alias):
        rule_id = int(id_or_alias)
        if not any(r["rule_id"] == rule_id for r in self.storage.rules()):
            return Response(404, HTML_TYPE, b"Requested rule does not exist")
        page, limit = self._paging(params)
        history = [row for row in self.storage.rule_history(rule_id) if row.get("data_version") is not None]
        history.sort(key=lambda row: -(row.get("timestamp") or 0))
        start = limit * (page - 1)
        rows = [rule_row(row, HISTORY_EXTRA) for row in history[start:start + limit]]
        return compact_json({"count": len(history), "rules": rows})

    @staticmethod
    def _paging(params: dict[str, str]) -> tuple[int, int]:
        """The reference re-parses the raw values with ``int()`` after validation, so a
        "null" that validation let through is refused here."""
        try:
            page = int(params.get("page", 1))
            limit = int(params.get("limit", 10))
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return page, limit


# --- releases (§6.2) ----------------------------------------------------------------------------


def like_prefix(prefix: str) -> Callable[[str], bool]:
    """``name LIKE '<prefix>%'`` as the reference's SQLite runs it: ``%`` and ``_`` are
    wildcards and ASCII letters compare case-insensitively."""
    parts = []
    for char in prefix:
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        elif char.isascii() and char.isalpha():
            parts.append(f"[{char.lower()}{char.upper()}]")
        else:
            parts.append(re.escape(char))
    pattern = re.compile("".join(parts), re.DOTALL)
    return lambda name: pattern.match(name) is not None


def rule_references(rules: list[dict]) -> dict[str, list[dict]]:
    """Release name -> the rules that map or fall back to it, in rule_id order."""
    refs: dict[str, list[dict]] = {}
    for rule in sorted(rules, key=lambda r: r["rule_id"]):
        for name in {rule["mapping"], rule["fallbackMapping"]} - {None}:
            refs.setdefault(name, []).append(rule)
    return refs


def release_item(summary: dict, refs: list[dict]) -> dict:
    return {
        "name": summary["name"],
        "product": summary["product"],
        "data_version": summary["data_version"],
        "read_only": bool(summary["read_only"]),
        "rule_ids": [r["rule_id"] for r in refs],
        "rule_info": {str(r["rule_id"]): {"product": r["product"], "channel": r["channel"]} for r in refs},
    }


class ReleaseList(ApiView):
    """``GET /api/v1/releases[?product=P][&name_prefix=X][&names_only=1]`` — summaries only,
    never blobs. Listed in storage order; ``names_only`` lists names sorted."""

    query_params = (PRODUCT_QUERY, NAME_PREFIX_QUERY, NAMES_ONLY_QUERY)

    def answer(self, params):
        summaries = self.storage.release_summaries()
        if params.get("product"):
            summaries = [s for s in summaries if s["product"] == params["product"]]
        if params.get("name_prefix"):
            matches = like_prefix(params["name_prefix"])
            summaries = [s for s in summaries if matches(s["name"])]
        if params.get("names_only"):
            return compact_json({"names": sorted(s["name"] for s in summaries)})
        refs = rule_references(self.storage.rules())
        return compact_json({"releases": [release_item(s, refs.get(s["name"], [])) for s in summaries]})


class SingleRelease(ApiView):
    """``GET /api/v1/releases/{release}[?pretty=1]``: the blob with sorted keys."""

    query_params = (PRETTY_QUERY,)
    path_params = (RELEASE_PATH,)

    def answer(self, params, release):
        stored = self.storage.releases([release]).get(release)
        if stored is None:
            raise not_found(f"Release name: {release} not found")
        return spaced_json(stored.data, data_version=stored.data_version, sort_keys=True,
                           pretty=bool(params.get("pretty")))


class ReleaseLocale(ApiView):
    """``GET /api/v1/releases/{release}/builds/{platform}/{locale}``: one locale section as
    stored (no alias resolution). Every miss gives the same message, a JSON list as text,
    because the reference formats a ``KeyError``'s args."""

    path_params = (RELEASE_PATH,)

    def answer(self, params, release, platform, locale):
        stored = self.storage.releases([release]).get(release)
        section = MISSING
        if stored is not None:
            section = _lookup(stored.data, ("platforms", platform, "locales", locale))
        if section is MISSING:
            message = f"Couldn't find locale identified by: {release}, {platform}, {locale}"
            raise not_found(json.dumps([message]))
        return spaced_json(section, data_version=stored.data_version)


MISSING = object()


def _lookup(data: Any, keys: Iterable[str]) -> Any:
    """``data[k1][k2]…`` or :data:`MISSING` when a level is missing or not an object (the
    reference crashes with a 500 on the latter; a 404 is the kinder answer). A stored
    ``null`` section is found, and served as ``null``, like the reference does."""
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return MISSING
        data = data[key]
    return data


# --- pins (§6.3) and emergency shutoffs (§6.4) -----------------------------------------------


class Pin(ApiView):
    """``GET /api/v1/pins/{product}/{channel}/{version}`` — exact match, no -cck- folding."""

    query_params = (PRETTY_QUERY,)

    def answer(self, params, product, channel, version):
        for pin in self.storage.pins():
            if (pin["product"], pin["channel"], pin["version"]) == (product, channel, version):
                document = {key: pin[key] for key in ("product", "channel", "version", "mapping", "data_version")}
                return spaced_json(document, data_version=pin["data_version"], sort_keys=True,
                                   pretty=bool(params.get("pretty")))
        raise not_found(f"Pin for Product={product!r}, Channel={channel!r}, Version={version!r} not found")


def shutoff_row(row: dict) -> dict:
    return {"product": row["product"], "channel": row["channel"], "comment": row.get("comment"),
            "data_version": row["data_version"]}


class ShutoffList(ApiView):
    """``GET /api/v1/emergency_shutoff``; the reference declares ``product`` but ignores it."""

    query_params = (PRODUCT_QUERY,)

    def answer(self, params):
        shutoffs = [shutoff_row(row) for row in self.storage.shutoffs()]
        return compact_json({"count": len(shutoffs), "shutoffs": shutoffs})


class Shutoff(ApiView):
    """``GET /api/v1/emergency_shutoff/{product}/{channel}``."""

    def answer(self, params, product, channel):
        for row in self.storage.shutoffs():
            if row["product"] == product and row["channel"] == channel:
                return spaced_json(shutoff_row(row), data_version=row["data_version"])
        raise not_found("Requested emergency shutoff wasn't found", exception="Requested shutoff does not exist")


# --- registration ----------------------------------------------------------------------------

ROUTES: tuple[tuple[str, type[ApiView]], ...] = (
    ("/api/v1/rules", RuleList),
    # One field name per level: falcon refuses '{id_or_alias}' next to '{rule_id}'.
    ("/api/v1/rules/{id_or_alias}", SingleRule),
    ("/api/v1/rules/{id_or_alias}/revisions", RuleRevisions),
    ("/api/v1/releases", ReleaseList),
    ("/api/v1/releases/{release}", SingleRelease),
    ("/api/v1/releases/{release}/builds/{platform}/{locale}", ReleaseLocale),
    ("/api/v1/pins/{product}/{channel}/{version}", Pin),
    ("/api/v1/emergency_shutoff", ShutoffList),
    ("/api/v1/emergency_shutoff/{product}/{channel}", Shutoff),
)


def register(app: falcon.App, engine) -> None:
    for template, view in ROUTES:
        app.add_route(template, view(engine))
