"""Releases, v1 API (admin-api.md §2): the single-row ``releases`` table, one JSON blob per
release.

Endpoints: the list (``GET /releases``, with rule and signoff information computed in one
pass over the rules and the requirements), whole-blob writes (``POST /releases``, ``PUT
/releases/<name>``), the "partial release" form (``POST /releases/<name>`` and ``PUT
/releases/<name>/builds/<platform>/<locale>``, §2.2, with ``copyTo`` and platform aliases),
delete, the read-only flag (§2.4), the distinct values of a column and one locale.

Every write validates the complete resulting blob against its type and the download-domain
allowlist, refuses read-only releases (403 on v1), checks permissions and required signoffs,
and runs in one storage session: any refusal rolls back everything the request wrote (e.g.
a ``copyTo`` release created before a later failure, §0.5).

A direct write of a release with a pending scheduled change is merged into that change, or
refused with ``UpdateMergeError`` when the change also changes the column (:mod:`.sc_merge`;
release scheduled changes themselves: :mod:`.scheduled_changes`).

Stale writes (§2.3): an update naming an old ``data_version`` is handed to the storage with
``merge=True`` and the blob type's conflict rule; the storage merges it three-way against the
blob of that version (release history) and refuses true conflicts. The merged blob is
validated again: a merge that yields an invalid blob is refused like a conflict.
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Iterable, Mapping

from balrog_engine import BlobValidationError, StaleVersion, flatten_errors, release_conflict_rule
from balrog_engine.allowlist import Allowlist

from . import permissions, sc_merge, schemas, signoffs
from .app import AdminContext, Resource, send_empty, send_html_json, send_json
from .problems import PROBLEM_JSON, Problem, bad_request, invalid, not_found, outdated
from .requests import PAGING, check_query, json_body, list_page, required_query_int

TABLE = "releases"

#: App-release schema versions: the reference's write-time schemas require ``hashFunction``
#: (blob-types.md §2.1) while the blob-type plugin accepts its absence when the blob has no
#: patches (release stubs). Writes through the admin API follow the reference.
HASH_FUNCTION_REQUIRED = frozenset(range(1, 10))

#: Columns of ``GET /releases/columns/<column>`` (the keys of the reference's list rows).
LIST_COLUMNS = ("name", "product", "data_version", "read_only")

INVALID_BLOB = "Invalid blob! See 'errors' for details."
FORBIDDEN_DOMAIN = "Blob contains forbidden domain(s)"
STALE = "Failed to update row, old_data_version doesn't match current data_version"


# --- refusals the views turn into their own texts -------------------------------------------------
class BlobRefused(ValueError):
    """The resulting blob cannot be stored: ``str(e)`` is the reference's message, ``errors``
    its ``exception`` list."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors if errors is not None else [message]


class ReadOnly(Exception):
    def __init__(self, name: str):
        self.message = f"Release '{name}' is read only"
        super().__init__(self.message)


class Outdated(Exception):
    """A stale data_version that could not be merged."""


# --- request reading (the validation layer: problem+json 400s, before authentication) ------------
def _type_error(name: str, value: Any, expected: str) -> Problem:
    return invalid(f"{name}: {value!r} is not of type '{expected}'")


def _body(req, ctx: AdminContext, required: Iterable[str], strings: Iterable[str] = (),
          integers: Iterable[str] = ()) -> dict:
    body = json_body(req)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise invalid(f"{body!r} is not of type 'object'")
    for name in required:
        if name not in body:
            raise invalid(f"'{name}' is a required property")
    for name in strings:
        if name in body and not isinstance(body[name], str):
            raise _type_error(name, body[name], "string")
    for name in integers:
        value = body.get(name)
        if name in body and (isinstance(value, bool) or not isinstance(value, int)):
            raise _type_error(name, value, "integer")
    return body


def _json_string(body: Mapping[str, Any], name: str) -> Any:
    """A field holding JSON text (``blob``, ``data``, ``copyTo``, ``alias``), parsed."""
    text = body[name]
    try:
        return json.loads(text)
    except ValueError:
        raise invalid(f"{name}: {text!r} is not a 'JSONStringField'") from None


def _json_object_string(body: Mapping[str, Any], name: str) -> dict:
    value = _json_string(body, name)
    if not isinstance(value, dict):
        raise invalid(f"{name}: {body[name]!r} is not a JSON object")
    return value


def _name_list(body: Mapping[str, Any], name: str) -> list[str]:
    if body.get(name) in (None, ""):
        return []
    if not isinstance(body[name], str):
        raise _type_error(name, body[name], "string")
    value = _json_string(body, name)
    if value is None:  # release automation sends the JSON text "null" for "no aliases"
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise invalid(f"{name}: {body[name]!r} is not a JSON list of names")
    return value


def _optional_string(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _type_error(name, value, "string")
    return value or None


def _schema_version(value: Any) -> Any:
    """``schema_version`` as a form field: an integer (numeric strings accepted)."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise invalid(f"schema_version: {value!r} is not of type 'integer'") from None
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _type_error("schema_version", value, "integer")
    return value


# --- blob checks -------------------------------------------------------------------------------------
def _download_urls(value: Any) -> Iterable[str]:
    """Every download URL of a blob: values of ``fileUrl`` keys and every string under
    ``fileUrls`` (app releases, GMP, system add-ons, Guardian)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "fileUrl" and isinstance(item, str):
                yield item
            elif key == "fileUrls":
                yield from _strings(item)
            else:
                yield from _download_urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from _download_urls(item)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def validate_blob(ctx: AdminContext, blob: Any, product: str | None) -> type:
    """Validate a whole blob for a release of ``product``; returns its blob type. Raises
    :class:`BlobRefused` with the reference's messages."""
    if not isinstance(blob, dict):
        raise BlobRefused("blob is not a JSON object")
    if "schema_version" not in blob:
        raise BlobRefused("schema_version is not set")
    schema_version = blob["schema_version"]
    blob_type = None if isinstance(schema_version, bool) else ctx.registry.blob_type(schema_version)
    if blob_type is None:
        raise BlobRefused("schema_version is unknown")
    errors: list[str] = []
    try:
        blob_type.validate(blob)
    except BlobValidationError as error:
        errors = [f"{path}: {message}" for path, message in flatten_errors(error.errors)] or [str(error)]
    if schema_version in HASH_FUNCTION_REQUIRED and "hashFunction" not in blob:
        errors.append("'hashFunction' is a required property")
    if errors:
        raise BlobRefused(INVALID_BLOB, errors)
    allowlist = Allowlist(ctx.allowlisted_domains)
    if any(allowlist.is_forbidden(url, product) for url in _download_urls(blob)):
        raise BlobRefused(FORBIDDEN_DOMAIN)
    return blob_type


def check_name(name: str, blob: Mapping[str, Any]) -> None:
    """A release blob's ``name`` must be the release's."""
    if blob.get("name") != name:
        raise BlobRefused(f"name in database ({name}) does not match name in blob ({blob.get('name')})")


# --- the write operations (shared by every endpoint) ----------------------------------------------
def insert_release(ctx: AdminContext, s, grants, user: str, name: str, product: str | None, blob: Any) -> int:
    """Create a release (``release``/``create``): validation, name check, permission."""
    validate_blob(ctx, blob, product)
    check_name(name, blob)
    permissions.require(grants, "release", "create", [product],
                        f"{user} is not allowed to create releases for product {{product}}")
    s.insert(TABLE, {"name": name, "product": product, "read_only": False, "data": blob})
    return 1


def update_release(ctx: AdminContext, s, grants, user: str, current: Mapping[str, Any], blob: Any,
                   product: str | None, old_data_version: int, method: str = "PUT") -> int:
    """Replace the blob (and product) of an existing release; returns the new data_version.
    Raises :class:`ReadOnly`, :class:`BlobRefused`, :class:`Outdated`, 403 and Signoff Required."""
    name = current["name"]
    if current["read_only"]:
        raise ReadOnly(name)
    blob_type = validate_blob(ctx, blob, product)
    check_name(name, blob)
    permissions.require(grants, "release", "modify", dict.fromkeys([current["product"], product]),
                        f"{user} is not allowed to modify releases for product {{product}}")
    signoffs.verify(signoffs.for_release(s, name), {})
    try:
        new_version = s.update(TABLE, {"name": name}, {"data": blob, "product": product}, old_data_version,
                               conflict=release_conflict_rule(blob_type))
    except StaleVersion:
        raise Outdated() from None
    after = s.get(TABLE, {"name": name})
    if old_data_version != current["data_version"]:  # merged with what changed since: check the result
        try:
            validate_blob(ctx, after["data"], after["product"])
        except BlobRefused:
            raise Outdated() from None
    # A pending scheduled change of the release follows the direct write, or refuses it (§4.5).
    sc_merge.merge_update(s, TABLE, {"name": name}, current, {"data": after["data"], "product": after["product"]},
                          new_version, method)
    return new_version


def _read_only_refusal(detail: str, error: ReadOnly) -> Problem:
    return Problem(403, "Forbidden", detail, [error.message])


# --- the lists, computed in one pass ----------------------------------------------------------------
class Requirements:
    """The product signoff requirements, read once, answering what :mod:`.signoffs` answers with a
    query per rule or product (``for_rules``, ``for_product``): the release lists need them for
    every release, and thousands of queries per list would dominate its time."""

    def __init__(self, rows: Iterable[Mapping[str, Any]]):
        self.rows = list(rows)
        self.by_product: dict[Any, list[Mapping[str, Any]]] = defaultdict(list)
        for row in self.rows:
            self.by_product[row["product"]].append(row)
        self._by_rule_key: dict[tuple, dict[str, int]] = {}

    def for_rule(self, rule: Mapping[str, Any]) -> dict[str, int]:
        """``signoffs.for_product_channel`` of the rule's product and channel (shared: do not change it)."""
        key = (rule.get("product"), rule.get("channel"))
        if key not in self._by_rule_key:
            rows = self.by_product.get(key[0], []) if key[0] else self.rows
            needed: dict[str, int] = {}
            for row in rows:
                if signoffs.channel_matches(key[1], row["channel"]):
                    needed[row["role"]] = max(needed.get(row["role"], 0), row["signoffs_required"])
            self._by_rule_key[key] = needed
        return self._by_rule_key[key]

    def for_rules(self, rules: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """``signoffs.for_rules``: the max per role over the rules."""
        needed: dict[str, int] = {}
        for rule in rules:
            for role, count in self.for_rule(rule).items():
                needed[role] = max(needed.get(role, 0), count)
        return needed

    def for_product(self, product: str | None) -> dict[str, int]:
        """``signoffs.for_product``: every requirement of the product, any channel."""
        needed: dict[str, int] = {}
        for row in self.by_product.get(product, []):
            needed[row["role"]] = max(needed.get(row["role"], 0), row["signoffs_required"])
        return needed


def rules_by_release(rules: Iterable[Mapping[str, Any]], names: Iterable[str] | None = None) -> dict[str, list[dict]]:
    """The rules mapping each release (``mapping`` or ``fallbackMapping``; only ``names`` when given),
    by rule id."""
    wanted = None if names is None else set(names)
    found: dict[str, list[dict]] = defaultdict(list)
    for rule in rules:
        for target in dict.fromkeys((rule.get("mapping"), rule.get("fallbackMapping"))):
            if target is not None and (wanted is None or target in wanted):
                found[target].append(rule)
    for mapped in found.values():
        mapped.sort(key=lambda r: r["rule_id"])
    return found


def release_list(ctx: AdminContext, product: str | None = None, name_prefix: str | None = None) -> list[dict]:
    """The rows of ``GET /releases``: one read of the release summaries (no blobs), of the rules
    and of the product requirements, then a pass over them."""
    with ctx.storage.consistent_reads():
        summaries = ctx.storage.release_summaries()
        rules = ctx.storage.rules()
    with ctx.reading() as s:
        requirements = Requirements(s.rows("product_req_signoffs"))
        v2_only = _v2_only_names(s, len(summaries))
    summaries = [row for row in summaries if row["name"] not in v2_only]
    if product is not None:
        summaries = [r for r in summaries if r["product"] == product]
    if name_prefix is not None:
        summaries = [r for r in summaries if r["name"].startswith(name_prefix)]
    mapping = rules_by_release(rules, (r["name"] for r in summaries))
    out = []
    for summary in sorted(summaries, key=lambda r: r["name"]):
        mapped = mapping.get(summary["name"], [])
        out.append({
            "name": summary["name"], "product": summary["product"], "data_version": summary["data_version"],
            "read_only": bool(summary["read_only"]), "rule_ids": [r["rule_id"] for r in mapped],
            "rule_info": {str(r["rule_id"]): {"product": r["product"], "channel": r["channel"]} for r in mapped},
            "required_signoffs": requirements.for_rules(mapped),
        })
    return out


# --- resources -----------------------------------------------------------------------------------------
def _get_release(ctx: AdminContext, name: str) -> dict | None:
    with ctx.reading() as s:
        return s.get(TABLE, {"name": name})


def _read_release(ctx: AdminContext, name: str) -> dict | None:
    """A single release for the v1 reads: v2 storage first, then the v1 table (§2 intro)."""
    stored = ctx.storage.releases([name]).get(name)
    if stored is None:
        return None
    return {"name": stored.name, "product": stored.product, "data": stored.data,
            "data_version": stored.data_version, "read_only": stored.read_only}


def _v2_only_names(s, names_in_both: int) -> set[str]:
    """Releases of v2 storage that are not in the v1 table. ``names_in_both``: how many names the
    two tables hold together (the release summaries). When that is the sum of their sizes, no name
    is in both and every v2 release is v2-only: one count instead of one per v2 release (thousands
    of queries, seconds). (The storage contract has no cheaper way to tell v1 rows apart.)"""
    v2_names = {row["name"] for row in s.rows("releases_json")}
    if s.count(TABLE) + len(v2_names) == names_in_both:
        return v2_names
    return {name for name in v2_names if not s.count(TABLE, {"name": name})}


def v1_summaries(ctx: AdminContext) -> list[dict]:
    """The storage's release summaries without the releases that exist only in v2 storage: the
    v1 list endpoints look at the v1 table alone (§2 intro)."""
    summaries = ctx.storage.release_summaries()
    with ctx.reading() as s:
        v2_only = _v2_only_names(s, len(summaries))
    return [row for row in summaries if row["name"] not in v2_only]


def _release_not_found(name: str) -> Problem:
    """The view's own 404 (application/json)."""
    return not_found(f"Release: {name} not found")


class ReleaseList(Resource):
    """``GET /releases``, ``POST /releases``."""

    def on_get(self, req, resp):
        check_query(req, ("product", "name_prefix", "names_only") + PAGING)
        product = req.get_param("product")
        prefix = req.get_param("name_prefix")
        rows = list_page(req, resp, release_list(self.ctx, product, prefix))
        if "names_only" in req.params:
            send_json(resp, {"names": [r["name"] for r in rows]})
        else:
            send_json(resp, {"releases": rows})

    def on_post(self, req, resp):
        check_query(req)
        body = _body(req, self.ctx, ("name", "product", "blob"), strings=("name", "product", "blob"))
        blob = _json_string(body, "blob")
        schemas.load(schemas.NewReleaseSchema, body)
        user = self.ctx.user(req)
        name, product = body["name"], body["product"]
        with self.ctx.writing(user) as s:
            if s.get(TABLE, {"name": name}) is not None:
                raise bad_request(f"Release: {name} already exists", "Database already contains the release")
            grants = permissions.load(s, user)
            try:
                version = insert_release(self.ctx, s, grants, user, name, product, blob)
            except BlobRefused as error:
                raise bad_request("Couldn't create release", error.errors) from None
        send_html_json(resp, {"new_data_version": version}, 201)


class Release(Resource):
    """``GET/HEAD/PUT/POST/DELETE /releases/<name>``."""

    def on_get(self, req, resp, name):
        check_query(req, ("pretty",))
        release = _read_release(self.ctx, name)
        if release is None:
            raise not_found(f"Release name: {name} not found", content_type=PROBLEM_JSON)
        indent = 4 if "pretty" in req.params else None
        resp.set_header("X-Data-Version", str(release["data_version"]))
        resp.content_type = "application/json"
        resp.text = json.dumps(release["data"], sort_keys=True, indent=indent)

    def on_put(self, req, resp, name):
        check_query(req)
        body = _body(req, self.ctx, ("name", "product", "blob"), strings=("name", "product", "blob"),
                     integers=("data_version",))
        blob = _json_string(body, "blob")
        schemas.load(schemas.ReleasePutSchema, body)
        user = self.ctx.user(req)
        product = body["product"]
        with self.ctx.writing(user) as s:
            grants = permissions.load(s, user)
            current = s.get(TABLE, {"name": name})
            if current is None:
                try:
                    insert_release(self.ctx, s, grants, user, name, product, blob)
                except BlobRefused as error:
                    raise bad_request("Couldn't update release", error.errors) from None
                send_empty(resp, 201)
                return
            old_data_version = body.get("data_version")
            if not old_data_version:
                raise bad_request("data_version field is missing")
            try:
                version = update_release(self.ctx, s, grants, user, current, blob, product, old_data_version)
            except BlobRefused as error:
                raise bad_request("Couldn't update release", error.errors) from None
            except ReadOnly as error:
                raise _read_only_refusal("Couldn't update release. Release is marked read only", error) from None
            except Outdated:
                raise outdated("PUT") from None
        send_json(resp, {"new_data_version": version})

    def on_post(self, req, resp, name):
        _partial_form(self.ctx, req, resp, name, None)

    def on_delete(self, req, resp, name):
        check_query(req, ("data_version",))
        old_data_version = required_query_int(req, "data_version")
        user = self.ctx.user(req)
        with self.ctx.writing(user) as s:
            current = s.get(TABLE, {"name": name})
            if current is None:
                raise _release_not_found(name)
            grants = permissions.load(s, user)
            permissions.require(grants, "release", "delete", [current["product"]],
                                f"{user} is not allowed to delete releases for product {{product}}")
            if current["read_only"]:
                raise _read_only_refusal(f"Couldn't delete {name}. Release is marked read only", ReadOnly(name))
            if s.count("rules", {"mapping": name}) or s.count("rules", {"fallbackMapping": name}):
                raise Problem(400, "Bad Request", "Unknown error",
                              f"{name} has rules pointing to it. Hence it cannot be deleted.")
            signoffs.verify(signoffs.for_release(s, name), {})
            if s.count("releases_scheduled_changes", {"base_name": name, "complete": False}):
                raise bad_request("ChangeScheduledError", "Couldn't perform the request DELETE due a conflict with "
                                  "a scheduled change. Cannot delete rows that have changes scheduled.")
            try:
                s.delete(TABLE, {"name": name}, old_data_version)
            except StaleVersion:
                raise outdated("DELETE") from None
        send_empty(resp)


class ReadOnlyFlag(Resource):
    """``GET/PUT /releases/<name>/read_only``."""

    def on_get(self, req, resp, name):
        check_query(req)
        release = _get_release(self.ctx, name)
        if release is None:
            raise _release_not_found(name)
        send_json(resp, {"read_only": bool(release["read_only"])})

    def on_put(self, req, resp, name):
        check_query(req)
        body = _body(req, self.ctx, ("read_only", "data_version"), integers=("data_version",))
        flag = body["read_only"]
        if not isinstance(flag, (bool, str)):
            raise invalid(f"read_only: {flag!r} is not of type 'boolean'")
        schemas.load(schemas.ReadOnlyPutSchema, body)
        data_version = body["data_version"]
        user = self.ctx.user(req)
        with self.ctx.writing(user) as s:
            current = s.get(TABLE, {"name": name})
            if current is None:
                raise _release_not_found(name)
            grants = permissions.load(s, user)
            product = current["product"]
            if flag:
                permissions.require(grants, "release_read_only", "set", [product],
                                    f"{user} is not allowed to set read_only for product {{product}}")
                if not current["read_only"]:
                    data_version = _write_flag(s, current, True, data_version)
            else:
                permissions.require(grants, "release_read_only", "unset", [product],
                                    f"{user} is not allowed to unset read_only for product {{product}}")
                if current["read_only"]:
                    required = signoffs.for_release(s, name) or signoffs.for_product(s, product)
                    signoffs.verify(required, {})
                data_version = _write_flag(s, current, False, data_version)
        send_html_json(resp, {"new_data_version": data_version}, 201)


def _write_flag(s, current: Mapping[str, Any], flag: bool, old_data_version: int) -> int:
    key = {"name": current["name"]}
    try:
        version = s.update(TABLE, key, {"read_only": flag}, old_data_version, merge=False)
    except StaleVersion:
        raise outdated("PUT") from None
    sc_merge.merge_update(s, TABLE, key, current, {"read_only": flag}, version, "PUT")
    return version


class ProductRequiredSignoffs(Resource):
    """``GET /releases/<name>/read_only/product/required_signoffs``."""

    def on_get(self, req, resp, name):
        check_query(req)
        with self.ctx.reading() as s:
            release = s.get(TABLE, {"name": name})
            if release is None:
                raise _release_not_found(name)
            required = signoffs.for_product(s, release["product"])
        send_json(resp, {"required_signoffs": required})


class Column(Resource):
    """``GET /releases/columns/<column>``: distinct non-null values over the list rows."""

    def on_get(self, req, resp, column):
        check_query(req)
        if column not in LIST_COLUMNS:
            raise not_found("Requested column does not exist")
        values = list(dict.fromkeys(row[column] for row in v1_summaries(self.ctx)
                                    if row[column] is not None))
        if column == "read_only":
            values = [bool(v) for v in dict.fromkeys(values)]
        send_json(resp, {"count": len(values), column: values})


class Locale(Resource):
    """``GET/PUT /releases/<name>/builds/<platform>/<locale>``."""

    def on_get(self, req, resp, name, platform, locale):
        check_query(req)
        release = _read_release(self.ctx, name)
        found = _locale(release["data"], platform, locale) if release is not None else None
        if found is None:
            message = f"Couldn't find locale identified by: {name}, {platform}, {locale}"
            raise not_found(json.dumps([message]), content_type=PROBLEM_JSON)
        resp.set_header("X-Data-Version", str(release["data_version"]))
        resp.content_type = "application/json"
        resp.text = json.dumps(found)

    def on_put(self, req, resp, name, platform, locale):
        _partial_form(self.ctx, req, resp, name, (platform, locale))


def _locale(blob: Any, platform: str, locale: str) -> Any:
    """``blob.platforms[platform].locales[locale]`` (no alias resolution), or None."""
    try:
        found = blob["platforms"][platform]["locales"][locale]
    except (KeyError, TypeError, IndexError):
        return None
    return found


# --- the partial form (§2.2) -----------------------------------------------------------------------
def _partial_form(ctx: AdminContext, req, resp, name: str, target: tuple[str, str] | None) -> None:
    """``POST /releases/<name>`` (``target`` None: top-level keys replaced) and ``PUT
    /releases/<name>/builds/<platform>/<locale>`` (``target``: one locale replaced)."""
    check_query(req)
    body = _body(req, ctx, ("product", "data"), strings=("product", "data"), integers=("data_version",))
    data = _json_object_string(body, "data")
    copy_to = _name_list(body, "copyTo")
    aliases = _name_list(body, "alias") if target is not None else []
    hash_function = _optional_string(body, "hashFunction")
    schema_version = _schema_version(body.get("schema_version"))
    schemas.load(schemas.ReleaseFormSchema, body)
    user = ctx.user(req)
    product = body["product"]

    if schema_version is None:
        schema_version = data.get("schema_version")
    if not schema_version:
        raise bad_request("schema_version is required")
    if hash_function is None and isinstance(data.get("hashFunction"), str):
        hash_function = data["hashFunction"] or None

    new = True
    with ctx.writing(user) as s:
        grants = permissions.load(s, user)
        for rel in dict.fromkeys([name, *copy_to]):
            current = s.get(TABLE, {"name": rel})
            if current is not None:
                if rel == name and (target is None or _locale(current["data"], *target) is not None):
                    new = False
                if rel == name:
                    old_data_version = body.get("data_version")
                    if not old_data_version:
                        raise bad_request("Release exists, data_version must be provided")
                else:
                    old_data_version = current["data_version"]
                if product != current["product"]:
                    raise bad_request(f"Product name '{product}' doesn't match the one on the release object "
                                      f"('{current['product']}') for release '{rel}'")
                existing_hash = current["data"].get("hashFunction") if isinstance(current["data"], dict) else None
                if existing_hash is not None and hash_function and hash_function != existing_hash:
                    raise bad_request(f"hashFunction '{hash_function}' doesn't match the one on the release object "
                                      f"('{existing_hash}') for release '{rel}'")
            else:
                stub = {"name": rel, "schema_version": schema_version}
                if hash_function:
                    stub["hashFunction"] = hash_function
                try:
                    insert_release(ctx, s, grants, user, rel, product, stub)
                except BlobRefused as error:
                    raise bad_request(f"Couldn't create release: {error.message}", error.errors) from None
                current = s.get(TABLE, {"name": rel})
                old_data_version = 1
            try:
                stored = current["data"] if isinstance(current["data"], dict) else {}
                if target is None:
                    blob = {**stored, **data}
                else:
                    blob = _with_locale(stored, target[0], target[1], data, aliases, ctx, grants, user,
                                        product)
                update_release(ctx, s, grants, user, current, blob, product, old_data_version, req.method)
            except BlobRefused as error:
                raise bad_request(f"Couldn't update release: {error.message}", error.errors) from None
            except ReadOnly as error:
                raise _read_only_refusal(f"Couldn't update release: {error.message}", error) from None
            except Outdated:
                raise bad_request(f"Couldn't update release: {STALE}", [STALE]) from None
        version = s.get(TABLE, {"name": name})["data_version"]
    send_html_json(resp, {"new_data_version": version}, 201 if new else 200)


def _with_locale(blob: Mapping[str, Any], platform: str, locale: str, data: Any, aliases: list[str],
                 ctx: AdminContext, grants, user: str, product: str | None) -> dict:
    """The blob with ``platforms[platform].locales[locale] = data`` (an alias platform resolved
    to its target first) and the alias platforms added (``release_locale``/``modify``)."""
    permissions.require(grants, "release_locale", "modify", [product],
                        f"{user} is not allowed to add builds for product {{product}}")
    blob = json.loads(json.dumps(blob))  # a private copy
    platforms = blob.get("platforms")
    if not isinstance(platforms, dict):
        platforms = blob["platforms"] = {}
    if isinstance(platforms.get(platform), dict):
        target = platforms[platform].get("alias", platform)
        platform = target if isinstance(target, str) else platform
    entry = platforms.get(platform)
    if not isinstance(entry, dict):
        entry = platforms[platform] = {}
    locales = entry.get("locales")
    if not isinstance(locales, dict):
        locales = entry["locales"] = {}
    locales[locale] = data
    for alias in aliases:
        if alias not in platforms:
            platforms[alias] = {"alias": platform}
    return blob


def routes(ctx: AdminContext) -> list[tuple[str, Resource]]:
    return [
        ("/releases", ReleaseList(ctx)),
        ("/releases/columns/{column}", Column(ctx)),
        ("/releases/{name}", Release(ctx)),
        ("/releases/{name}/read_only", ReadOnlyFlag(ctx)),
        ("/releases/{name}/read_only/product/required_signoffs", ProductRequiredSignoffs(ctx)),
        ("/releases/{name}/builds/{platform}/{locale}", Locale(ctx)),
    ]
