"""A third-party blob type for balrog-engine: Squirrel update feeds.

Electron apps built with Squirrel poll a URL and expect either HTTP 204/404
("no update") or a JSON object ``{"url", "name", "notes", "pub_date"}``.
This plugin lets such an app be managed with Balrog rules: a release with
``"schema_version": 20000`` is served on ``/json/1/<product>/<version>/<platform>/<channel>/update.json``.
"""
import json

from marshmallow import Schema, fields, validate

from balrog_engine import BlobType, Serve, hookimpl, parse_loose

SCHEMA_VERSION = 20000


class PlatformSchema(Schema):
    url = fields.Url(required=True)


class SquirrelSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    schema_version = fields.Integer(required=True, validate=validate.Equal(SCHEMA_VERSION))
    product = fields.String()
    version = fields.String(required=True)
    notes = fields.String(load_default="")
    pub_date = fields.String(required=True)
    platforms = fields.Dict(keys=fields.String(), values=fields.Nested(PlatformSchema), required=True)


class SquirrelBlob(BlobType):
    schema_version = SCHEMA_VERSION
    content = "json"
    schema = SquirrelSchema

    def __init__(self, name, data):
        super().__init__(name, data)
        # Parse once; every request only does dict lookups and a comparison.
        self.version = parse_loose(data["version"])
        self.bodies = {
            platform: json.dumps({"url": entry["url"], "name": data["version"], "notes": data.get("notes", ""),
                                  "pub_date": data["pub_date"]})
            for platform, entry in data["platforms"].items()
        }
        self.urls = {platform: entry["url"] for platform, entry in data["platforms"].items()}

    def should_serve(self, query, ctx):
        if query.buildTarget not in self.bodies:
            return Serve.NO
        try:
            newer = parse_loose(query.version) < self.version
        except TypeError:  # "1.0a" vs "1.0.1": not comparable, so not an update
            return Serve.NO
        return Serve.YES if newer else Serve.NO

    def render_json(self, query, ctx):
        if ctx.is_forbidden(self.urls[query.buildTarget], query.product):
            return "{}"
        return self.bodies[query.buildTarget]


@hookimpl
def balrog_blob_types():
    return [SquirrelBlob]
