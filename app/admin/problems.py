"""The admin API's error bodies (admin-api.md §0.3): RFC 7807-style problems, exactly as the
reference sends them.

Two families reach the wire with different content types, and clients (and the recorded
transcripts) tell them apart: errors Balrog's views raise itself are ``application/json``
with keys ``type, title, detail, status[, exception]``; errors of its request-validation
framework (schema errors, unknown routes, undeclared methods, strict query parameters) are
``application/problem+json``. A :class:`Problem` carries which one it is.
"""
from __future__ import annotations

from typing import Any

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"

_ABSENT = object()

NOT_FOUND_ROUTE = ("The requested URL was not found on the server. If you entered the URL manually please check "
                   "your spelling and try again.")
METHOD_NOT_ALLOWED = "The method is not allowed for the requested URL."


class Problem(Exception):
    """An error answer. Raise it anywhere in a responder; the app renders it."""

    def __init__(self, status: int, title: str | None, detail: Any, exception: Any = _ABSENT,
                 content_type: str = JSON):
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.exception = exception
        self.content_type = content_type

    @property
    def body(self) -> dict:
        body = {"type": "about:blank", "title": self.title, "detail": self.detail, "status": self.status}
        if self.exception is not _ABSENT:
            body["exception"] = self.exception
        return body


# --- Balrog's own errors (application/json) ----------------------------------------------------------
def bad_request(detail: Any, exception: Any = _ABSENT) -> Problem:
    return Problem(400, "Bad Request", detail, exception)


def unknown_error(message: str) -> Problem:
    """A ValueError the views do not catch themselves (§0.3: "any other ValueError")."""
    return Problem(400, "Bad Request", "Unknown error", message)


def not_found(detail: Any, exception: Any = _ABSENT, content_type: str = JSON) -> Problem:
    return Problem(404, "Not Found", detail, exception, content_type)


def forbidden(message: str) -> Problem:
    """A failed permission check: ``<user> is not allowed to …``."""
    return Problem(403, "Forbidden", "Permission Denied", message)


def outdated(method: str) -> Problem:
    """A stale ``data_version`` that cannot be merged (OutdatedDataError)."""
    return bad_request("OutdatedDataError", f"Couldn't perform the request {method}. Outdated Data Version. "
                                            "old_data_version doesn't match current data_version")


def signoff_required(message: str) -> Problem:
    return bad_request("Signoff Required", message)


# --- the validation framework's errors (application/problem+json) ---------------------------------
def invalid(detail: str, title: str | None = "Bad Request") -> Problem:
    """A request that fails its schema (body, path or query parameters)."""
    return Problem(400, title, detail, content_type=PROBLEM_JSON)


def route_not_found() -> Problem:
    return Problem(404, "Not Found", NOT_FOUND_ROUTE, content_type=PROBLEM_JSON)


def method_not_allowed() -> Problem:
    return Problem(405, "Method Not Allowed", METHOD_NOT_ALLOWED, content_type=PROBLEM_JSON)
