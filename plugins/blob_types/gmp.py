"""GMP (Gecko Media Plugins) blobs, schema_version 1000 (blob-types.md §5).

A GMP release lists plugins ("vendors": OpenH264, Widevine, …), each with one
download per build target. The answer is always an ``<addons>`` element with
one ``<addon>`` per vendor that has a download for the client's build target
on an allowlisted host. The add-on index and rendering are the core's
(:mod:`balrog_engine.addons`), shared with SystemAddons blobs.
"""
from __future__ import annotations

from marshmallow import fields

from balrog_engine import (
    ADDONS_FOOTER,
    ADDONS_HEADER,
    AddonFileSchema,
    AddonListBlob,
    KeyedMap,
    PlatformEntry,
    RenderContext,
    StrictSchema,
    UpdateQuery,
    XmlParts,
    hookimpl,
    name_field,
    product_field,
    schema_version_field,
    uri_field,
)


# --- schema ------------------------------------------------------------------------------------

class GMPFileSchema(AddonFileSchema):
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


# --- the blob type -------------------------------------------------------------------------------

class GMPBlob(AddonListBlob):
    """Always served; renders the vendors available for the client's build target."""

    schema_version = 1000
    content = "xml"
    schema = GMPSchema
    addons_field = "vendors"
    with_mirrors = True

    def render_xml(self, query: UpdateQuery, update_type: str | None, ctx: RenderContext) -> XmlParts:
        return XmlParts(ADDONS_HEADER, self.addon_lines(query.buildTarget, query.product, ctx), ADDONS_FOOTER)


@hookimpl
def balrog_blob_types():
    return [GMPBlob]
