"""Dockerflow endpoints of the admin app (admin-api.md §10): ``/__lbheartbeat__``, ``/__heartbeat__``
and ``/__version__``. None of them authenticates.

``/__heartbeat__``: the reference increments the counter row of its ``dockerflow`` table (a real
write) and answers the new value. Our schema has no such table yet, so the heartbeat makes a real
read round trip through the storage and answers a counter kept by this app instance: 1, 2, … as
the reference on a fresh database, but per process and reset on restart. A ``dockerflow`` table
(and its migration) is needed for the reference's shared, persistent counter.
"""
from __future__ import annotations

import logging
import threading

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
    def __init__(self, ctx: AdminContext):
        super().__init__(ctx)
        self._lock = threading.Lock()
        self._count = 0

    def on_get(self, req, resp):
        resp.content_type = "text/html; charset=utf-8"
        try:
            with self.ctx.reading() as session:
                session.count("permissions")
        except Exception:  # any storage failure is the documented 502, never a 500
            log.exception("heartbeat: the database did not answer")
            resp.status = "502 Bad Gateway"
            resp.text = "Can't connect to the database."
            return
        with self._lock:
            self._count += 1
            value = self._count
        resp.set_header("Cache-Control", "public, max-age=60")
        resp.text = str(value)


class Version(Resource):
    def on_get(self, req, resp):
        send_json(resp, dict(self.ctx.version) if self.ctx.version is not None else DEFAULT_VERSION)


def routes(ctx: AdminContext) -> list:
    return [("/__lbheartbeat__", LbHeartbeat(ctx)), ("/__heartbeat__", Heartbeat(ctx)),
            ("/__version__", Version(ctx))]
