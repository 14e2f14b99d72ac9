"""Guardian (Mozilla VPN client) blobs, schema_version 10000 — JSON only (blob-types.md §8).

Served on ``/json``: one JSON object naming the offered version and the
download for the client's build target. Versions are compared as *loose*
versions (rule-matching.md §11.2). Through ``/update`` the base class's
``render_xml`` answers 400 "Wrong blob type", as the reference does.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from marshmallow import fields

from balrog_engine import (
    BlobType,
    KeyedMap,
    RenderContext,
    Serve,
    StrictBoolean,
    StrictSchema,
    UpdateQuery,
    hookimpl,
    name_field,
    parse_loose,
    product_field,
    schema_version_field,
    uri_field,
)

FORBIDDEN_BODY = "{}"


class GuardianPlatformSchema(StrictSchema):
    fileUrl = uri_field(required=True)
    hashValue = fields.String(required=True)


class GuardianSchema(StrictSchema):
    name = name_field()
    schema_version = schema_version_field(10000)
    product = product_field(required=True)
    version = fields.String(required=True)
    required = StrictBoolean()
    hashFunction = fields.String(required=True)
    platforms = KeyedMap(fields.Nested(GuardianPlatformSchema), required=True)


def _response_body(data: Mapping[str, Any], platform: Mapping[str, Any]) -> str:
    """The exact body the reference's ``json.dumps`` produces: fixed key order, ``", "`` and
    ``": "`` separators, non-ASCII escaped."""
    return json.dumps({
        "version": data["version"],
        "url": platform["fileUrl"],
        "required": data["required"],
        "hashFunction": data["hashFunction"],
        "hashValue": platform["hashValue"],
    })


def _prepare_platforms(data: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """``{build target: (fileUrl, body)}`` for every platform that can be rendered.

    A blob without ``required`` (or a platform missing a field) makes the reference crash
    while rendering; such platforms are left out, which turns the answer into "no update".
    """
    platforms = data.get("platforms")
    if not isinstance(platforms, Mapping) or any(k not in data for k in ("version", "required", "hashFunction")):
        return {}
    prepared = {}
    for target, platform in platforms.items():
        if isinstance(platform, Mapping) and "fileUrl" in platform and "hashValue" in platform:
            prepared[target] = (platform["fileUrl"], _response_body(data, platform))
    return prepared


class GuardianBlob(BlobType):
    """Served when the client's build target is listed and its loose version is older."""

    schema_version = 10000
    content = "json"
    schema = GuardianSchema

    def __init__(self, name: str, data: Mapping[str, Any]):
        super().__init__(name, data)
        self._platforms = _prepare_platforms(data)
        version = data.get("version")
        self._version = parse_loose(version) if isinstance(version, str) else None

    @classmethod
    def merge_conflict(cls, path: tuple, base, ours, theirs) -> bool | None:
        # fileUrl and hashValue describe one file: one writer's URL with the other's hash
        # would be an installer that fails its hash check.
        if len(path) == 2 and path[0] == "platforms":
            return True
        return None

    def should_serve(self, query: UpdateQuery, ctx: RenderContext) -> Serve:
        if query.buildTarget not in self._platforms or self._version is None:
            return Serve.NO
        try:
            newer = parse_loose(query.version) < self._version
        except TypeError:
            # An int component met a str component: the reference 500s; not comparable = no update.
            return Serve.NO
        return Serve.YES if newer else Serve.NO

    def render_json(self, query: UpdateQuery, ctx: RenderContext) -> str:
        prepared = self._platforms.get(query.buildTarget)
        if prepared is None:
            return FORBIDDEN_BODY
        url, body = prepared
        return FORBIDDEN_BODY if ctx.is_forbidden(url, query.product) else body


@hookimpl
def balrog_blob_types():
    return [GuardianBlob]
