"""Where the agent's bearer token comes from: a static token (development, the admin server's
``admin_tokens_file``) or Auth0 client credentials, as the reference agent does
(client-compat.md §2, scheduled-changes-and-agent.md §8.3): ``POST https://<domain>/oauth/token``
with ``{client_id, client_secret, audience, grant_type: "client_credentials"}``, the answer's
``access_token`` cached until less than five minutes of its ``expires_in`` remain.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Callable, Mapping

#: Refresh a cached token when less than this many seconds of it remain (as the reference).
REFRESH_MARGIN = 300


class TokenError(RuntimeError):
    """No token could be obtained (the identity provider refused or was unreachable)."""


class StaticToken:
    def __init__(self, token: str):
        self.token = token

    def get(self) -> str:
        return self.token

    def invalidate(self) -> None:
        """Nothing to refresh: a refused static token stays refused."""


class ClientCredentials:
    def __init__(self, token_url: str, client_id: str, client_secret: str, audience: str, timeout: float = 30.0,
                 clock: Callable[[], float] = time.time):
        self.token_url = token_url
        self.body = json.dumps({"client_id": client_id, "client_secret": client_secret, "audience": audience,
                                "grant_type": "client_credentials"}).encode("utf-8")
        self.timeout = timeout
        self.clock = clock
        self.requests = 0  # token requests made (observability and tests)
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._expires - self.clock() < REFRESH_MARGIN:
                self._fetch()
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (the API refused it: revoked, or the clocks disagree)."""
        with self._lock:
            self._token = None

    def _fetch(self) -> None:
        request = urllib.request.Request(self.token_url, data=self.body, method="POST",
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise TokenError(f"{self.token_url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise TokenError(f"{self.token_url}: {getattr(exc, 'reason', exc)}") from None
        except ValueError:
            raise TokenError(f"{self.token_url}: the answer is not JSON") from None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        expires_in = answer.get("expires_in") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token or isinstance(expires_in, bool) \
                or not isinstance(expires_in, (int, float)):
            raise TokenError(f"{self.token_url}: the answer lacks access_token or expires_in")
        self._token, self._expires = token, self.clock() + expires_in


def make_tokens(auth: Mapping[str, str], timeout: float) -> StaticToken | ClientCredentials:
    if "token" in auth:
        return StaticToken(auth["token"])
    token_url = auth.get("token_url") or f"https://{auth['domain']}/oauth/token"
    return ClientCredentials(token_url, auth["client_id"], auth["client_secret"], auth["audience"], timeout)
