"""SystemAddons blobs, schema_version 5000 (blob-types.md §6).

Like GMP without mirrors, with one twist that Firefox relies on: an empty
``<addons>`` element means "uninstall every system add-on", so a blob that
has nothing for the client renders *no* ``<addons>`` element at all (header
and footer are empty lines), unless it is an explicit ``uninstall`` blob.
"""
from __future__ import annotations

from typing import Any, Mapping

from marshmallow import ValidationError, fields, validates_schema

from balrog_engine import (
    ADDONS_FOOTER,
    ADDONS_HEADER,
    AddonFileSchema,
    AddonListBlob,
    KeyedMap,
    PlatformEntry,
    RenderContext,
    StrictBoolean,
    StrictSchema,
    UpdateQuery,
    XmlParts,
    hookimpl,
    name_field,
    product_field,
    schema_version_field,
)


class SystemAddonSchema(StrictSchema):
    version = fields.String(required=True)
    platforms = KeyedMap(PlatformEntry(AddonFileSchema))


class SystemAddonsSchema(StrictSchema):
    """Two shapes: ``uninstall`` without ``addons``, or ``addons``.

    The reference's schema refuses ``uninstall`` next to ``addons``, but its own fixtures
    (and recorded scenarios) store ``"uninstall": false`` there and it then behaves as
    false; we accept that harmless form and refuse only ``"uninstall": true`` with add-ons,
    which would be contradictory.
    """

    name = name_field()
    schema_version = schema_version_field(5000)
    product = product_field()
    hashFunction = fields.String()
    uninstall = StrictBoolean()
    addons = KeyedMap(fields.Nested(SystemAddonSchema))

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def one_shape(self, data, original, **kwargs):
        # The original document: a field that failed its own checks is absent from ``data``.
        if "addons" not in original and "uninstall" not in original:
            raise ValidationError("one of 'addons' or 'uninstall' is required", "addons")
        if "addons" in original and original.get("uninstall") is True:
            raise ValidationError("'uninstall': true cannot be combined with 'addons'", "uninstall")


class SystemAddonsBlob(AddonListBlob):
    """Always served; ``<addons>`` only when uninstalling or when some add-on is offered."""

    schema_version = 5000
    content = "xml"
    schema = SystemAddonsSchema
    addons_field = "addons"
    with_mirrors = False

    def __init__(self, name: str, data: Mapping[str, Any]):
        super().__init__(name, data)
        self._uninstall = bool(data.get("uninstall", False))

    def render_xml(self, query: UpdateQuery, update_type: str | None, ctx: RenderContext) -> XmlParts:
        lines = self.addon_lines(query.buildTarget, query.product, ctx)
        if lines or self._uninstall:
            return XmlParts(ADDONS_HEADER, lines, ADDONS_FOOTER)
        return XmlParts("", (), "")


@hookimpl
def balrog_blob_types():
    return [SystemAddonsBlob]
