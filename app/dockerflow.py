"""Dockerflow endpoints and static files (public-api.md §7, §8)."""
from __future__ import annotations

import hashlib
import json
from email.utils import formatdate
from pathlib import Path

import falcon

STATIC = Path(__file__).parent / "static"
DEFAULT_VERSION = json.dumps(
    {"commit": "unknown", "source": "https://github.com/mozilla-releng/balrog", "version": "unknown"},
    separators=(",", ":"), sort_keys=True) + "\n"


class Heartbeat:
    """Healthy when storage answers and the snapshot is fresh; the body counts the rules served."""

    def __init__(self, engine):
        self.engine = engine

    def on_get(self, req, resp):
        resp.set_header("Cache-Control", "public, max-age=60")
        resp.content_type = "text/html; charset=utf-8"
        holder = self.engine.holder
        if not self.engine.storage.ping() or holder.last_error:
            resp.status = 502
            resp.data = b"Can't connect to the database."
            return
        resp.data = str(len(holder.current)).encode()

    on_head = on_get


class LbHeartbeat:
    def on_get(self, req, resp):
        resp.set_header("Cache-Control", "no-cache")
        resp.content_type = "text/html; charset=utf-8"
        resp.data = b"OK!"

    on_head = on_get


class Version:
    def __init__(self, path: str):
        self.path = Path(path)

    def on_get(self, req, resp):
        resp.content_type = "application/json"
        if self.path.is_file():
            resp.set_header("Cache-Control", "no-cache")
            resp.data = self.path.read_bytes()
        else:
            resp.data = DEFAULT_VERSION.encode()

    on_head = on_get


class StaticFile:
    """A small file served with validators, so caches and conditional GETs work."""

    def __init__(self, name: str, content_type: str):
        self.data = (STATIC / name).read_bytes()
        self.name = name
        self.content_type = content_type
        self.etag = hashlib.sha1(self.data).hexdigest()
        self.last_modified = formatdate((STATIC / name).stat().st_mtime, usegmt=True)

    def on_get(self, req, resp):
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("Accept-Ranges", "bytes")
        resp.set_header("Content-Disposition", f"inline; filename={self.name}")
        resp.set_header("Last-Modified", self.last_modified)
        resp.etag = self.etag
        if req.if_none_match and self.etag in req.if_none_match:
            resp.status = 304  # no body, so no Content-Type either
            return
        resp.content_type = self.content_type
        resp.data = self.data

    on_head = on_get


def register(app: falcon.App, engine) -> None:
    app.add_route("/__heartbeat__", Heartbeat(engine))
    app.add_route("/__lbheartbeat__", LbHeartbeat())
    app.add_route("/__version__", Version(engine.settings.version_file))
    app.add_route("/robots.txt", StaticFile("robots.txt", "text/plain; charset=utf-8"))
    app.add_route("/contribute.json", StaticFile("contribute.json", "application/json"))
