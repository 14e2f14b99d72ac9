"""Reading admin requests the way the reference's validation layer does (admin-api.md §0.2):
JSON bodies, strict query parameters, and the few integer fields that also accept numeric
strings. Failures are the framework's ``application/problem+json`` 400s."""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

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


def query_value(req, name: str) -> str | None:
    """The last value of a query parameter (None when absent)."""
    value = req.params.get(name)
    if isinstance(value, list):
        value = value[-1] if value else None
    return value


INT64_MAX = 2**63 - 1


def query_int(req, name: str, default: int | None = None, minimum: int | None = None,
              maximum: int = INT64_MAX) -> int | None:
    """An integer query parameter (the framework's problem+json 400 when it is not one, or when
    it is out of range: no database could take it)."""
    value = query_value(req, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise invalid(f"'{value}' is not of type 'integer'") from None
    if minimum is not None and number < minimum:
        raise invalid(f"{number} is less than the minimum of {minimum}")
    if not -maximum - 1 <= number <= maximum:  # the column's range, for negative values too
        raise invalid(f"{number} is greater than the maximum of {maximum}" if number > 0 else
                      f"{number} is less than the minimum of {-maximum - 1}")
    return number


def check_encodable(value: Any, name: str = "body") -> None:
    """Refuse strings a database cannot store: JSON lets ``\\ud800`` (an unpaired surrogate)
    through, UTF-8 does not (the framework's 400 instead of a failure at write time)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid(f"{name}: {value!r} is not valid unicode") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_encodable(key, name)
            check_encodable(item, f"{name}.{key}" if isinstance(key, str) else name)
    elif isinstance(value, list):
        for item in value:
            check_encodable(item, name)


def require_query(req, names: Iterable[str]) -> dict[str, str]:
    """Required string query parameters, in order (the first missing one is the 400)."""
    found = {}
    for name in names:
        value = query_value(req, name)
        if value is None:
            raise invalid(f"Missing query parameter '{name}'")
        found[name] = value
    return found


def check_string(body: Mapping[str, Any], name: str, required: bool = True, nullable: bool = False,
                 max_length: int | None = None) -> None:
    """The body schema of one string member, with jsonschema's wording (problem+json 400)."""
    if name not in body:
        if required:
            raise invalid(f"'{name}' is a required property")
        return
    value = body[name]
    if value is None and nullable:
        return
    if not isinstance(value, str):
        raise invalid(f"{name}: {value!r} is not of type 'string'" + (", 'null'" if nullable else ""))
    if max_length is not None and len(value) > max_length:
        raise invalid(f"{name}: {value!r} is too long")


#: The query parameters of :func:`list_page`, for ``check_query``.
PAGING = ("page", "limit")

#: The largest page a list endpoint hands out in one answer.
MAX_PAGE = 10_000


def list_page(req, resp, items: list) -> list:
    """Opt-in paging of list endpoints (beyond the reference, whose lists are always whole):
    ``?limit=N`` (1..MAX_PAGE) and ``?page=P`` (from 1) select a slice; the answer then carries the
    total in ``X-Total-Count``. Without either parameter the whole list is answered, as recorded."""
    page = query_int(req, "page", None, minimum=1, maximum=INT32[1])
    limit = query_int(req, "limit", None, minimum=1, maximum=MAX_PAGE)
    if page is None and limit is None:
        return items
    page, limit = page or 1, limit or 100
    resp.set_header("X-Total-Count", str(len(items)))
    return items[(page - 1) * limit:page * limit]
