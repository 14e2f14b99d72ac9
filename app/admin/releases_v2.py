"""Releases, v2 API (admin-api.md §3): a release is a base row (``releases_json``) and one row
per locale (``release_assets``, path ``.platforms.<p>.locales.<l>``), each versioned on its
own; the ``data_versions`` tree mirrors the blob. Also the pins (``PUT
/v2/releases/<name>/pinnable``, ``GET /v2/pins/...``).

Unlike v1, writes authenticate before validating the body, refuse read-only releases with a
400 and never merge stale versions (``merge=False``): an old version is an OutdatedDataError.

Scheduling (§3.3; scheduled-changes-and-agent.md §6): with a ``when``, every part a write
changes becomes a scheduled change of its own table (:class:`BaseKind` on ``releases_json``,
:class:`AssetKind` on ``release_assets``; two sc_id sequences) instead of being written, and the
answer's tree holds the change objects. Without one, a change of a release that a protected rule
maps is refused (``Signoff Required``), and making a protected release writable is scheduled 30 s
ahead. A release's pending changes are signed off, revoked and enacted together
(``/v2/releases/<name>/signoff``, ``/enact``), through the lifecycle of :mod:`.scheduled_changes`.
A part has at most one pending change: scheduling it again replaces that change (approvals
reset); a full replacement (PUT) cancels the pending changes of the parts it leaves as they are;
a direct write of a part with a pending change is merged into it, or refused (§4.5).
"""
from __future__ import annotations

import copy
import json
import re
import time
from typing import Any, Mapping

from balrog_engine import BlobValidationError, StaleVersion, flatten_errors

from . import permissions, sc_merge, schemas, signoffs
from . import scheduled_changes as sc
from .app import AdminContext, Resource, send_json
from .problems import (
    PROBLEM_JSON, Problem, bad_request, forbidden, not_found, outdated, route_not_found, signoff_required,
    unknown_error,
)
from .releases import HASH_FUNCTION_REQUIRED, INVALID_BLOB, BlobRefused, Requirements, rules_by_release, validate_blob
from .requests import PAGING, check_query, json_object, list_page

BASE = "releases_json"
ASSETS = "release_assets"

#: Blob schema versions whose locales are stored as assets (§3.1).
SPLIT_SCHEMAS = frozenset(range(1, 10))

RELEASE_MISSING = "Release does not exist"
NO_CHANGES = "Release has no scheduled changes"

#: How far ahead making a protected release writable is scheduled (§3.3).
UNLOCK_DELAY_MS = 30_000


# --- blob <-> rows -------------------------------------------------------------------------------------
def asset_path(platform: str, locale: str) -> str:
    return f".platforms.{platform}.locales.{locale}"


def path_parts(path: str) -> tuple[str, str] | None:
    if not path.startswith(".platforms.") or ".locales." not in path:
        return None
    platform, _, locale = path[len(".platforms."):].rpartition(".locales.")
    return platform, locale


def split_blob(blob: Mapping[str, Any]) -> tuple[dict, dict[str, Any]]:
    """(base data, {asset path: locale data}); locales are emptied out of the base."""
    base = copy.deepcopy(dict(blob))
    assets: dict[str, Any] = {}
    version = blob.get("schema_version")
    if isinstance(version, bool) or version not in SPLIT_SCHEMAS:
        return base, assets
    platforms = base.get("platforms")
    if isinstance(platforms, dict):
        for platform, entry in platforms.items():
            if isinstance(entry, dict) and isinstance(entry.get("locales"), dict):
                for locale, data in entry["locales"].items():
                    assets[asset_path(platform, locale)] = data
                entry["locales"] = {}
    return base, assets


def join_blob(base: Mapping[str, Any] | None, assets: Mapping[str, Any]) -> dict:
    blob = copy.deepcopy(dict(base or {}))
    for path, data in assets.items():
        parts = path_parts(path)
        if parts is None:
            continue
        platforms = blob.setdefault("platforms", {})
        entry = platforms.setdefault(parts[0], {})
        entry.setdefault("locales", {})[parts[1]] = copy.deepcopy(data)
    return blob


def tree(base_version: int | None, asset_versions: Mapping[str, Any]) -> dict:
    out: dict[str, Any] = {}
    if base_version is not None:
        out["."] = base_version
    for path, version in asset_versions.items():
        platform, locale = path_parts(path)
        out.setdefault("platforms", {}).setdefault(platform, {}).setdefault("locales", {})[locale] = version
    return out


def tree_version(versions: Any, path: str) -> Any:
    """The old version given for ``path`` ("." or an asset path) in an ``old_data_versions`` tree."""
    if not isinstance(versions, dict):
        return None
    if path == ".":
        return versions.get(".")
    platform, locale = path_parts(path)
    try:
        return versions["platforms"][platform]["locales"][locale]
    except (KeyError, TypeError):
        return None


def deep_merge(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        merged = copy.deepcopy(old)
        for key, value in new.items():
            merged[key] = deep_merge(old[key], value) if key in old else copy.deepcopy(value)
        return merged
    return copy.deepcopy(new)


def load(s, name: str) -> tuple[dict | None, list[dict]]:
    base = s.get(BASE, {"name": name})
    assets = s.rows(ASSETS, {"name": name}, order_by=["path"]) if base is not None else []
    return base, assets


def release_blob(base: Mapping[str, Any], assets: list[dict]) -> dict:
    return join_blob(base["data"], {a["path"]: a["data"] for a in assets})


def release_tree(base: Mapping[str, Any], assets: list[dict]) -> dict:
    return tree(base["data_version"], {a["path"]: a["data_version"] for a in assets})


# --- validation and checks -------------------------------------------------------------------------
def _required(body: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if name not in body:
            raise Problem(400, "Bad Request", f"'{name}' is a required property", content_type=PROBLEM_JSON)


def _require_object(body: Mapping[str, Any], name: str) -> dict:
    _required(body, name)
    value = body[name]
    if not isinstance(value, dict):
        shown = repr(value) if isinstance(value, str) else json.dumps(value)
        raise Problem(400, "Bad Request", f"{shown} is not of type 'object' - '{name}'", content_type=PROBLEM_JSON)
    return value


def _validate(ctx: AdminContext, blob: Any, product: str | None) -> None:
    """Validate the whole blob: 400 ``Invalid Blob`` with the bare messages (no paths)."""
    try:
        validate_blob(ctx, blob, product)
    except BlobRefused as error:
        errors = error.errors
        if error.message == INVALID_BLOB:
            blob_type = ctx.registry.blob_type(blob["schema_version"])
            try:
                blob_type.validate(blob)
                errors = []
            except BlobValidationError as failure:
                errors = [message for _, message in flatten_errors(failure.errors)] or [str(failure)]
            if blob["schema_version"] in HASH_FUNCTION_REQUIRED and "hashFunction" not in blob:
                errors.append("'hashFunction' is a required property")
        raise bad_request("Invalid Blob", errors) from None


def _read_only(action: str) -> Problem:
    return bad_request("Read only", f"Cannot {action} a Release that is marked as read-only")


def _check_signoffs(s, name: str) -> None:
    if signoffs.for_release(s, name):
        raise signoff_required("Signoff is required, cannot update Release directly")


def _when(body: Mapping[str, Any]) -> int | None:
    """The body's ``when``: null (write now) or integer milliseconds, not in the past."""
    when = body.get("when")
    if when is None:
        return None
    if isinstance(when, bool) or not isinstance(when, int):
        raise Problem(400, "Bad Request", f"{json.dumps(when)} is not of type 'integer', 'null' - 'when'",
                      content_type=PROBLEM_JSON)
    return sc.check_when(when)


def _write(s, table: str, key: dict, values: dict, old: Any, method: str) -> int:
    try:
        return s.update(table, key, values, old, merge=False)
    except StaleVersion:
        raise outdated(method) from None


def _write_part(s, table: str, key: dict, current: Mapping[str, Any], values: dict, old: Any, method: str) -> int:
    """A direct update of a part, merged into the part's pending change (or refused by it, §4.5)."""
    version = _write(s, table, key, values, old, method)
    sc_merge.merge_update(s, table, key, current, values, version, method)
    return version


def _insert_part(s, table: str, values: dict, method: str) -> None:
    """A direct insert of a part; a pending change for the same key (a scheduled insert) would
    be enacted onto it, so that is a conflict."""
    key = {name: values[name] for name in (("name", "path") if table == ASSETS else ("name",))}
    if sc_merge.has_pending(s, table, key):
        raise sc_merge.merge_error(method)
    s.insert(table, values)


# --- scheduled changes of v2 releases ----------------------------------------------------------------
class BaseKind(sc.Kind):
    """Scheduled changes of base rows (``releases_json_scheduled_changes``)."""

    segment, table, key, title = "v2/releases", BASE, ("name",), "Release"
    columns = ("name", "product", "read_only", "data")
    creatable = revisions = False

    def requirements(self, session, current, new):
        # Making a release writable needs its product's signoffs when no rule protects it, as on
        # v1 (§2.4). (The reference checks only the rule-derived ones here, so such a release is
        # unlocked 30 s later without anyone's approval; the listing shows this requirement too,
        # so the agent waits for the signoffs instead of failing to enact.)
        return signoffs.for_release_change(session, current, new)

    def dry_run(self, ctx, session, user, change_type, current, new, stage):
        grants = permissions.load(session, user)
        if change_type == "insert":
            permissions.require(grants, "release", "create", [new.get("product")],
                                f"{user} is not allowed to create {{product}} releases")
            return
        product = current["product"]
        if change_type == "delete":
            permissions.require(grants, "release", "delete", [product],
                                f"{user} is not allowed to delete {{product}} releases")
            return
        permissions.require(grants, "release", "modify", dict.fromkeys([product, new.get("product")]),
                            f"{user} is not allowed to modify {{product}} releases")
        if bool(new.get("read_only")) != bool(current["read_only"]):
            action = "unset" if new.get("read_only") else "set"  # the reverse of v1 (observed)
            permissions.require(grants, "release_read_only", action, [product],
                                f"{user} is not allowed to {action} read only releases for product {{product}}")
        if stage != sc.CANCEL and current["read_only"] and new.get("read_only") and \
                (new.get("data") != current["data"] or new.get("product") != product):
            raise _read_only("update")


class AssetKind(sc.Kind):
    """Scheduled changes of locales (``release_assets_scheduled_changes``). ``new_release``: the
    release's base is created by the same batch of changes, so its locales need ``create``
    rather than ``modify``."""

    table, key, title = ASSETS, ("name", "path"), "Release"
    columns = ("name", "path", "data")
    creatable = revisions = False

    #: Distinct from the base changes' segment: the two tables number their changes separately.
    enactment_segment = "v2/releases/assets"

    def __init__(self, new_release: bool = False):
        self.new_release = new_release
        self.segment = "v2/releases"

    def requirements(self, session, current, new):
        return signoffs.for_release(session, (new or current)["name"])

    def dry_run(self, ctx, session, user, change_type, current, new, stage):
        name = (new or current)["name"]
        base = session.get(BASE, {"name": name})
        if base is None:
            pending = session.rows(BASE_CHANGES.sc_table, {"base_name": name, "complete": False}, limit=1)
            product = pending[0]["base_product"] if pending else None
        else:
            product = base["product"]
        action = "create" if self.new_release else "modify"
        permissions.require(permissions.load(session, user), "release", action, [product],
                            f"{user} is not allowed to {action} {{product}} releases")
        if stage != sc.CANCEL and base is not None and base["read_only"]:
            raise _read_only("update")


BASE_CHANGES, ASSET_CHANGES, NEW_ASSET_CHANGES = BaseKind(), AssetKind(), AssetKind(new_release=True)


def pending_changes(s, name: str) -> tuple[dict | None, dict[str, dict]]:
    """The release's incomplete changes: the base's (or None) and the locales' by path."""
    base = s.rows(BASE_CHANGES.sc_table, {"base_name": name, "complete": False}, order_by=["sc_id"], limit=1)
    assets = s.rows(ASSET_CHANGES.sc_table, {"base_name": name, "complete": False}, order_by=["base_path"])
    return (base[0] if base else None), {row["base_path"]: row for row in assets}


def _change_object(s, kind: sc.Kind, sc_id: int) -> dict:
    """A scheduled part in a write's answer: ``data_version`` is the change's own version."""
    row = s.get(kind.sc_table, {"sc_id": sc_id})
    return {"sc_id": sc_id, "change_type": row["change_type"], "data_version": row["data_version"],
            "signoffs": sc.signoff_map(s, kind, sc_id), "when": sc.conditions_of(s, kind, sc_id)["when"]}


def _schedule_part(ctx: AdminContext, s, kind: sc.Kind, user: str, change_type: str, current: dict | None,
                   new: dict, when: int, pending: dict | None, method: str) -> dict:
    """Schedule the change of one part. A pending change of the part is replaced: edited when it
    is of the same type (its approvals reset), else cancelled first."""
    if pending is not None and pending["change_type"] == change_type:
        sc.rewrite(ctx, s, kind, pending, user, new, {"when": when}, pending["data_version"],
                   current["data_version"] if current is not None else None, method)
        sc_id = pending["sc_id"]
    else:
        if pending is not None:
            sc.cancel(s, kind, pending, pending["data_version"], method)
        sc_id = sc.schedule(ctx, s, kind, user, change_type, current, new, {"when": when}, method)
    return _change_object(s, kind, sc_id)


def _check_old_version(old_versions: Any, path: str, current: Mapping[str, Any], method: str) -> None:
    """A scheduled update or delete is prepared against the part's current version."""
    old = tree_version(old_versions, path)
    if old is None and path != ".":
        raise unknown_error(f"Missing data_version for {path}")
    if old != current["data_version"]:
        raise outdated(method)


def _cancel(s, kind: sc.Kind, pending: dict | None, method: str) -> None:
    if pending is not None:
        sc.cancel(s, kind, pending, pending["data_version"], method)


def _cancel_all(s, pending_base: dict | None, pending_assets: Mapping[str, dict], method: str) -> None:
    _cancel(s, BASE_CHANGES, pending_base, method)
    for row in pending_assets.values():
        _cancel(s, ASSET_CHANGES, row, method)


def _listed_change(s, kind: sc.Kind, row: Mapping[str, Any]) -> dict:
    """A pending change in ``GET /v2/releases``: its row without ``data``, ``base_`` stripped."""
    out = {name: value for name, value in sc.base_values(row).items() if name != "data"}
    if out.get("read_only") is not None:
        out["read_only"] = bool(out["read_only"])
    out.update({"sc_id": row["sc_id"], "sc_data_version": row["data_version"], "change_type": row["change_type"],
                "scheduled_by": row["scheduled_by"], "complete": bool(row["complete"]),
                "when": sc.conditions_of(s, kind, row["sc_id"])["when"],
                "signoffs": sc.signoff_map(s, kind, row["sc_id"])})
    return out


# --- resources -----------------------------------------------------------------------------------
def _named(responder):
    def checked(req, resp, name, **params):
        if not name:
            raise route_not_found()
        return responder(req, resp, name, **params)
    return checked


class ReleaseList(Resource):
    """``GET /v2/releases``: every release, and every release that exists only as a scheduled
    creation, with what the agent needs: the pending changes, and the signoffs they require.
    ``?page=``/``?limit=`` answer a slice of the names (:func:`.requests.list_page`); only the
    releases of the slice are looked into."""

    def on_get(self, req, resp):
        check_query(req, ("names_only",) + PAGING)
        with self.ctx.reading() as s:
            bases = {b["name"]: b for b in s.rows(BASE, order_by=["name"])}
            changes: dict[str, list[tuple[sc.Kind, dict]]] = {}
            for kind in (BASE_CHANGES, ASSET_CHANGES):
                for row in s.rows(kind.sc_table, {"complete": False}, order_by=["sc_id"]):
                    changes.setdefault(row["base_name"], []).append((kind, row))
            names = list_page(req, resp, sorted(set(bases) | set(changes)))
            if "names_only" in req.params:
                send_json(resp, names)
                return
            # The rules and the requirements are read once for the whole list, not per release.
            mapped = rules_by_release(s.rows("rules"), names) if names else {}
            requirements = Requirements(s.rows("product_req_signoffs") if names else ())
            out = []
            for name in names:
                pending = changes.get(name, [])
                listed = [_listed_change(s, kind, row) for kind, row in pending]
                base = bases.get(name)
                if base is None:  # a scheduled creation only
                    out.append({"name": name, "product": None, "data_version": None, "read_only": None,
                                "rule_info": {}, "scheduled_changes": listed})
                    continue
                rules = mapped.get(name, [])
                required = requirements.for_rules(rules)
                for kind, row in pending:
                    for role, count in sc.sc_requirements(s, kind, row).items():
                        required[role] = max(required.get(role, 0), count)
                out.append({
                    "name": name, "product": base["product"], "data_version": base["data_version"],
                    "read_only": bool(base["read_only"]),
                    "rule_info": {str(r["rule_id"]): {"product": r["product"], "channel": r["channel"]}
                                  for r in rules},
                    "required_signoffs": required,
                    "product_required_signoffs": requirements.for_product(base["product"]),
                    "scheduled_changes": listed,
                })
        send_json(resp, {"releases": out})


class Release(Resource):
    """``GET/PUT/POST/DELETE /v2/releases/<name>`` (an empty name is no route: ``/v2/releases/``)."""

    def __init__(self, ctx: AdminContext):
        super().__init__(ctx)
        for method in ("on_get", "on_put", "on_post", "on_delete"):
            setattr(self, method, _named(getattr(self, method)))

    def on_get(self, req, resp, name):
        check_query(req)
        with self.ctx.reading() as s:
            base, assets = load(s, name)
            pending_base, pending_assets = pending_changes(s, name)
            if base is None and pending_base is None:
                raise not_found(RELEASE_MISSING)
            out = {"blob": release_blob(base, assets) if base else {},
                   "data_versions": release_tree(base, assets) if base else {}, "sc_blob": {}, "sc_data_versions": {}}
            if pending_base is not None or pending_assets:
                scheduled = {a["path"]: a["data"] for a in assets}
                for path, row in pending_assets.items():
                    if row["change_type"] == "delete":
                        scheduled.pop(path, None)
                    else:
                        scheduled[path] = row["base_data"]
                out["sc_blob"] = join_blob(pending_base["base_data"] if pending_base else base["data"], scheduled)
                out["sc_data_versions"] = tree(pending_base["data_version"] if pending_base else None,
                                               {path: row["data_version"] for path, row in pending_assets.items()})
        send_json(resp, out)

    def on_put(self, req, resp, name):
        check_query(req)
        user = self.ctx.user(req)
        body = json_object(req)
        blob = _require_object(body, "blob")
        when = _when(body)
        schemas.load(schemas.V2ReleasePutSchema, body)
        old_versions = body.get("old_data_versions") or {}
        product = body.get("product")
        method = req.method
        with self.ctx.writing(user) as s:
            grants = permissions.load(s, user)
            base, assets = load(s, name)
            new_base, new_assets = split_blob(blob)
            pending_base, pending_assets = pending_changes(s, name)
            if base is None:
                permissions.require(grants, "release", "create", [product],
                                    f"{user} is not allowed to create {{product}} releases")
                _validate(self.ctx, blob, product)
                if when is None:
                    _cancel_all(s, pending_base, pending_assets, method)  # created now, not later
                    s.insert(BASE, {"name": name, "product": product, "read_only": False, "data": new_base})
                    for path, data in new_assets.items():
                        s.insert(ASSETS, {"name": name, "path": path, "data": data})
                    send_json(resp, tree(1, dict.fromkeys(new_assets, 1)))
                    return
                created = _schedule_part(self.ctx, s, BASE_CHANGES, user, "insert", None,
                                         {"name": name, "product": product, "read_only": False, "data": new_base},
                                         when, pending_base, method)
                versions = {path: _schedule_part(self.ctx, s, NEW_ASSET_CHANGES, user, "insert", None,
                                                 {"name": name, "path": path, "data": data}, when,
                                                 pending_assets.pop(path, None), method)
                            for path, data in new_assets.items()}
                for row in pending_assets.values():  # locales the new blob no longer has
                    _cancel(s, ASSET_CHANGES, row, method)
                send_json(resp, tree(created, versions))
                return
            product = product or base["product"]
            permissions.require(grants, "release", "modify", dict.fromkeys([base["product"], product]),
                                f"{user} is not allowed to modify {{product}} releases")
            if base["read_only"]:
                raise _read_only("update")
            _validate(self.ctx, blob, product)
            current = {a["path"]: a for a in assets}
            base_changed = new_base != base["data"] or product != base["product"]
            changed_assets = [p for p, d in new_assets.items() if p not in current or current[p]["data"] != d]
            removed = [p for p in current if p not in new_assets]
            # A full replacement says what every part should hold: the pending changes of the
            # parts it leaves as they are (or of locales neither there nor in it) are cancelled.
            if not base_changed:
                _cancel(s, BASE_CHANGES, pending_base, method)
            for path, row in pending_assets.items():
                if path not in changed_assets and path not in removed:
                    _cancel(s, ASSET_CHANGES, row, method)
            if when is not None:
                versions: dict[str, Any] = {}
                scheduled_base = None
                if base_changed:
                    _check_old_version(old_versions, ".", base, method)
                    scheduled_base = _schedule_part(
                        self.ctx, s, BASE_CHANGES, user, "update", base,
                        {"name": name, "product": product, "read_only": bool(base["read_only"]), "data": new_base},
                        when, pending_base, method)
                for path in changed_assets:
                    row = current.get(path)
                    if row is not None:
                        _check_old_version(old_versions, path, row, method)
                    versions[path] = _schedule_part(self.ctx, s, ASSET_CHANGES, user,
                                                    "update" if row is not None else "insert", row,
                                                    {"name": name, "path": path, "data": new_assets[path]}, when,
                                                    pending_assets.get(path), method)
                for path in removed:
                    versions[path] = _schedule_part(self.ctx, s, ASSET_CHANGES, user, "delete", current[path],
                                                    {"name": name, "path": path, "data": None}, when,
                                                    pending_assets.get(path), method)
                send_json(resp, tree(scheduled_base, versions))
                return
            if base_changed or changed_assets or removed:
                _check_signoffs(s, name)
            versions = {}
            base_version = None
            if base_changed:
                base_version = _write_part(s, BASE, {"name": name}, base, {"data": new_base, "product": product},
                                           tree_version(old_versions, "."), method)
            for path in changed_assets:
                key = {"name": name, "path": path}
                if path in current:
                    old = tree_version(old_versions, path)
                    if old is None:
                        raise unknown_error(f"Missing data_version for {path}")
                    versions[path] = _write_part(s, ASSETS, key, current[path], {"data": new_assets[path]}, old,
                                                 method)
                else:
                    _insert_part(s, ASSETS, {**key, "data": new_assets[path]}, method)
                    versions[path] = 1
            for path in removed:
                sc_merge.refuse_delete(s, ASSETS, {"name": name, "path": path}, method)
                s.delete(ASSETS, {"name": name, "path": path}, current[path]["data_version"])
        send_json(resp, tree(base_version, versions))

    def on_post(self, req, resp, name):
        check_query(req)
        user = self.ctx.user(req)
        body = json_object(req)
        partial = _require_object(body, "blob")
        _required(body, "old_data_versions")
        when = _when(body)
        schemas.load(schemas.V2ReleasePostSchema, body)
        old_versions = body.get("old_data_versions") or {}
        method = req.method
        with self.ctx.writing(user) as s:
            grants = permissions.load(s, user)
            base, assets = load(s, name)
            if base is None:
                raise Problem(404, "Missing", RELEASE_MISSING)
            product = base["product"]
            permissions.require(grants, "release", "modify", [product],
                                f"{user} is not allowed to modify {{product}} releases")
            if base["read_only"]:
                raise _read_only("update")
            current = {a["path"]: a for a in assets}
            # the partial blob: its locales (assets) and everything else (base keys)
            schema = partial.get("schema_version", base["data"].get("schema_version"))
            base_part, asset_part = split_blob({**partial, "schema_version": schema})
            if "schema_version" not in partial:
                base_part.pop("schema_version", None)
            platforms = base_part.get("platforms")
            if isinstance(platforms, dict) and asset_part:
                for platform in list(platforms):
                    entry = platforms[platform]
                    if isinstance(entry, dict) and entry.get("locales") == {}:
                        del entry["locales"]
                        if not entry:
                            del platforms[platform]
                if not platforms:
                    del base_part["platforms"]
            # A scheduled change builds on what is already scheduled for each part (it replaces
            # that change: building on the current content would silently drop its edits).
            pending_base, pending_assets = pending_changes(s, name) if when is not None else (None, {})
            target = sc.base_values(pending_base) if pending_base is not None else base
            sources = {p: a["data"] for p, a in current.items()}
            for path, row in pending_assets.items():
                if row["change_type"] == "delete":
                    sources.pop(path, None)
                else:
                    sources[path] = row["base_data"]
            new_base = deep_merge(target["data"], base_part) if base_part else target["data"]
            new_assets = {p: deep_merge(sources[p], d) if p in sources else d for p, d in asset_part.items()}
            for path in new_assets:
                if path in current and tree_version(old_versions, path) is None:
                    raise unknown_error(f"Missing data_version for {path}")
            full = join_blob(new_base, {**sources, **new_assets})
            _validate(self.ctx, full, target["product"])
            if when is not None:
                scheduled_base = None
                if base_part:
                    _check_old_version(old_versions, ".", base, method)
                    scheduled_base = _schedule_part(
                        self.ctx, s, BASE_CHANGES, user, "update", base,
                        {"name": name, "product": target["product"], "read_only": bool(target["read_only"]),
                         "data": new_base}, when, pending_base, method)
                versions: dict[str, Any] = {}
                for path, data in new_assets.items():
                    row = current.get(path)
                    if row is not None:
                        _check_old_version(old_versions, path, row, method)
                    versions[path] = _schedule_part(self.ctx, s, ASSET_CHANGES, user,
                                                    "update" if row is not None else "insert", row,
                                                    {"name": name, "path": path, "data": data}, when,
                                                    pending_assets.get(path), method)
                send_json(resp, tree(scheduled_base, versions))
                return
            _check_signoffs(s, name)
            base_version = None
            if base_part:
                base_version = _write_part(s, BASE, {"name": name}, base, {"data": new_base},
                                           tree_version(old_versions, "."), method)
            versions = {}
            for path, data in new_assets.items():
                key = {"name": name, "path": path}
                if path in current:
                    versions[path] = _write_part(s, ASSETS, key, current[path], {"data": data},
                                                 tree_version(old_versions, path), method)
                else:
                    _insert_part(s, ASSETS, {**key, "data": data}, method)
                    versions[path] = 1
        send_json(resp, tree(base_version, versions))

    def on_delete(self, req, resp, name):
        check_query(req)
        user = self.ctx.user(req)
        method = req.method
        with self.ctx.writing(user) as s:
            base, assets = load(s, name)
            pending_base, pending_assets = pending_changes(s, name)
            if base is None and pending_base is None and not pending_assets:
                raise not_found(RELEASE_MISSING)
            product = base["product"] if base is not None else (pending_base or {}).get("base_product")
            grants = permissions.load(s, user)
            permissions.require(grants, "release", "delete", [product],
                                f"{user} is not allowed to delete {{product}} releases")
            if base is not None:
                if base["read_only"]:
                    raise _read_only("delete")
                if s.count("rules", {"mapping": name}) or s.count("rules", {"fallbackMapping": name}):
                    raise unknown_error(f"Cannot delete release that is mapped to by rules: {name}")
                if s.count("pinnable_releases", {"mapping": name}):
                    raise unknown_error("Cannot delete release that is pinnable")
            _cancel_all(s, pending_base, pending_assets, method)  # the release's pending changes go first
            for asset in assets:
                s.delete(ASSETS, {"name": name, "path": asset["path"]}, asset["data_version"])
            if base is not None:
                s.delete(BASE, {"name": name}, base["data_version"])
        resp.content_type = "application/json"
        resp.text = ""


class DataVersions(Resource):
    """``GET /v2/releases/<name>/data_versions``."""

    def on_get(self, req, resp, name):
        check_query(req)
        with self.ctx.reading() as s:
            base, assets = load(s, name)
        if base is None:
            raise not_found(RELEASE_MISSING)
        send_json(resp, {"data_versions": release_tree(base, assets)})


class AssetDataVersion(Resource):
    """``GET /v2/releases/<name>/<path>/data_version``."""

    def on_get(self, req, resp, name, path):
        check_query(req)
        with self.ctx.reading() as s:
            asset = s.get(ASSETS, {"name": name, "path": path})
        if asset is None:
            raise not_found(RELEASE_MISSING)
        send_json(resp, {"data_version": asset["data_version"]})


class ReadOnlyFlag(Resource):
    """``PUT /v2/releases/<name>/read_only``. Making a protected release writable (a rule that
    maps it, or its product, requires signoffs) is scheduled 30 s ahead instead (§3.3)."""

    def on_put(self, req, resp, name):
        check_query(req)
        user = self.ctx.user(req)
        body = json_object(req)
        _required(body, "read_only", "old_data_version")
        flag = body["read_only"]
        if not isinstance(flag, bool):
            raise Problem(400, "Bad Request", f"{json.dumps(flag)} is not of type 'boolean' - 'read_only'",
                          content_type=PROBLEM_JSON)
        schemas.load(schemas.V2ReadOnlySchema, body)
        with self.ctx.writing(user) as s:
            base = s.get(BASE, {"name": name})
            if base is None:
                raise Problem(404, "Missing", RELEASE_MISSING)
            grants = permissions.load(s, user)
            action = "unset" if flag else "set"  # the reverse of v1 (observed)
            permissions.require(grants, "release_read_only", action, [base["product"]],
                                f"{user} is not allowed to {action} read only releases for product {{product}}")
            if not flag and base["read_only"] and (signoffs.for_release(s, name)
                                                   or signoffs.for_product(s, base["product"])):
                if body["old_data_version"] != base["data_version"]:
                    raise outdated("PUT")
                pending_base, _ = pending_changes(s, name)
                # A pending change of the base keeps what it changes, and becomes the unlock too.
                source = sc.base_values(pending_base) if pending_base is not None else base
                new = {"name": name, "product": source["product"], "read_only": False, "data": source["data"]}
                when = int(time.time() * 1000) + UNLOCK_DELAY_MS
                send_json(resp, {".": _schedule_part(self.ctx, s, BASE_CHANGES, user, "update", base, new, when,
                                                     pending_base, "PUT")})
                return
            version = _write_part(s, BASE, {"name": name}, base, {"read_only": flag}, body["old_data_version"],
                                  "PUT")
        send_json(resp, {".": version})


class Signoff(Resource):
    """``PUT|DELETE /v2/releases/<name>/signoff``: sign off (revoke one's signoffs on) every
    pending change of the release."""

    def on_put(self, req, resp, name):
        check_query(req)
        user = self.ctx.user(req)
        body = json_object(req)
        role = sc.signoff_role(body)
        sc.check_signer(self.ctx, user, body)
        schemas.load(schemas.SignoffSchema, body)
        with self.ctx.writing(user) as s:
            for kind, row in _all_pending(s, name):
                sc.sign(s, kind, row["sc_id"], user, role)
        send_json(resp, None)

    def on_delete(self, req, resp, name):
        check_query(req)
        user = self.ctx.user(req)
        if user in self.ctx.system_accounts:
            raise forbidden("System accounts cannot revoke a signoff")
        with self.ctx.writing(user) as s:
            for kind, row in _all_pending(s, name):
                sc.revoke(s, kind, row["sc_id"], user, user)
        send_json(resp, None)


def _all_pending(s, name: str) -> list[tuple[sc.Kind, dict]]:
    """The release's pending changes, base first (404 if there are none). Locales of a release
    the same changes create are :data:`NEW_ASSET_CHANGES` (their ``create`` permission)."""
    pending_base, pending_assets = pending_changes(s, name)
    if pending_base is None and not pending_assets:
        raise not_found(NO_CHANGES)
    creating = pending_base is not None and pending_base["change_type"] == "insert"
    assets = NEW_ASSET_CHANGES if creating else ASSET_CHANGES
    return ([(BASE_CHANGES, pending_base)] if pending_base is not None else []) + \
        [(assets, row) for row in pending_assets.values()]


class Enact(Resource):
    """``POST /v2/releases/<name>/enact``: every pending change of the release, in one
    transaction (base first, so that a new release's locales find it), each as its scheduler; the
    resulting blob is validated whole."""

    def on_post(self, req, resp, name):
        check_query(req)
        user = self.ctx.user(req)
        with self.ctx.writing(user) as s:
            sc.require_enact(s, user)
            # every check before the first write (see scheduled_changes.prepare_enact)
            enactments = [sc.prepare_enact(self.ctx, s, kind, row, user, req.method)
                          for kind, row in _all_pending(s, name)]
            for enactment in enactments:
                sc.enact(self.ctx, s, enactment)
            base, assets = load(s, name)
            if base is not None:
                _validate(self.ctx, release_blob(base, assets), base["product"])
            # who enacted them: after the last check that may refuse (see sc.record_enactment)
            for enactment in enactments:
                sc.record_enactment(s, enactment.kind, enactment.sc["sc_id"], user)
        send_json(resp, None)


# --- pins -------------------------------------------------------------------------------------------
def _version_key(value: Any) -> tuple:
    parts = re.findall(r"\d+|[a-z]+", str(value or ""))
    return tuple((0, int(p), "") if p.isdigit() else (-1, 0, p) for p in parts)


def _app_version(data: Mapping[str, Any] | None) -> Any:
    data = data or {}
    return data.get("appVersion") or data.get("appv") or data.get("version")


class Pinnable(Resource):
    """``PUT /v2/releases/<name>/pinnable``: set a pin now, or with ``when`` schedule it (a
    pinnable_releases change, enacted through ``/scheduled_changes/pinnable_releases``)."""

    def on_put(self, req, resp, name):
        check_query(req)
        user = self.ctx.user(req)
        body = json_object(req)
        _required(body, "product", "channel", "version")
        when = _when(body)
        schemas.load(schemas.PinnableSchema, body)
        product, channel, version = body["product"], body["channel"], body["version"]
        with self.ctx.writing(user) as s:
            base = s.get(BASE, {"name": name})
            if base is None:
                raise not_found(RELEASE_MISSING)
            grants = permissions.load(s, user)
            key = {"product": product, "channel": channel, "version": version}
            pin = s.get("pinnable_releases", key)
            action = "modify" if pin is not None else "create"
            permissions.require(grants, "pinnable_release", action, [product],
                                f"{user} is not allowed to {action} pinnable releases for product {{product}}")
            if pin is not None:
                pinned = s.get(BASE, {"name": pin["mapping"]})
                if pinned is not None and pin["mapping"] != name and \
                        _version_key(_app_version(pinned["data"])) > _version_key(_app_version(base["data"])):
                    send_json(resp, {"pin_not_set": True, "reason": "existing_pin_is_newer"})
                    return
            if when is not None:
                change_type = "insert" if pin is None else "update"
                sc_id = sc.schedule(self.ctx, s, sc.PINS, user, change_type, pin, {**key, "mapping": name},
                                    {"when": when}, "PUT")
                # (as the reference answers: the version the pin will have once enacted)
                send_json(resp, {".": {"sc_id": sc_id, "change_type": change_type,
                                       "data_version": 1 if pin is None else pin["data_version"] + 1,
                                       "signoffs": sc.signoff_map(s, sc.PINS, sc_id), "when": when}})
                return
            if pin is None:
                s.insert("pinnable_releases", {**key, "mapping": name})
                send_json(resp, {".": 1})
                return
            new = _write_part(s, "pinnable_releases", key, pin, {"mapping": name}, pin["data_version"], "PUT")
        send_json(resp, {".": new})


class Pin(Resource):
    """``GET /v2/pins/<product>/<channel>/<version>``."""

    def on_get(self, req, resp, product, channel, version):
        check_query(req)
        with self.ctx.reading() as s:
            pin = s.get("pinnable_releases", {"product": product, "channel": channel, "version": version})
        if pin is None:
            raise not_found("Pin does not exist")
        send_json(resp, {k: pin[k] for k in ("product", "channel", "version", "mapping", "data_version")})


def routes(ctx: AdminContext) -> list[tuple[str, Resource]]:
    return [
        ("/v2/releases", ReleaseList(ctx)),
        ("/v2/releases/{name}", Release(ctx)),
        ("/v2/releases/{name}/data_versions", DataVersions(ctx)),
        ("/v2/releases/{name}/read_only", ReadOnlyFlag(ctx)),
        ("/v2/releases/{name}/signoff", Signoff(ctx)),
        ("/v2/releases/{name}/enact", Enact(ctx)),
        ("/v2/releases/{name}/pinnable", Pinnable(ctx)),
        ("/v2/releases/{name}/{path}/data_version", AssetDataVersion(ctx)),
        ("/v2/pins/{product}/{channel}/{version}", Pin(ctx)),
    ]
