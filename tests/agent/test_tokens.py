"""The agent's token: Auth0 client credentials against a local token endpoint (client-compat.md
§2, §8.3), cached until less than five minutes remain, refreshed when the API refuses it."""
from __future__ import annotations

import pytest

from balrog_app.agent.client import AdminClient, ApiError
from balrog_app.agent.tokens import ClientCredentials, TokenError, make_tokens
from tests.agent.servers import AGENT, TOKENS, HttpEndpoint, admin_api


def test_client_credentials_request_cache_and_refresh():
    clock = [1000.0]
    with HttpEndpoint(lambda r: (200, {"access_token": f"tok-{len(endpoint.requests)}", "expires_in": 3600,
                                       "token_type": "Bearer"})) as endpoint:
        tokens = ClientCredentials(endpoint.url + "/oauth/token", "cid", "secret", "balrog", clock=lambda: clock[0])
        assert tokens.get() == "tok-1"
        clock[0] += 3600 - 301  # still more than 5 minutes left: cached
        assert tokens.get() == "tok-1"
        clock[0] += 2  # less than 5 minutes left: refreshed
        assert tokens.get() == "tok-2"
    request = endpoint.requests[0]
    assert (request.method, request.path, request.headers["Content-Type"]) == ("POST", "/oauth/token",
                                                                               "application/json")
    assert request.body == {"client_id": "cid", "client_secret": "secret", "audience": "balrog",
                            "grant_type": "client_credentials"}


@pytest.mark.parametrize("status, body, message", [(403, {"error": "access_denied"}, "HTTP 403"),
                                                   (200, {"token_type": "Bearer"}, "lacks access_token")])
def test_token_endpoint_refusals(status, body, message):
    with HttpEndpoint(lambda r: (status, body)) as endpoint:
        with pytest.raises(TokenError, match=message):
            ClientCredentials(endpoint.url, "cid", "secret", "balrog").get()


def test_default_token_url_is_the_auth0_domain():
    tokens = make_tokens({"domain": "auth.example.com", "audience": "a", "client_id": "c", "client_secret": "s"}, 5)
    assert tokens.token_url == "https://auth.example.com/oauth/token"


def test_refused_token_is_refreshed_once_then_used():
    handed_out = iter(["revoked-token", TOKENS[AGENT]])
    with HttpEndpoint(lambda r: (200, {"access_token": next(handed_out), "expires_in": 86400})) as idp, \
            admin_api() as (base_url, _):
        tokens = ClientCredentials(idp.url + "/oauth/token", "cid", "secret", "balrog")
        client = AdminClient(base_url, tokens, retries=2, backoff=0.01)
        # (listing needs no login on the admin API; enacting does)
        with pytest.raises(ApiError) as answered:
            client.enact("rules", 99)
        assert answered.value.status == 404  # the server's answer with the fresh token
        assert len(idp.requests) == 2  # the 401 dropped the cached token

        # A token the server keeps refusing is a final 401 once refreshed.
        handed_out = iter(["bad-1", "bad-2", "bad-3"])
        with pytest.raises(ApiError) as refused:
            AdminClient(base_url, ClientCredentials(idp.url, "c", "s", "a"), retries=2, backoff=0.01).enact("rules", 99)
        assert refused.value.status == 401 and len(idp.requests) == 4
