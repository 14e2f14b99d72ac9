"""Fixtures of the agent's tests: the real admin API over HTTP (seeded, with the Firefox set-up
and a fault injector in front of it), and an agent wired to it in process."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import pytest

from balrog_app.agent import Agent, AgentConfig, AgentStats
from balrog_app.agent.main import build_agent
from balrog_engine import Notifier, NotifyError
from tests.agent.servers import AGENT, REGISTRY, TOKENS, admin_api, firefox


class Faults:
    """WSGI middleware in front of the admin app: the next requests matching (method, path
    suffix) get a fault instead of (or after) the real answer."""

    def __init__(self):
        self.plan: list[tuple[str, str, str]] = []
        self.seen: list[tuple[str, str, int | None]] = []

    def add(self, method: str, suffix: str, fault: str, times: int = 1) -> None:
        self.plan += [(method, suffix, fault)] * times

    def wrap(self, app):
        def middleware(environ, start_response):
            method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
            for index, (m, suffix, fault) in enumerate(self.plan):
                if m == method and path.endswith(suffix):
                    del self.plan[index]
                    self.seen.append((method, path, fault))
                    if fault == "lose_answer":  # the server does the work, the answer is lost on the way
                        result = app(environ, lambda status, headers, exc_info=None: (lambda data: None))
                        for _ in result:
                            pass
                        getattr(result, "close", lambda: None)()
                        start_response("502 Bad Gateway", [("Content-Type", "application/json")])
                        return [b'{"error": "proxy lost the answer"}']
                    start_response("503 Service Unavailable", [("Content-Type", "application/json")])
                    return [b'{"error": "down for a moment"}']
            self.seen.append((method, path, None))
            return app(environ, start_response)
        return middleware


class Recorder(Notifier):
    """A notifier plugin of the tests: remembers each heads-up and when it came; fails
    ``fail`` times first."""

    name = "recorder"

    def __init__(self, fail: int = 0):
        super().__init__({})
        self.fail = fail
        self.received = []

    def notify(self, heads_up):
        if self.fail:
            self.fail -= 1
            raise NotifyError("the pager is down")
        self.received.append((time.time(), heads_up))


@pytest.fixture
def faults():
    return Faults()


@pytest.fixture
def admin(faults, tmp_path):
    with admin_api(f"sqlite:///{tmp_path}/admin.db", wrap=faults.wrap) as (base_url, storage):
        firefox(base_url)
        yield base_url


@pytest.fixture
def make_agent(admin):
    """An agent assembled as ``balrog agent`` assembles it, with short intervals and backoffs."""
    def make(grace: float = 0.0, notifiers=(), sources=None, retries: int = 2, token: str = TOKENS[AGENT],
             interval: float = 0.5) -> Agent:
        config = AgentConfig(api_root=admin, auth={"token": token}, interval=interval, grace_seconds=grace,
                             retries=retries, backoff_seconds=0.01, max_backoff_seconds=0.05, timeout_seconds=10)
        return build_agent(config, REGISTRY, sources or {}, list(notifiers), AgentStats(), threading.Event())
    return make


@pytest.fixture
def decisions(caplog):
    """``decisions(key)``: the agent's logged decisions for one change, in order (repeats included)."""
    caplog.set_level(logging.DEBUG, logger="balrog.agent")

    def of(key: str) -> list[str]:
        return [r.decision for r in caplog.records if getattr(r, "event", None) == "decision" and r.change == key]
    of.records = lambda key: [r for r in caplog.records if getattr(r, "event", None) == "decision"
                              and r.change == key]
    return of


def cycle_until(agent: Agent, done: Callable[[], bool], timeout: float = 20.0, pause: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "condition not reached in time"
        agent.cycle()
        time.sleep(pause)
