"""Dockerflow endpoints of the admin app (admin-api.md §10): ``/__lbheartbeat__``, ``/__heartbeat__``
and ``/__version__``. None of them authenticates.

``/__heartbeat__``: like the reference, a real write: it increments the counter of the database's
``dockerflow`` table (``Storage.heartbeat``), shared by every admin process, and answers the new
value; 502 when the database cannot take it.
"""
from __future__ import annotations

import logging

from .app import AdminContext, Resource, send_json

log = logging.getLogger("balrog.admin")

#: What the reference answers when no version file was deployed.
DEFAULT_VERSION = {"source": "https://github.com/mozilla-releng/balrog", "version": "unknown", "commit": "unknown"}


class LbHeartbeat(Resource):
    def on_get(self, req, resp):
        resp.set_header("Cache-Control", "no-cache")
        resp.content_type = "text/html; charset=utf-8"
        resp.text = "OK!"


class Heartbeat(Resource):
    def on_get(self, req, resp):
        resp.content_type = "text/html; charset=utf-8"
        try:
            value = self.ctx.storage.heartbeat()
        except Exception:  # any storage failure is the documented 502, never a 500
            log.exception("heartbeat: the database did not answer")
            resp.status = "502 Bad Gateway"
            resp.text = "Can't connect to the database."
            return
        resp.set_header("Cache-Control", "public, max-age=60")
        resp.text = str(value)


class Version(Resource):
    def on_get(self, req, resp):
        send_json(resp, dict(self.ctx.version) if self.ctx.version is not None else DEFAULT_VERSION)


def routes(ctx: AdminContext) -> list:
    return [("/__lbheartbeat__", LbHeartbeat(ctx)), ("/__heartbeat__", Heartbeat(ctx)),
            ("/__version__", Version(ctx))]
