"""The public update server: a falcon WSGI app over an :class:`~balrog_engine.Engine`.

``/update…`` and ``/json/…`` go straight to the engine's protocol (the hot path:
no database, no plugin calls, and with the response cache usually one dict lookup);
the read-only ``/api/v1`` views, Dockerflow endpoints, metrics and static files are
ordinary falcon resources. Every response gets the security headers of public-api.md §2.
"""
from __future__ import annotations

import logging
import time
from typing import Iterable

import falcon

from balrog_engine import Engine
from balrog_engine.query import decode_wsgi_path

from . import dockerflow, readonly_api
from .observability import Metrics, MetricsResource
from .routing import ALLOW_HEADER, METHOD_NOT_ALLOWED, empty_html_not_found, method_guard, not_found_sink, write

access_log = logging.getLogger("balrog.access")

# Methods falcon would refuse with its own 400 before routing; the reference answers 405.
KNOWN_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "TRACE"})


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

    def __init__(self, engine: Engine, metrics: Metrics | None, log_access: bool):
        self.protocol = engine.protocol
        self.metrics = metrics
        self.log_access = log_access

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_):
        if method_guard(req, resp):
            return
        start = time.perf_counter()
        env = req.env
        path = decode_wsgi_path(env.get("PATH_INFO", ""))
        response = self.protocol.respond(path, env.get("QUERY_STRING", ""), env.get("HTTP_USER_AGENT", ""))
        write(resp, response)
        elapsed = time.perf_counter() - start
        if self.metrics is not None:
            self.metrics.observe(response.product, response.channel, response.outcome, elapsed)
        if self.log_access:
            access_log.info("request", extra={
                "method": req.method, "path": env.get("PATH_INFO", ""), "query": env.get("QUERY_STRING", ""),
                "status": response.status, "outcome": response.outcome, "product": response.product,
                "channel": response.channel, "rule_id": response.header("Rule-ID"),
                "duration_ms": round(elapsed * 1000, 3),
            })


class PublicApp:
    """Builds the falcon app; keeps the engine reachable for tests (``app.engine``)."""

    def __init__(self, engine: Engine, metrics: bool = True):
        self.engine = engine
        self.metrics = Metrics(engine) if metrics else None
        app = falcon.App(middleware=[SecurityHeaders(engine)])
        app.req_options.strip_url_path_trailing_slash = False
        # Sinks are consulted most-recently-added first; the catch-all goes in first.
        app.add_sink(not_found_sink, r"/")
        # The reference's API-document paths answer an empty HTML 404.
        app.add_sink(empty_html_not_found, r"^/debug/")
        update = UpdateSink(engine, self.metrics, engine.settings.access_log)
        app.add_sink(update, r"^/update")
        app.add_sink(update, r"^/json/")
        dockerflow.register(app, engine)
        readonly_api.register(app, engine)
        if self.metrics is not None:
            app.add_route("/__metrics__", MetricsResource(self.metrics))
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
        if environ.get("REQUEST_METHOD") not in KNOWN_METHODS:
            body = METHOD_NOT_ALLOWED.encode()
            start_response("405 Method Not Allowed", [
                ("Content-Type", "application/problem+json"), ("Content-Length", str(len(body))),
                ("Allow", ALLOW_HEADER), *self.engine.headers.apply([]),
            ])
            return [body]
        return self.wsgi(environ, start_response)


def create_app(engine: Engine, metrics: bool = True) -> PublicApp:
    return PublicApp(engine, metrics)
