"""The admin application: a falcon WSGI app over a storage, the plugin registry and a token
verifier (admin-api.md).

Each family of endpoints is a module of this package exposing ``routes(ctx) -> [(path,
resource)]``; this module only assembles them and owns what every response shares: the
security and CORS headers (§0.6), the error bodies (§0.3, :mod:`.problems`), authentication
(:mod:`.auth`), and the framework answers for unknown routes (404) and undeclared methods
(405). Every write runs in one storage session: if the responder raises, nothing is written.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import falcon

from balrog_engine import PluginRegistry, Session, Storage, VersionError

from . import auth, permissions
from .problems import PROBLEM_JSON, Problem, method_not_allowed, route_not_found

log = logging.getLogger("balrog.admin")

#: Route families: modules with ``routes(ctx)``. Each owns its endpoints.
FAMILIES: tuple[str, ...] = ("rules", "releases", "users", "shutoffs", "required_signoffs", "service",
                              "scheduled_changes", "releases_v2", "openapi", "explain")


@dataclass
class AdminContext:
    """What the admin endpoints need. ``system_accounts`` may never sign off;
    ``allowlisted_domains`` (download host -> products) is checked in release blobs."""

    storage: Storage
    registry: PluginRegistry
    verifier: auth.TokenVerifier
    system_accounts: frozenset[str] = frozenset()
    allowlisted_domains: Mapping[str, Iterable[str]] = field(default_factory=dict)
    cors_origins: tuple[str, ...] = ()
    strict_transport_security: str = "max-age=31536000;"
    version: Mapping[str, Any] | None = None
    max_body_bytes: int = 10 * 1024 * 1024
    #: The agent's accounts (``system_accounts``) may only enact changes whose ``when`` has come.
    #: False reproduces the reference, which lets them enact a change early (the recorded
    #: transcripts do), so replaying those recordings turns it off.
    enact_due_only_for_system_accounts: bool = True
    #: The public server's ``special_force_hosts`` setting, so explanations answer as it does
    #: (None: the ones stored with the data, as there).
    special_force_hosts: tuple[str, ...] | None = None

    def user(self, req: falcon.Request) -> str:
        """The authenticated username (401/403 :class:`~.auth.AuthFailure` otherwise)."""
        def known(username: str) -> bool:
            with self.storage.session() as session:
                return permissions.is_known_user(session, username)
        return auth.authenticate(req.get_header("Authorization"), self.verifier, known)

    def writing(self, username: str):
        """A write session attributed to ``username``: one transaction per request."""
        return self.storage.session(username)

    def reading(self):
        return self.storage.session()


class Resource:
    """Base of admin resources: HEAD answers like GET without a body, as the reference does."""

    def __init__(self, ctx: AdminContext):
        self.ctx = ctx

    def on_head(self, req, resp, **params):
        on_get = getattr(self, "on_get", None)
        if on_get is None:
            raise method_not_allowed()
        on_get(req, resp, **params)


class Headers:
    """Middleware: the headers every admin response carries (§0.6)."""

    def __init__(self, ctx: AdminContext):
        self.ctx = ctx

    def process_request(self, req, resp):
        req.context.max_body_bytes = self.ctx.max_body_bytes

    def process_response(self, req, resp, resource, req_succeeded):
        if req.method == "OPTIONS" and resp.status_code == 200:
            resp.content_type = "text/html; charset=utf-8"  # as the reference labels its empty answer
        resp.set_header("X-Frame-Options", "DENY")
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Strict-Transport-Security", self.ctx.strict_transport_security)
        resp.set_header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        resp.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        resp.set_header("Access-Control-Allow-Methods", "OPTIONS, GET, POST, PUT, DELETE")
        origins = self.ctx.cors_origins
        origin = req.get_header("Origin")
        if "*" in origins:
            resp.set_header("Access-Control-Allow-Origin", "*")
        elif origin and origin in origins:
            resp.set_header("Access-Control-Allow-Origin", origin)


def send_json(resp: falcon.Response, body: Any, status: int = 200, content_type: str = "application/json") -> None:
    resp.status = falcon.code_to_http_status(status)
    resp.content_type = content_type
    resp.text = json.dumps(body)


def send_html_json(resp: falcon.Response, body: Any, status: int = 200) -> None:
    """Many v1 writes answer JSON text labelled ``text/html; charset=utf-8`` (§0.4)."""
    send_json(resp, body, status, "text/html; charset=utf-8")


def send_empty(resp: falcon.Response, status: int = 200) -> None:
    resp.status = falcon.code_to_http_status(status)
    resp.content_type = "text/html; charset=utf-8"
    resp.text = ""


def _render_problem(req, resp, problem: Problem, params) -> None:
    resp.status = falcon.code_to_http_status(problem.status)
    resp.content_type = problem.content_type
    resp.text = json.dumps(problem.body, indent=2 if problem.content_type == PROBLEM_JSON else None)


def _render_auth(req, resp, failure: auth.AuthFailure, params) -> None:
    send_json(resp, failure.body, failure.status)


def _render_version_error(req, resp, error: VersionError, params) -> None:
    """A storage refusal no responder turned into its endpoint's text: still a precise 4xx."""
    send_json(resp, {"type": "about:blank", "title": falcon.code_to_http_status(error.status)[4:],
                     "detail": type(error).__name__, "status": error.status, "exception": str(error)},
              error.status)


def _render_http_error(req, resp, error: falcon.HTTPError, params) -> None:
    if error.status_code == 405:
        return _render_problem(req, resp, method_not_allowed(), params)
    if error.status_code == 404:
        return _render_problem(req, resp, route_not_found(), params)
    _render_problem(req, resp, Problem(error.status_code, error.title, error.description or error.title,
                                       content_type=PROBLEM_JSON), params)


def _render_unexpected(req, resp, error: Exception, params) -> None:
    log.exception("unexpected error in %s %s", req.method, req.path)
    send_json(resp, {"type": "about:blank", "title": "Internal Server Error", "detail": "Internal Server Error",
                     "status": 500}, 500)


def create_admin_app(ctx: AdminContext, families: Iterable[Callable[[AdminContext], list]] | None = None) -> falcon.App:
    """The admin WSGI app. ``families``: callables returning ``[(path, resource)]`` (default:
    every module in :data:`FAMILIES`)."""
    app = falcon.App(middleware=[Headers(ctx)], cors_enable=False)
    app.req_options.strip_url_path_trailing_slash = False
    app.req_options.auto_parse_qs_csv = False
    app.add_error_handler(Exception, _render_unexpected)
    app.add_error_handler(falcon.HTTPError, _render_http_error)
    app.add_error_handler(VersionError, _render_version_error)
    app.add_error_handler(auth.AuthFailure, _render_auth)
    app.add_error_handler(Problem, _render_problem)
    if families is None:
        import importlib
        families = [importlib.import_module(f"{__package__}.{name}").routes for name in FAMILIES]
    for routes in families:
        for path, resource in routes(ctx):
            app.add_route(path, resource)
    return app


__all__ = ["AdminContext", "Resource", "Session", "create_admin_app", "send_empty", "send_html_json", "send_json"]
