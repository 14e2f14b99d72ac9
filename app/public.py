"""The public update server: a falcon WSGI app over an :class:`~balrog_engine.Engine`.

``/update…`` and ``/json/…`` go straight to the engine's protocol (the hot path:
no database, no plugin calls); the read-only ``/api/v1`` views, Dockerflow
endpoints and static files are ordinary falcon resources. Every response gets
the security headers of public-api.md §2.
"""
from __future__ import annotations

import logging
from typing import Iterable

import falcon

from balrog_engine import Engine
from balrog_engine.query import decode_wsgi_path

from . import dockerflow, readonly_api
from .routing import empty_html_not_found, method_guard, not_found_sink, write

log = logging.getLogger("balrog.public")

class SecurityHeaders:
    """Middleware adding the headers every public response carries."""

    def __init__(self, engine: Engine):
        self.policy = engine.headers

    def process_response(self, req, resp, resource, req_succeeded):
        policy = self.policy
        resp.set_header("Strict-Transport-Security", policy.strict_transport_security)
        resp.set_header("X-Content-Type-Options", policy.content_type_options)
        if resp.get_header("Cache-Control") is None:
            resp.set_header("Cache-Control", policy.cache_control)
        resp.set_header("Content-Security-Policy", policy.content_security_policy)


class UpdateSink:
    """``/update…`` and ``/json/…``: handed to the engine's protocol untouched by falcon's routing."""

    def __init__(self, engine: Engine):
        self.protocol = engine.protocol

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_):
        if method_guard(req, resp):
            return
        path = decode_wsgi_path(req.env.get("PATH_INFO", ""))
        response = self.protocol.respond(path, req.env.get("QUERY_STRING", ""), req.env.get("HTTP_USER_AGENT", ""))
        write(resp, response)


class PublicApp:
    """Builds the falcon app; keeps the engine reachable for tests (``app.engine``)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        app = falcon.App(middleware=[SecurityHeaders(engine)])
        app.req_options.strip_url_path_trailing_slash = False
        app.resp_options.default_media_type = "application/json"
        # Sinks are consulted most-recently-added first; the catch-all goes in first.
        app.add_sink(not_found_sink, r"/")
        # The reference's API-document paths answer an empty HTML 404.
        app.add_sink(empty_html_not_found, r"^/debug/")
        update = UpdateSink(engine)
        app.add_sink(update, r"^/update")
        app.add_sink(update, r"^/json/")
        dockerflow.register(app, engine)
        readonly_api.register(app, engine)
        app.add_error_handler(falcon.HTTPNotFound, self._not_found)
        app.add_error_handler(falcon.HTTPMethodNotAllowed, self._method_not_allowed)
        self.wsgi = app

    @staticmethod
    def _not_found(req, resp, ex, params):
        not_found_sink(req, resp)

    @staticmethod
    def _method_not_allowed(req, resp, ex, params):
        method_guard(req, resp)

    def __call__(self, environ, start_response) -> Iterable[bytes]:
        return self.wsgi(environ, start_response)


def create_app(engine: Engine) -> PublicApp:
    return PublicApp(engine)
