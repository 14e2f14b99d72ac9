"""Marshmallow building blocks for blob-type schemas.

For blob-type plugin authors, built-in and third-party alike: every name here is
re-exported by :mod:`balrog_engine`. They capture what the reference's JSON schemas
mean and marshmallow does not do by default:

* JSON types are taken literally — a boolean is ``true``/``false`` (not ``"yes"`` or
  ``1``), a number is a number (not ``"5"`` or ``true``) and keeps its int/float form,
  because the reference prints it back with ``%s``;
* objects with free-form keys (add-on ids, build targets, locales) report errors under
  the key itself, so :func:`~balrog_engine.flatten_errors` paths read like the
  document: ``vendors.gmp-widevinecdm.platforms.default.fileUrl``;
* unknown fields are refused (``additionalProperties: false``).

Example::

    from balrog_engine import (KeyedMap, PlatformEntry, StrictSchema, name_field,
                               schema_version_field, uri_field)

    class FileSchema(StrictSchema):
        fileUrl = uri_field(required=True)

    class MySchema(StrictSchema):
        name = name_field()
        schema_version = schema_version_field(20000)
        platforms = KeyedMap(PlatformEntry(FileSchema), required=True)
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from marshmallow import RAISE, Schema, ValidationError, fields, validate

__all__ = [
    "AliasSchema", "KeyedMap", "PlatformEntry", "StrictBoolean", "StrictNumber", "StrictSchema",
    "name_field", "product_field", "schema_version_field", "uri_field",
]


class StrictSchema(Schema):
    """Unknown fields are refused, as ``additionalProperties: false`` does in the reference."""

    class Meta:
        unknown = RAISE


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
    """A JSON boolean only (marshmallow's Boolean would also take ``"yes"`` or ``1``).

    ``allow_ints=True`` also accepts the integers ``0`` and ``1`` (loaded as bools), for
    legacy fields that real data stores that way.
    """

    def __init__(self, allow_ints: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.allow_ints = allow_ints

    def _deserialize(self, value: Any, attr, data, **kwargs):
        if isinstance(value, bool):
            return value
        if self.allow_ints and type(value) is int and value in (0, 1):
            return bool(value)
        raise ValidationError("Not a valid boolean.")


class AliasSchema(StrictSchema):
    """A platform entry that points at another platform of the same blob: ``{"alias": target}``."""

    alias = fields.String(required=True, validate=validate.Length(min=1))


class PlatformEntry(fields.Field):
    """A platform entry: either ``{"alias": target}`` (:class:`AliasSchema`) or ``entry_schema``.

    The presence of ``alias`` selects the shape, so the errors reported are those of the
    shape the author evidently meant rather than a union of both.
    """

    def __init__(self, entry_schema: type[Schema], **kwargs):
        super().__init__(**kwargs)
        self.entry_schema = entry_schema

    def _deserialize(self, value: Any, attr, data, **kwargs):
        schema = AliasSchema if isinstance(value, Mapping) and "alias" in value else self.entry_schema
        return schema().load(value)


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def uri_field(**kwargs) -> fields.String:
    """An absolute URI. Deliberately loose (scheme + no whitespace): the reference's
    ``format: uri`` check accepts hosts and paths that stricter URL validators refuse."""
    return fields.String(validate=validate.Regexp(_URI, error="Not a valid URI."), **kwargs)


def name_field() -> fields.String:
    """The blob's ``name``: required, 1–100 characters (the release-name column)."""
    return fields.String(required=True, validate=validate.Length(min=1, max=100))


def product_field(required: bool = False) -> fields.String:
    """The blob's ``product``: 1–100 characters, optional unless the blob type needs it."""
    return fields.String(required=required, validate=validate.Length(min=1, max=100))


def schema_version_field(version: int) -> fields.Integer:
    """``schema_version``: required, exactly ``version`` as a JSON integer (not ``4.0`` or ``"4"``)."""
    return fields.Integer(required=True, strict=True, validate=validate.Equal(version))
