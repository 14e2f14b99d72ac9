"""Superblobs, schema_version 4000 (blob-types.md §7, rule-matching.md §10).

A superblob has no downloads of its own; it aggregates the inner XML lines of
other releases inside one ``<addons>`` element (always present, even empty):

* ``products`` (GMP style): each product is evaluated through the rules as if
  the client had asked for it — shutoffs, throttling, serve check, pins — and
  the winner is rendered with that per-product query and its rule's
  ``update_type``;
* ``blobs`` (system add-ons style): each named release is rendered directly,
  with the query's product replaced by the product column the release is
  stored under (that is what the allowlist is checked against), and the
  superblob rule's ``update_type``.

Members that are missing, yield nothing, are themselves superblobs, or are
JSON-only blob types contribute nothing: the reference crashes (500) on
those; we keep answering.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from marshmallow import ValidationError, fields, validate, validates_schema

from balrog_engine import (
    ADDONS_FOOTER,
    ADDONS_HEADER,
    AddonListBlob,
    BlobType,
    Release,
    RenderContext,
    StrictSchema,
    UpdateQuery,
    XmlParts,
    hookimpl,
    name_field,
    product_field,
    schema_version_field,
)


def _names_field() -> fields.List:
    return fields.List(fields.String(validate=validate.Length(min=1, max=100)))


class SuperBlobSchema(StrictSchema):
    name = name_field()
    schema_version = schema_version_field(4000)
    product = product_field()
    products = _names_field()
    blobs = _names_field()

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def exactly_one_shape(self, data, original, **kwargs):
        # The original document: a field that failed its own checks is absent from ``data``.
        if ("products" in original) == ("blobs" in original):
            raise ValidationError("exactly one of 'products' or 'blobs' is required")


def _member_lines(release: Release, query: UpdateQuery, update_type: str | None,
                  ctx: RenderContext) -> tuple[str, ...]:
    """Inner lines of one aggregated release, or none for members that cannot contribute."""
    blob = release.blob
    if blob.content != "xml" or isinstance(blob, SuperBlob):
        return ()  # nesting would recurse (maybe forever); JSON blobs have no XML
    return blob.render_xml(query, update_type, ctx).lines


def _with_product(query: UpdateQuery, product: str | None) -> UpdateQuery:
    # replace() re-runs __post_init__; skip it on the common path where nothing changes.
    return query if product == query.product else query.replace(product=product)


class SuperBlob(BlobType):
    """Always served; resolves its members per request (their answers depend on the query)."""

    schema_version = 4000
    content = "xml"
    schema = SuperBlobSchema

    def __init__(self, name: str, data: Mapping[str, Any]):
        super().__init__(name, data)
        self._products: tuple[str, ...] = tuple(data.get("products") or ())
        self._blobs: tuple[str, ...] = () if self._products else tuple(data.get("blobs") or ())

    def referenced_releases(self) -> Iterable[str]:
        """The ``blobs`` members are loaded by name, so the snapshot must hold them. Product
        members are reached through rules, whose mappings the snapshot loads anyway."""
        return self._blobs

    def render_xml(self, query: UpdateQuery, update_type: str | None, ctx: RenderContext) -> XmlParts:
        lines: list[str] = []
        for member_lines in self._resolve(query, update_type, ctx):
            lines.extend(member_lines)
        return XmlParts(ADDONS_HEADER, tuple(lines), ADDONS_FOOTER)

    def _resolve(self, query: UpdateQuery, update_type: str | None, ctx: RenderContext) -> Iterator[tuple[str, ...]]:
        for product in self._products:
            product_query = _with_product(query, product)
            evaluation = ctx.evaluate(product_query)
            if evaluation.release is not None:
                yield _member_lines(evaluation.release, product_query, evaluation.update_type, ctx)
        for name in self._blobs:
            release = ctx.release(name)
            if release is None:
                continue
            if isinstance(release.blob, AddonListBlob):
                # Fast path: add-on lines need only the product, not a whole new query.
                yield release.blob.addon_lines(query.buildTarget, release.product, ctx)
            else:
                yield _member_lines(release, _with_product(query, release.product), update_type, ctx)


@hookimpl
def balrog_blob_types():
    return [SuperBlob]
