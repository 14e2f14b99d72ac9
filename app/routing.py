"""Responses shared by every public route: OPTIONS, 405 and the reference's 404 text."""
from __future__ import annotations

import json

import falcon

from balrog_engine.responses import NOT_FOUND_TEXT, PROBLEM_TYPE, TEXT_TYPE, Response

ALLOWED_METHODS = ("OPTIONS", "HEAD", "GET")
ALLOW_HEADER = ", ".join(ALLOWED_METHODS)
METHOD_NOT_ALLOWED = json.dumps(
    {"detail": "The method is not allowed for the requested URL.", "status": 405, "title": "Method Not Allowed",
     "type": "about:blank"}, indent=2, sort_keys=True) + "\n"


def write(resp: falcon.Response, response: Response) -> None:
    resp.status = response.status
    if response.content_type:
        resp.content_type = response.content_type
    for name, value in response.headers:
        resp.set_header(name, value)
    resp.data = response.body


def method_guard(req: falcon.Request, resp: falcon.Response) -> bool:
    """Shared OPTIONS/405 handling; True when the request was fully answered."""
    if req.method == "OPTIONS":
        resp.status = 200
        resp.set_header("Allow", ALLOW_HEADER)
        resp.content_type = "text/html; charset=utf-8"
        resp.data = b""
        return True
    if req.method not in ALLOWED_METHODS:
        resp.status = 405
        resp.set_header("Allow", ALLOW_HEADER)
        resp.content_type = PROBLEM_TYPE
        resp.data = METHOD_NOT_ALLOWED.encode()
        return True
    return False


def not_found_sink(req: falcon.Request, resp: falcon.Response, **_):
    resp.status = 404
    resp.content_type = TEXT_TYPE
    resp.data = NOT_FOUND_TEXT.encode()


def empty_html_not_found(req: falcon.Request, resp: falcon.Response, **_):
    resp.status = 404
    resp.content_type = "text/html; charset=utf-8"
    resp.data = b""
