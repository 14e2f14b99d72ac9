"""GMP (Gecko Media Plugins) blobs, schema_version 1000 (blob-types.md §5).

A GMP release lists plugins ("vendors": OpenH264, Widevine, …), each with one
download per build target. The answer is always an ``<addons>`` element with
one ``<addon>`` per vendor that has a download for the client's build target
on an allowlisted host.

This module also holds the pieces SystemAddons blobs (schema 5000) share with
GMP: the ``id → {version, platforms}`` schema building blocks and the
pre-rendered per-build-target add-on index.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from balrog_engine import BlobType, RenderContext, UpdateQuery, XmlParts, hookimpl

ADDONS_HEADER = "    <addons>"
ADDONS_FOOTER = "    </addons>"


# --- schema building blocks ------------------------------------------------------------------

class KeyedMap(fields.Field):
    """A JSON object with free-form keys (add-on ids, build targets) whose values share one shape.

    ``fields.Dict`` files value errors under an extra ``"value"`` level; this field files
    them under the key itself, so error paths read like the document:
    ``vendors.gmp-widevinecdm.platforms.default.fileUrl``.
    """

    def __init__(self, values: fields.Field, **kwargs):
        super().__init__(**kwargs)
        self.values = values

    def _deserialize(self, value: Any, attr, data, **kwargs):
        if not isinstance(value, Mapping):
            raise ValidationError("Not a valid mapping type.")
        out: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for key, item in value.items():
            try:
                out[key] = self.values.deserialize(item)
            except ValidationError as exc:
                errors[key] = exc.messages
        if errors:
            raise ValidationError(errors)
        return out


class StrictNumber(fields.Field):
    """A JSON number (int or float, never a bool or a numeric string), kept as given:
    the reference prints it with ``%s``, so ``5129`` and ``5129.0`` must stay distinct."""

    def _deserialize(self, value: Any, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("Not a valid number.")
        return value


class StrictBoolean(fields.Field):
    """A JSON boolean only (marshmallow's Boolean would also take ``"yes"`` or ``1``)."""

    def _deserialize(self, value: Any, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def uri_field(**kwargs) -> fields.String:
    """An absolute URI. Deliberately loose (scheme + no whitespace): the reference's
    ``format: uri`` check accepts hosts and paths that stricter URL validators refuse."""
    return fields.String(validate=validate.Regexp(_URI, error="Not a valid URI."), **kwargs)


def name_field() -> fields.String:
    return fields.String(required=True, validate=validate.Length(min=1, max=100))


def product_field(required: bool = False) -> fields.String:
    return fields.String(required=required, validate=validate.Length(min=1, max=100))


def schema_version_field(version: int) -> fields.Integer:
    return fields.Integer(required=True, strict=True, validate=validate.Equal(version))


class StrictSchema(Schema):
    """Unknown fields are refused, as ``additionalProperties: false`` does in the reference."""

    class Meta:
        unknown = RAISE


class AliasSchema(StrictSchema):
    alias = fields.String(required=True, validate=validate.Length(min=1))


class PlatformEntry(fields.Field):
    """A platform entry: either ``{"alias": target}`` or a download described by ``file_schema``.

    The presence of ``alias`` selects the shape, so the errors reported are those of the
    shape the author evidently meant rather than a union of both.
    """

    def __init__(self, file_schema: type[Schema], **kwargs):
        super().__init__(**kwargs)
        self.file_schema = file_schema

    def _deserialize(self, value: Any, attr, data, **kwargs):
        schema = AliasSchema if isinstance(value, Mapping) and "alias" in value else self.file_schema
        return schema().load(value)


class GMPFileSchema(StrictSchema):
    fileUrl = uri_field(required=True)
    filesize = StrictNumber(required=True)
    hashValue = fields.String(required=True)
    mirrorUrls = fields.List(uri_field())


class GMPVendorSchema(StrictSchema):
    version = fields.String(required=True)
    platforms = KeyedMap(PlatformEntry(GMPFileSchema))


class GMPSchema(StrictSchema):
    name = name_field()
    schema_version = schema_version_field(1000)
    product = product_field()
    hashFunction = fields.String(required=True)
    vendors = KeyedMap(fields.Nested(GMPVendorSchema), required=True)


# --- pre-rendered add-on index -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AddonFile:
    """One add-on download for one build target, with its ``<addon>`` line already formatted.

    Only the allowlist verdicts are left for request time: they depend on the query's product.
    """

    url: str
    mirrors: tuple[str, ...]
    line: str  # self-closing form: <addon …/>
    open_line: str  # form followed by <mirror> children: <addon …>


def _addon_lines(addon_id: str, entry: Mapping[str, Any], hash_function: Any, version: Any) -> tuple[str, str]:
    head = (
        f'        <addon id="{addon_id}" URL="{entry["fileUrl"]}" hashFunction="{hash_function}" '
        f'hashValue="{entry["hashValue"]}" size="{entry["filesize"]}" version="{version}"'
    )
    return head + "/>", head + ">"


def _resolve_platform(platforms: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    """The download entry for platform ``key``, following one ``alias`` hop.

    None when the entry is unusable (alias to a missing platform, alias chains, missing
    fields): the reference crashes on those; we leave the add-on out instead.
    """
    entry = platforms.get(key)
    if isinstance(entry, Mapping) and "alias" in entry:
        entry = platforms.get(entry["alias"])
        if isinstance(entry, Mapping) and "alias" in entry:
            return None
    if not isinstance(entry, Mapping) or not all(k in entry for k in ("fileUrl", "hashValue", "filesize")):
        return None
    return entry


def _addon_file(addon_id: str, entry: Mapping[str, Any] | None, hash_function: Any, version: Any,
                with_mirrors: bool) -> AddonFile | None:
    if entry is None or hash_function is None or version is None:
        return None
    line, open_line = _addon_lines(addon_id, entry, hash_function, version)
    mirrors = tuple(entry.get("mirrorUrls") or ()) if with_mirrors else ()
    return AddonFile(entry["fileUrl"], mirrors, line, open_line)


@dataclass(frozen=True, slots=True)
class AddonIndex:
    """Per build target, the candidate downloads in add-on id (code point) order.

    ``by_target`` has an entry for every build target named by any add-on; a target no
    add-on names gets ``fallback`` (the ``default`` downloads). A ``None`` candidate is never
    stored: add-ons whose specific entry is unusable are simply absent from that target's
    tuple — a specific entry hides ``default`` even when it cannot be served.
    """

    by_target: Mapping[str, tuple[AddonFile, ...]]
    fallback: tuple[AddonFile, ...]

    def candidates(self, build_target: str) -> tuple[AddonFile, ...]:
        return self.by_target.get(build_target, self.fallback)


def build_addon_index(addons: Mapping[str, Any] | None, hash_function: Any, with_mirrors: bool) -> AddonIndex:
    """Index ``{id: {"version", "platforms"}}`` once, so a request only filters by allowlist."""
    addons = addons if isinstance(addons, Mapping) else {}
    prepared: list[tuple[dict[str, AddonFile | None], AddonFile | None]] = []
    targets: set[str] = set()
    for addon_id in sorted(addons):
        info = addons[addon_id]
        platforms = info.get("platforms") if isinstance(info, Mapping) else None
        if not isinstance(platforms, Mapping):
            continue  # a vendor without platforms: the reference crashes; we skip it
        version = info.get("version")
        specific = {
            key: _addon_file(addon_id, _resolve_platform(platforms, key), hash_function, version, with_mirrors)
            for key in platforms
        }
        default = specific.get("default")
        targets.update(specific)
        prepared.append((specific, default))

    def for_target(target: str | None) -> tuple[AddonFile, ...]:
        chosen = (specific[target] if target in specific else default for specific, default in prepared)
        return tuple(f for f in chosen if f is not None)

    return AddonIndex({t: for_target(t) for t in targets}, for_target(None))


def render_addons(index: AddonIndex, build_target: str, product: str | None,
                  ctx: RenderContext) -> tuple[str, ...]:
    """The ``<addon>`` lines (with allowed ``<mirror>`` children) for one query."""
    forbidden = ctx.is_forbidden
    lines: list[str] = []
    for f in index.candidates(build_target):
        if forbidden(f.url, product):
            continue
        mirrors = [m for m in f.mirrors if not forbidden(m, product)] if f.mirrors else None
        if mirrors:
            lines.append(f.open_line)
            lines.extend(f'            <mirror URL="{m}"/>' for m in mirrors)
            lines.append("        </addon>")
        else:
            lines.append(f.line)
    return tuple(lines)


# --- the blob types ------------------------------------------------------------------------------

class AddonListBlob(BlobType):
    """Base of blob types whose inner lines depend on nothing but (build target, product).

    A ``blobs`` superblob renders each member for another product; with this it can ask
    for the lines directly instead of building a per-member :class:`UpdateQuery`.
    """

    _index: AddonIndex

    def addon_lines(self, build_target: str, product: str | None, ctx: RenderContext) -> tuple[str, ...]:
        return render_addons(self._index, build_target, product, ctx)


class GMPBlob(AddonListBlob):
    """Always served; renders the vendors available for the client's build target."""

    schema_version = 1000
    content = "xml"
    schema = GMPSchema

    def __init__(self, name: str, data: Mapping[str, Any]):
        super().__init__(name, data)
        self._index = build_addon_index(data.get("vendors"), data.get("hashFunction"), with_mirrors=True)

    def render_xml(self, query: UpdateQuery, update_type: str | None, ctx: RenderContext) -> XmlParts:
        return XmlParts(ADDONS_HEADER, self.addon_lines(query.buildTarget, query.product, ctx), ADDONS_FOOTER)


@hookimpl
def balrog_blob_types():
    return [GMPBlob]
