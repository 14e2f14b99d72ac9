"""The desupport blob, schema version 50 (blob-types.md §4).

Tells clients their platform is no longer supported: always served (no version
check, pins ignored), rendered as one ``<update unsupported="true">`` line whose
``detailsURL`` has the client's locale, version and OS substituted. The URL is
an information page, not a download, so the allowlist does not apply.
"""
from __future__ import annotations

from typing import Any, Mapping

from marshmallow import fields

from balrog_engine import (
    BlobType,
    Serve,
    StrictSchema,
    XmlParts,
    hookimpl,
    name_field,
    product_field,
    schema_version_field,
)


class DesupportSchema(StrictSchema):
    name = name_field()
    schema_version = schema_version_field(50)
    product = product_field()
    detailsUrl = fields.String(required=True)
    displayVersion = fields.String(required=True)


def details_url(template: str, locale: str, version: str, build_target: str) -> str:
    """Sequential substitution in the reference's order: upper-case placeholders, then lower-case."""
    os_name = build_target.split("_", 1)[0]
    for placeholder, value in (("%LOCALE%", locale), ("%VERSION%", version), ("%OS%", os_name),
                               ("%locale%", locale), ("%version%", version), ("%os%", os_name)):
        template = template.replace(placeholder, value)
    return template


class DesupportBlob(BlobType):
    schema_version = 50
    content = "xml"
    schema = DesupportSchema

    def __init__(self, name: str, data: Mapping[str, Any]):
        super().__init__(name, data)
        self._url = str(data.get("detailsUrl"))
        self._tail = f'" displayVersion="{data.get("displayVersion")}">'

    def should_serve(self, query, ctx) -> Serve:
        return Serve.YES

    def render_xml(self, query, update_type, ctx) -> XmlParts:
        url = details_url(self._url, str(query.locale), str(query.version), str(query.buildTarget))
        line = f'    <update type="{update_type}" unsupported="true" detailsURL="{url}{self._tail}'
        # The reference's header is empty (an empty line in the document) and its footer unindented.
        return XmlParts("", (line,), "</update>")


@hookimpl
def balrog_blob_types():
    return (DesupportBlob,)
