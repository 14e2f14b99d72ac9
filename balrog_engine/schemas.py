"""marshmallow schemas for the core's own records: rules, pins, emergency shutoffs, datasets.

Blob schemas belong to their blob-type plugins; this module validates what the core itself owns.
"""
from __future__ import annotations

from marshmallow import fields, validate

from .blob_fields import StrictSchema

_ALIAS = validate.Regexp(r"^[a-zA-Z][a-zA-Z0-9-]*$", error="must start with a letter and contain only letters, digits and '-'")


def _string(length: int, **kw):
    return fields.String(allow_none=True, validate=validate.Length(max=length), **kw)


class RuleSchema(StrictSchema):
    rule_id = fields.Integer(required=True, strict=True)
    alias = fields.String(allow_none=True, validate=[validate.Length(max=50), _ALIAS])
    priority = fields.Integer(required=True, strict=True)
    mapping = _string(100)
    fallbackMapping = _string(100)
    backgroundRate = fields.Integer(required=True, strict=True, validate=validate.Range(0, 100))
    update_type = fields.String(required=True, validate=validate.OneOf(["minor", "major"]))
    product = _string(100)
    version = _string(75)
    channel = _string(75)
    buildTarget = _string(75)
    buildID = _string(20)
    locale = _string(200)
    osVersion = _string(1000)
    memory = _string(100)
    instructionSet = _string(1000)
    jaws = fields.Boolean(allow_none=True)
    mig64 = fields.Boolean(allow_none=True)
    distribution = _string(2000)
    distVersion = _string(100)
    headerArchitecture = _string(10)
    comment = _string(500)
    data_version = fields.Integer(strict=True, load_default=1)


class PinSchema(StrictSchema):
    product = fields.String(required=True, validate=validate.Length(min=1, max=100))
    channel = fields.String(required=True, validate=validate.Length(min=1, max=75))
    version = fields.String(required=True, validate=validate.Regexp(r"^\d+\.(\d+\.)?$", error="must look like 102. or 102.1."))
    mapping = fields.String(required=True, validate=validate.Length(min=1, max=100))
    data_version = fields.Integer(strict=True, load_default=1)


class ShutoffSchema(StrictSchema):
    product = fields.String(required=True, validate=validate.Length(min=1, max=100))
    channel = fields.String(required=True, validate=validate.Length(min=1, max=75))
    comment = fields.String(allow_none=True)
    data_version = fields.Integer(strict=True, load_default=1)


class ReleaseRecordSchema(StrictSchema):
    """The envelope of a release in a dataset; the blob itself is checked by its blob type.

    The blob's own ``name`` may differ from the release name: the reference stores such
    releases (recorded scenarios have them), so datasets must load them."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    product = fields.String(allow_none=True, validate=validate.Length(max=100))
    data = fields.Dict(required=True)
    data_version = fields.Integer(strict=True, load_default=1)
    read_only = fields.Boolean(load_default=False)


class ConfigSchema(StrictSchema):
    allowlisted_domains = fields.Dict(keys=fields.String(), values=fields.Raw())
    special_force_hosts = fields.List(fields.String())
