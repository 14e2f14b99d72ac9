"""What the configured plugin types share: condition types, metrics sources and notifiers are
each a class with a ``name`` (the key configuration and scheduled changes use) and a marshmallow
``schema`` for its parameters, validated once when the object is made, so a bad parameter is
an error naming its field before anything runs."""
from __future__ import annotations

import urllib.parse
from typing import Any, ClassVar, Mapping

from marshmallow import ValidationError, fields


class Configurable:
    name: ClassVar[str] = ""
    schema: ClassVar[type | None] = None

    @classmethod
    def load(cls, values: Mapping[str, Any]) -> dict:
        """Validate and deserialise ``values``; raises marshmallow.ValidationError naming the field."""
        if cls.schema is None:
            return dict(values)
        return cls.schema().load(values)


class HttpUrl(fields.String):
    """An absolute ``http://`` or ``https://`` URL (where a plugin sends or fetches something)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        url = super()._deserialize(value, attr, data, **kwargs)
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValidationError("must be an http:// or https:// URL")
        return url
