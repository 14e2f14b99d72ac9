"""Reading admin requests the way the reference's validation layer does (admin-api.md §0.2):
JSON bodies, strict query parameters, and the few integer fields that also accept numeric
strings. Failures are the framework's ``application/problem+json`` 400s."""
from __future__ import annotations

import json
from typing import Any, Iterable

import falcon

from .problems import invalid

INT32 = (-(2**31), 2**31 - 1)

#: A body larger than this is refused (413) before it is parsed.
DEFAULT_MAX_BODY = 10 * 1024 * 1024


def json_body(req: falcon.Request) -> Any:
    """The request's JSON document (None for an empty body). Bodies over the app's limit
    (``AdminContext.max_body_bytes``, put on ``req.context`` by the app) are refused with 413."""
    max_bytes = getattr(req.context, "max_body_bytes", DEFAULT_MAX_BODY)
    length = req.content_length or 0
    if length > max_bytes:
        raise falcon.HTTPContentTooLarge(description=f"request bodies are limited to {max_bytes} bytes")
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise falcon.HTTPContentTooLarge(description=f"request bodies are limited to {max_bytes} bytes")
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("Request body is not valid JSON") from None


def json_object(req: falcon.Request) -> dict:
    """The body, which must be a JSON object."""
    body = json_body(req)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise invalid(f"{json.dumps(body)} is not of type 'object'")
    return body


def check_query(req: falcon.Request, allowed: Iterable[str] = ()) -> None:
    """Strict query validation: any parameter the operation does not declare is a 400 (whose
    title is null, as recorded)."""
    extra = sorted(set(req.params) - set(allowed))
    if extra:
        raise invalid(f"Extra query parameter(s) {', '.join(extra)} not in spec", title=None)


def required_query_int(req: falcon.Request, name: str) -> int:
    """A required integer query parameter (``?data_version=N`` on deletes)."""
    value = req.params.get(name)
    if value is None:
        raise invalid(f"Missing query parameter '{name}'")
    if isinstance(value, list):
        value = value[-1]
    try:
        number = int(value)
    except ValueError:
        raise invalid(f"'{value}' is not of type 'integer'") from None
    if not INT32[0] <= number <= INT32[1]:  # no database column holds it: refuse before it reaches one
        raise invalid(f"{name}: {number} is out of range")
    return number


def integer_like(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """The fields that take a JSON integer or a numeric string (priority, backgroundRate, …)."""
    if isinstance(value, bool):
        raise invalid(f"Invalid input for {name}. Not an integer. {name}: {value!r} is not a '{name}'")
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise invalid(f"Invalid input for {name}. Not an integer. {name}: {value!r} is not a '{name}'") \
                from None
    if not isinstance(value, int):
        raise invalid(f"{name}: {value!r} is not of type 'integer'")
    if minimum is not None and value < minimum:
        raise invalid(f"{name} field value should be an integer >= {minimum} {name}: {value} is not a '{name}'")
    if maximum is not None and value > maximum:
        raise invalid(f"{name} field value should be an integer <= {maximum} {name}: {value} is not a '{name}'")
    return value
