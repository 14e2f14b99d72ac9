"""The agent's HTTP client of the admin API: the only calls an agent makes
(scheduled-changes-and-agent.md §8.2–§8.4): list pending changes, enact one.

The account behind the token should hold nothing but ``scheduled_change``/``enact`` — and this
client cannot ask for anything else either: it has no method that writes except ``enact``.

Transient failures (connection errors, timeouts, 5xx, 429, an unobtainable token) are retried
a bounded number of times with exponential backoff; a 401 first drops the cached token. Any
other answer is final: :class:`ApiError`, carrying the server's status and message. Retrying
an enact whose answer was lost is safe: the server refuses to enact a completed change.
"""
from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

from .tokens import TokenError

#: The v1 segments, in the order the reference agent processes them (§8.2).
SEGMENTS = ("rules", "releases", "permissions", "emergency_shutoff", "required_signoffs/product",
            "required_signoffs/permissions", "pinnable_releases")
V2_SEGMENT = "v2/releases"


class ApiError(Exception):
    """A final, non-2xx answer of the admin API."""

    def __init__(self, method: str, path: str, status: int, body: Any):
        self.method, self.path, self.status, self.body = method, path, status, body
        super().__init__(f"{method} {path}: HTTP {status}: {self.message}")

    @property
    def message(self) -> str:
        """The problem body's ``exception`` (or ``detail``/``title``), else the raw body."""
        if isinstance(self.body, dict):
            for key in ("exception", "detail", "title"):
                if isinstance(self.body.get(key), str):
                    return self.body[key]
        return str(self.body)[:500]


class ApiUnavailable(Exception):
    """No final answer: retries exhausted, or the agent is stopping."""


class AdminClient:
    def __init__(self, api_root: str, tokens, *, retries: int = 3, backoff: float = 0.5, max_backoff: float = 10.0,
                 timeout: float = 30.0, stop: threading.Event | None = None,
                 on_retry: Callable[[str, str, str], None] | None = None):
        self.api_root = api_root.rstrip("/")
        self.tokens = tokens
        self.retries, self.backoff, self.max_backoff, self.timeout = retries, backoff, max_backoff, timeout
        self.stop = stop or threading.Event()
        self.on_retry = on_retry or (lambda method, path, reason: None)

    # --- the calls --------------------------------------------------------------------------------
    def scheduled_changes(self, segment: str) -> list[dict]:
        """The pending (incomplete) scheduled changes of a v1 segment."""
        return self._list(f"/scheduled_changes/{segment}", "scheduled_changes")

    def releases_v2(self) -> list[dict]:
        """``GET /v2/releases``: every release with its pending scheduled changes."""
        return self._list("/v2/releases", "releases")

    def enact(self, segment: str, sc_id: int) -> None:
        self.request("POST", f"/scheduled_changes/{segment}/{int(sc_id)}/enact", {})

    def enact_release(self, name: str) -> None:
        self.request("POST", f"/v2/releases/{urllib.parse.quote(name, safe='')}/enact", {})

    def _list(self, path: str, key: str) -> list[dict]:
        body = self.request("GET", path)
        items = body.get(key) if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ApiError("GET", path, 200, f"the answer has no {key!r} list")
        return items

    # --- mechanics --------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None) -> Any:
        failure = ""
        refreshed = False
        for attempt in range(self.retries + 1):
            try:
                status, answer = self._send(method, path, body, self.tokens.get())
            except TokenError as exc:
                failure = f"token: {exc}"
            except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets are OSErrors
                failure = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
            else:
                if 200 <= status < 300:
                    return answer
                if status == 401 and not refreshed:
                    # A cached token the server no longer accepts: fetch a new one, once.
                    refreshed = True
                    self.tokens.invalidate()
                    failure = "HTTP 401"
                elif status == 429 or status >= 500:
                    failure = f"HTTP {status}"
                else:
                    raise ApiError(method, path, status, answer)
            if attempt == self.retries:
                break
            self.on_retry(method, path, failure)
            if self.stop.wait(min(self.max_backoff, self.backoff * 2 ** attempt)):
                raise ApiUnavailable(f"{method} {path}: stopping ({failure})")
        raise ApiUnavailable(f"{method} {path}: {failure} (after {self.retries + 1} attempts)")

    def _send(self, method: str, path: str, body: Any, token: str) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.api_root + path, data=data, method=method, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, _json(exc.read())


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
