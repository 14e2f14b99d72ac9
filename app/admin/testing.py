"""Helpers for tests that exercise the admin API: seed users without history, and serve the app
over real HTTP on 127.0.0.1.

    ctx = AdminContext(storage, registry, StaticTokens({"t-alice": "alice@example.com"}))
    seed(storage, permissions=[{"username": "alice@example.com", "permission": "admin", "options": None}])
    with serve(create_admin_app(ctx)) as base_url:
        ...  # http.client / requests against base_url
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterable, Iterator, Mapping

from balrog_engine import Storage


def seed(storage: Storage, permissions: Iterable[Mapping] = (), roles: Iterable[Mapping] = ()) -> None:
    """Put permission and role rows (data_version 1, *no* history) into an empty database, as the
    recorded transcripts' bootstrap does: the first change made through the API is then the
    first history entry. Goes through ``dump``/``restore``, so it works on every backend."""
    document = storage.dump()
    tables = document["tables"]
    tables["permissions"] = [
        {"permission": p["permission"], "username": p["username"], "options": p.get("options"), "data_version": 1}
        for p in permissions]
    tables["user_roles"] = [{"username": r["username"], "role": r["role"], "data_version": 1} for r in roles]
    storage.restore(document)


@contextlib.contextmanager
def serve(app, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve a WSGI app with waitress on a free port of ``host`` in a thread; yields the base URL.

    Stops in an order that never touches a closed socket: the event loop first, then the worker
    threads, then every socket (open keep-alive connections included). Closing the server while
    its loop still runs raises "Bad file descriptor" now and then. (waitress has no public stop
    for an embedded server: this drives its loop and dispatcher directly.)"""
    from waitress.server import create_server

    server = create_server(app, host=host, port=0, threads=4, clear_untrusted_proxy_headers=True)
    stopping = threading.Event()

    def loop():
        while not stopping.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.effective_port}"
    finally:
        stopping.set()
        thread.join(5)
        server.task_dispatcher.shutdown()
        server.asyncore.close_all(server._map)
