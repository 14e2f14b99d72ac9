"""Releases, v2 API (admin-api.md §3): a release is a base row (``releases_json``) and one row
per locale (``release_assets``, path ``.platforms.<p>.locales.<l>``), each versioned on its
own; the ``data_versions`` tree mirrors the blob. Also the pins (``PUT
/v2/releases/<name>/pinnable``, ``GET /v2/pins/...``).

Unlike v1, writes authenticate before validating the body, refuse read-only releases with a
400 and never merge stale versions (``merge=False``): an old version is an OutdatedDataError.
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any, Mapping

from balrog_engine import BlobValidationError, StaleVersion, flatten_errors

from . import permissions, signoffs
from .app import AdminContext, Resource, send_json
from .problems import PROBLEM_JSON, Problem, bad_request, not_found, outdated, route_not_found, signoff_required, unknown_error
from .releases import HASH_FUNCTION_REQUIRED, INVALID_BLOB, BlobRefused, validate_blob
from .requests import check_query, json_object

BASE = "releases_json"
ASSETS = "release_assets"

#: Blob schema versions whose locales are stored as assets (§3.1).
SPLIT_SCHEMAS = frozenset(range(1, 10))

RELEASE_MISSING = "Release does not exist"


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


def _no_when(body: Mapping[str, Any]) -> None:
    """Scheduled v2 changes (``when``, §3.3) are not implemented: refuse rather than write now."""
    if body.get("when") is not None:
        raise bad_request("Unknown error", "Scheduling changes to v2 releases is not supported")


def _write(s, table: str, key: dict, values: dict, old: Any, method: str) -> int:
    try:
        return s.update(table, key, values, old, merge=False)
    except StaleVersion:
        raise outdated(method) from None


# --- resources -----------------------------------------------------------------------------------
def _named(responder):
    def checked(req, resp, name, **params):
        if not name:
            raise route_not_found()
        return responder(req, resp, name, **params)
    return checked


class ReleaseList(Resource):
    """``GET /v2/releases``."""

    def on_get(self, req, resp):
        check_query(req, ("names_only",))
        with self.ctx.reading() as s:
            bases = s.rows(BASE, order_by=["name"])
            if "names_only" in req.params:
                send_json(resp, [b["name"] for b in bases])
                return
            out = []
            for base in bases:
                name = base["name"]
                rules = sorted(s.rows("rules", {"mapping": name}) + [
                    r for r in s.rows("rules", {"fallbackMapping": name}) if r.get("mapping") != name],
                    key=lambda r: r["rule_id"])
                out.append({
                    "name": name, "product": base["product"], "data_version": base["data_version"],
                    "read_only": bool(base["read_only"]),
                    "rule_info": {str(r["rule_id"]): {"product": r["product"], "channel": r["channel"]}
                                  for r in rules},
                    "required_signoffs": signoffs.for_rules(s, rules),
                    "product_required_signoffs": signoffs.for_product(s, base["product"]),
                    "scheduled_changes": [],
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
            if base is None:
                raise not_found(RELEASE_MISSING)
            send_json(resp, {"blob": release_blob(base, assets), "data_versions": release_tree(base, assets),
                             "sc_blob": {}, "sc_data_versions": {}})

    def on_put(self, req, resp, name):
        check_query(req)
        user = self.ctx.user(req)
        body = json_object(req)
        blob = _require_object(body, "blob")
        _no_when(body)
        old_versions = body.get("old_data_versions") or {}
        product = body.get("product")
        with self.ctx.writing(user) as s:
            grants = permissions.load(s, user)
            base, assets = load(s, name)
            new_base, new_assets = split_blob(blob)
            if base is None:
                permissions.require(grants, "release", "create", [product],
                                    f"{user} is not allowed to create {{product}} releases")
                _validate(self.ctx, blob, product)
                s.insert(BASE, {"name": name, "product": product, "read_only": False, "data": new_base})
                for path, data in new_assets.items():
                    s.insert(ASSETS, {"name": name, "path": path, "data": data})
                send_json(resp, tree(1, dict.fromkeys(new_assets, 1)))
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
            if base_changed or changed_assets or removed:
                _check_signoffs(s, name)
            versions: dict[str, Any] = {}
            base_version = None
            if base_changed:
                base_version = _write(s, BASE, {"name": name}, {"data": new_base, "product": product},
                                      tree_version(old_versions, "."), "PUT")
            for path in changed_assets:
                if path in current:
                    old = tree_version(old_versions, path)
                    if old is None:
                        raise unknown_error(f"Missing data_version for {path}")
                    versions[path] = _write(s, ASSETS, {"name": name, "path": path}, {"data": new_assets[path]},
                                            old, "PUT")
                else:
                    s.insert(ASSETS, {"name": name, "path": path, "data": new_assets[path]})
                    versions[path] = 1
            for path in removed:
                s.delete(ASSETS, {"name": name, "path": path}, current[path]["data_version"])
        send_json(resp, tree(base_version, versions))

    def on_post(self, req, resp, name):
        check_query(req)
        user = self.ctx.user(req)
        body = json_object(req)
        partial = _require_object(body, "blob")
        _required(body, "old_data_versions")
        _no_when(body)
        old_versions = body.get("old_data_versions") or {}
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
            new_base = deep_merge(base["data"], base_part) if base_part else base["data"]
            new_assets = {p: deep_merge(current[p]["data"], d) if p in current else d for p, d in asset_part.items()}
            for path in new_assets:
                if path in current and tree_version(old_versions, path) is None:
                    raise unknown_error(f"Missing data_version for {path}")
            full = join_blob(new_base, {**{p: a["data"] for p, a in current.items()}, **new_assets})
            _validate(self.ctx, full, product)
            _check_signoffs(s, name)
            base_version = None
            if base_part:
                base_version = _write(s, BASE, {"name": name}, {"data": new_base}, tree_version(old_versions, "."),
                                      "POST")
            versions: dict[str, Any] = {}
            for path, data in new_assets.items():
                if path in current:
                    versions[path] = _write(s, ASSETS, {"name": name, "path": path}, {"data": data},
                                            tree_version(old_versions, path), "POST")
                else:
                    s.insert(ASSETS, {"name": name, "path": path, "data": data})
                    versions[path] = 1
        send_json(resp, tree(base_version, versions))

    def on_delete(self, req, resp, name):
        check_query(req)
        user = self.ctx.user(req)
        with self.ctx.writing(user) as s:
            base, assets = load(s, name)
            if base is None:
                raise not_found(RELEASE_MISSING)
            grants = permissions.load(s, user)
            permissions.require(grants, "release", "delete", [base["product"]],
                                f"{user} is not allowed to delete {{product}} releases")
            if base["read_only"]:
                raise _read_only("delete")
            if s.count("rules", {"mapping": name}) or s.count("rules", {"fallbackMapping": name}):
                raise unknown_error(f"Cannot delete release that is mapped to by rules: {name}")
            if s.count("pinnable_releases", {"mapping": name}):
                raise unknown_error("Cannot delete release that is pinnable")
            for asset in assets:
                s.delete(ASSETS, {"name": name, "path": asset["path"]}, asset["data_version"])
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
    """``PUT /v2/releases/<name>/read_only``."""

    def on_put(self, req, resp, name):
        check_query(req)
        user = self.ctx.user(req)
        body = json_object(req)
        _required(body, "read_only", "old_data_version")
        flag = body["read_only"]
        if not isinstance(flag, bool):
            raise Problem(400, "Bad Request", f"{json.dumps(flag)} is not of type 'boolean' - 'read_only'",
                          content_type=PROBLEM_JSON)
        with self.ctx.writing(user) as s:
            base = s.get(BASE, {"name": name})
            if base is None:
                raise Problem(404, "Missing", RELEASE_MISSING)
            grants = permissions.load(s, user)
            action = "unset" if flag else "set"  # the reverse of v1 (observed)
            permissions.require(grants, "release_read_only", action, [base["product"]],
                                f"{user} is not allowed to {action} read only releases for product {{product}}")
            if not flag and (signoffs.for_release(s, base["name"]) or signoffs.for_product(s, base["product"])):
                raise signoff_required("Signoff is required, cannot update Release directly")
            version = _write(s, BASE, {"name": name}, {"read_only": flag}, body["old_data_version"], "PUT")
        send_json(resp, {".": version})


# --- pins -------------------------------------------------------------------------------------------
def _version_key(value: Any) -> tuple:
    parts = re.findall(r"\d+|[a-z]+", str(value or ""))
    return tuple((0, int(p), "") if p.isdigit() else (-1, 0, p) for p in parts)


def _app_version(data: Mapping[str, Any] | None) -> Any:
    data = data or {}
    return data.get("appVersion") or data.get("appv") or data.get("version")


class Pinnable(Resource):
    """``PUT /v2/releases/<name>/pinnable``."""

    def on_put(self, req, resp, name):
        check_query(req)
        user = self.ctx.user(req)
        body = json_object(req)
        _required(body, "product", "channel", "version")
        _no_when(body)
        product, channel, version = body["product"], body["channel"], body["version"]
        with self.ctx.writing(user) as s:
            base = s.get(BASE, {"name": name})
            if base is None:
                raise not_found(RELEASE_MISSING)
            grants = permissions.load(s, user)
            key = {"product": product, "channel": channel, "version": version}
            pin = s.get("pinnable_releases", key)
            action, verb = ("modify", "modify") if pin is not None else ("create", "create")
            permissions.require(grants, "pinnable_release", action, [product],
                                f"{user} is not allowed to {verb} pinnable releases for product {{product}}")
            if pin is None:
                s.insert("pinnable_releases", {**key, "mapping": name})
                send_json(resp, {".": 1})
                return
            pinned = s.get(BASE, {"name": pin["mapping"]})
            if pinned is not None and pin["mapping"] != name and \
                    _version_key(_app_version(pinned["data"])) > _version_key(_app_version(base["data"])):
                send_json(resp, {"pin_not_set": True, "reason": "existing_pin_is_newer"})
                return
            new = _write(s, "pinnable_releases", key, {"mapping": name}, pin["data_version"], "PUT")
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
        ("/v2/releases/{name}/pinnable", Pinnable(ctx)),
        ("/v2/releases/{name}/{path}/data_version", AssetDataVersion(ctx)),
        ("/v2/pins/{product}/{channel}/{version}", Pin(ctx)),
    ]
