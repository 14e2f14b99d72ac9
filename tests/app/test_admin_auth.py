"""The admin API's authentication layer (auth-and-permissions.md §1, balrog_app.admin.auth).

The recorded transcripts are the truth for the wire bodies: the 401/403 bodies are loaded from them,
not retyped. JWKSVerifier is tested for real: RSA keys made here, tokens signed with PyJWT, and the
JWKS/userinfo documents served either by an injected ``http_get`` or by a small HTTP server on
127.0.0.1 (through the default urllib fetcher).
"""
from __future__ import annotations

import json
import socket
import threading
import time
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from balrog_app.admin.auth import (
    AuthError,
    AuthFailure,
    JWKSVerifier,
    LoginRequired,
    NotAuthorized,
    StaticTokens,
    authenticate,
    parse_authorization,
)

TRANSCRIPTS = Path(__file__).resolve().parents[2].parent / "shared" / "admin-transcripts"
AUTH_DETAILS = ("PermissionDeniedError", "Authorization Required")


@lru_cache(maxsize=None)
def transcript(name: str) -> dict:
    return json.loads((TRANSCRIPTS / f"{name}.json").read_text())


def token_of(user: str) -> str:
    return f"token-of-{user}"


def harness(t: dict) -> tuple[StaticTokens, set[str]]:
    """What the transcripts README (item 3) asks: a static token per user; known = has a permission row."""
    return StaticTokens({token_of(u): u for u in t["users"]}), {p["username"] for p in t["bootstrap"]["permissions"]}


def authorization_of(step: dict) -> str | None:
    """The Authorization header a replaying harness sends for ``step``."""
    header = f"Bearer {token_of(step['user'])}" if step["user"] else None
    custom = (step.get("headers") or {}).get("Authorization")
    if custom is not None:
        header = custom.replace("{token}", token_of(step["user"]) if step["user"] else "")
    return header


def auth_failure_steps():
    for path in sorted(TRANSCRIPTS.glob("*.json")):
        t = transcript(path.stem)
        for index, step in enumerate(t["steps"]):
            body = step.get("response_json")
            if isinstance(body, dict) and body.get("detail") in AUTH_DETAILS:
                yield pytest.param(t["name"], index, id=f"{t['name']}-{index}")


def run(header, verifier, known=()):
    """authenticate() → ("ok", username) or (status, body)."""
    try:
        return "ok", authenticate(header, verifier, lambda user: user in known)
    except AuthFailure as failure:
        return failure.status, failure.body


# --- the recorded answers -----------------------------------------------------------------------

@pytest.mark.parametrize(("name", "index"), list(auth_failure_steps()))
def test_recorded_auth_failures(name, index):
    """Every recorded 401 PermissionDeniedError / 403 Authorization Required body, byte for byte
    (including the step whose ``exception`` the transcript only marks as informative)."""
    t = transcript(name)
    step = t["steps"][index]
    verifier, known = harness(t)
    assert run(authorization_of(step), verifier, known) == (step["status"], step["response_json"])


def body_detail(body):
    return body.get("detail") if isinstance(body, dict) else None


def test_recorded_failures_cover_every_header_case():
    """The parametrised test above really sees each of Balrog's header errors."""
    bodies = [s.get("response_json") for s in transcript("auth-basics")["steps"]]
    described = {body["exception"].split("'description': ")[1].rstrip("}")
                 for body in bodies if body_detail(body) == "PermissionDeniedError"}
    assert described == {"'Authorization header is expected'", "'Authorization header must start with Bearer'",
                         "'Token not found'", "'Authorization header must be Bearer token'",
                         "'Invalid header. Use an RS256 signed JWT Access Token'"}


def test_recorded_authenticated_steps_yield_the_step_user():
    """Steps that got past authentication (any answer but an auth failure) authenticate as their user,
    machine identities included (``some-client-id`` then fails the permission check, not this one)."""
    t = transcript("auth-basics")
    verifier, known = harness(t)
    checked = set()
    for step in t["steps"]:
        if step["user"] and body_detail(step.get("response_json")) not in AUTH_DETAILS:
            assert run(authorization_of(step), verifier, known) == ("ok", step["user"])
            checked.add(step["user"])
    assert checked == {"alice@example.com", "some-client-id"}


# --- the header ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "code", "description"), [
    (None, "authorization_header_missing", "Authorization header is expected"),
    ("", "authorization_header_missing", "Authorization header is expected"),
    ("   ", "authorization_header_missing", "Authorization header is expected"),
    ("Basic YWRtaW46YWRtaW4=", "invalid_header", "Authorization header must start with Bearer"),
    ("Token abc", "invalid_header", "Authorization header must start with Bearer"),
    ("Basic", "invalid_header", "Authorization header must start with Bearer"),
    ("Bearer", "invalid_header", "Token not found"),
    ("  bearer  ", "invalid_header", "Token not found"),
    ("Bearer a b", "invalid_header", "Authorization header must be Bearer token"),
    ("Basic a b", "invalid_header", "Authorization header must start with Bearer"),
])
def test_parse_authorization_failures(header, code, description):
    with pytest.raises(AuthError) as caught:
        parse_authorization(header)
    assert (caught.value.status, caught.value.code, caught.value.description) == (401, code, description)


@pytest.mark.parametrize("header", ["Bearer tok", "bearer tok", "BEARER tok", "bEaReR\ttok", "  Bearer   tok  "])
def test_parse_authorization_scheme_is_case_insensitive_and_whitespace_split(header):
    assert parse_authorization(header) == "tok"


def test_auth_error_body_is_balrogs_shape():
    error = AuthError("token_expired", "token is expired")
    assert error.body == {
        "type": "about:blank", "title": "Forbidden", "detail": "PermissionDeniedError", "status": 401,
        "exception": "Permission denied to perform the request. "
                     "{'code': 'token_expired', 'description': 'token is expired'}"}
    assert list(error.body) == ["type", "title", "detail", "status", "exception"]
    assert str(error) == "token_expired: token is expired"
    assert isinstance(error, AuthFailure) and not isinstance(error, NotAuthorized)


def test_not_authorized_and_login_required_bodies():
    recorded = transcript("auth-basics")["steps"][14]["response_json"]
    assert NotAuthorized("nobody@example.com").body == recorded
    assert NotAuthorized("x@y").status == 403
    assert (LoginRequired().status, LoginRequired().body) == (
        401, {"type": "about:blank", "title": "Unauthenticated", "detail": "Login Required", "status": 401})


# --- StaticTokens and authenticate ------------------------------------------------------------------

def test_static_tokens():
    verifier = StaticTokens({"t1": "alice@example.com", "t2": "balrogagent"})
    assert verifier.identity("t1") == "alice@example.com"
    assert verifier.identity("t2") == "balrogagent"
    with pytest.raises(AuthError) as caught:
        verifier.identity("nope")
    assert caught.value.body == transcript("auth-basics")["steps"][13]["response_json"]


def test_authenticate_asks_known_user_only_for_humans():
    asked = []

    def known_user(name):
        asked.append(name)
        return name == "alice@example.com"

    verifier = StaticTokens({"a": "alice@example.com", "n": "nobody@example.com", "m": "some-client-id", "e": ""})
    assert authenticate("Bearer a", verifier, known_user) == "alice@example.com"
    assert authenticate("Bearer m", verifier, known_user) == "some-client-id"
    with pytest.raises(NotAuthorized) as caught:
        authenticate("Bearer n", verifier, known_user)
    assert caught.value.username == "nobody@example.com"
    with pytest.raises(LoginRequired):
        authenticate("Bearer e", verifier, known_user)
    assert asked == ["alice@example.com", "nobody@example.com"]


def test_authenticate_checks_the_header_before_the_verifier():
    class Exploding:
        def identity(self, token):
            raise AssertionError("must not be called")

    with pytest.raises(AuthError) as caught:
        authenticate("Basic x", Exploding(), lambda user: True)
    assert caught.value.description == "Authorization header must start with Bearer"


# --- JWKSVerifier -------------------------------------------------------------------------------

ISSUER = "https://balrog-test.example/"
AUDIENCE = "balrog-admin-api"


@pytest.fixture(scope="module")
def keys():
    """Two RSA key pairs: ``k1`` is published, ``k2`` is for rotation and for wrong-key tokens."""
    return {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("k1", "k2")}


def jwk(kid, private_key, **extra):
    return {**RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True), "kid": kid, "use": "sig",
            "alg": "RS256", **extra}


def sign(private_key, kid="k1", alg="RS256", headers=None, **claims):
    """A token with valid defaults (iss, aud, exp in 10 minutes); a claim given as None is dropped."""
    payload = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600, "sub": "auth0|123", **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    header = {"kid": kid, **(headers or {})} if kid is not None else headers
    return jwt.encode(payload, private_key, algorithm=alg, headers=header)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FakeHttp:
    """An injected ``http_get``: answers per URL (a value, or an exception to raise); logs calls."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, url, headers):
        self.calls.append((url, dict(headers)))
        answer = self.answers[url]
        if callable(answer):
            answer = answer(headers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def count(self, suffix):
        return sum(1 for url, _ in self.calls if url.endswith(suffix))


JWKS_URL = ISSUER + ".well-known/jwks.json"
USERINFO_URL = ISSUER + "userinfo"


@pytest.fixture
def http(keys):
    return FakeHttp({JWKS_URL: {"keys": [jwk("k1", keys["k1"])]},
                     USERINFO_URL: lambda headers: {"sub": "auth0|123", "email": "from-userinfo@example.com"}})


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def verifier(http, clock):
    return JWKSVerifier(ISSUER, AUDIENCE, http_get=http, clock=clock,
                        m2m_accounts={"agent-client-id": "balrogagent"})


def failure(verifier, token):
    with pytest.raises(AuthError) as caught:
        verifier.identity(token)
    assert caught.value.status == 401
    return caught.value.code, caught.value.description


def test_default_urls_and_auth0_constructor():
    v = JWKSVerifier.auth0("balrog-localdev.auth0.com", "aud")
    assert (v.issuer, v.audience) == ("https://balrog-localdev.auth0.com/", "aud")
    assert v.jwks_url == "https://balrog-localdev.auth0.com/.well-known/jwks.json"
    assert v.userinfo_url == "https://balrog-localdev.auth0.com/userinfo"
    v = JWKSVerifier("https://idp.example/realm", "aud", jwks_url="https://keys.example/jwks")
    assert (v.jwks_url, v.userinfo_url) == ("https://keys.example/jwks", "https://idp.example/realm/userinfo")


def test_human_token_with_email_claim(verifier, keys, http):
    assert verifier.identity(sign(keys["k1"], email="alice@example.com")) == "alice@example.com"
    assert http.count("/userinfo") == 0


def test_m2m_token_mapped_and_unmapped(verifier, keys):
    assert verifier.identity(sign(keys["k1"], gty="client-credentials", azp="agent-client-id")) == "balrogagent"
    assert verifier.identity(sign(keys["k1"], gty="client-credentials", azp="other-client")) == "other-client"
    # gty wins over an email claim: a machine token is never treated as a human.
    assert verifier.identity(sign(keys["k1"], gty="client-credentials", azp="other-client",
                                  email="x@example.com")) == "other-client"


def test_m2m_token_without_azp(verifier, keys):
    assert failure(verifier, sign(keys["k1"], gty="client-credentials"))[0] == "invalid_claims"


CLAIMS = ("invalid_claims", "incorrect claims, please check the audience and issuer")


@pytest.mark.parametrize("claims", [
    {"aud": "someone-else"},
    {"aud": None},
    {"iss": "https://evil.example/"},
    {"iss": ISSUER.rstrip("/")},
    {"iss": None},
    {"exp": None},
    {"nbf": int(time.time()) + 3600},
], ids=["wrong-aud", "no-aud", "wrong-iss", "iss-without-slash", "no-iss", "no-exp", "not-yet-valid"])
def test_bad_claims(verifier, keys, claims):
    assert failure(verifier, sign(keys["k1"], email="a@example.com", **claims)) == CLAIMS


def test_audience_may_be_a_list_containing_ours(verifier, keys):
    token = sign(keys["k1"], email="a@example.com", aud=[AUDIENCE, "https://balrog-test.example/userinfo"])
    assert verifier.identity(token) == "a@example.com"


def test_expired(verifier, keys):
    token = sign(keys["k1"], email="a@example.com", exp=int(time.time()) - 60)
    assert failure(verifier, token) == ("token_expired", "token is expired")


RS256_ONLY = ("invalid_header", "Invalid header. Use an RS256 signed JWT Access Token")


def test_hs256_refused_without_fetching_keys(verifier, http):
    token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600, "email": "a@example.com"},
                       "a-shared-secret-of-at-least-32-bytes!", algorithm="HS256", headers={"kid": "k1"})
    assert failure(verifier, token) == RS256_ONLY
    assert http.calls == []


def test_alg_none_and_garbage_refused(verifier, keys):
    unsigned = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "email": "a@example.com"}, None, algorithm="none")
    assert failure(verifier, unsigned) == RS256_ONLY
    assert failure(verifier, "not-a-real-token") == RS256_ONLY
    assert failure(verifier, "a.b.c") == RS256_ONLY


@pytest.mark.parametrize("kid", ["unknown", None])
def test_unknown_or_missing_kid(verifier, keys, kid):
    token = sign(keys["k1"], kid=kid, email="a@example.com")
    assert failure(verifier, token) == ("invalid_key", "Unable to find RSA key.")


def test_non_string_kid(verifier, keys):
    header = jwt.utils.base64url_encode(json.dumps({"alg": "RS256", "typ": "JWT", "kid": 7}).encode()).decode()
    _, payload, signature = sign(keys["k1"], email="a@example.com").split(".")
    code, _ = failure(verifier, f"{header}.{payload}.{signature}")
    # Recent PyJWT rejects the header itself (invalid_header); older ones reach our kid check (invalid_key).
    assert code in ("invalid_header", "invalid_key")


def test_signed_with_another_key_under_a_known_kid(verifier, keys):
    token = sign(keys["k2"], kid="k1", email="a@example.com")
    assert failure(verifier, token) == ("invalid_header", "Unable to parse authentication token.")


def test_tampered_payload(verifier, keys):
    header, _, signature = sign(keys["k1"], email="a@example.com").split(".")
    forged = jwt.utils.base64url_encode(json.dumps(
        {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600, "email": "admin@example.com"}).encode())
    assert failure(verifier, f"{header}.{forged.decode()}.{signature}") == (
        "invalid_header", "Unable to parse authentication token.")


def test_jwks_skips_keys_that_are_not_rsa_signing_keys(keys, clock):
    http = FakeHttp({JWKS_URL: {"keys": [
        jwk("k1", keys["k1"], use="enc"),
        {"kty": "EC", "kid": "k2", "crv": "P-256", "x": "x", "y": "y"},
        {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        "junk",
        jwk("k2", keys["k2"]),
    ]}})
    v = JWKSVerifier(ISSUER, AUDIENCE, http_get=http, clock=clock)
    assert failure(v, sign(keys["k1"], kid="k1", email="a@example.com"))[0] == "invalid_key"
    assert v.identity(sign(keys["k2"], kid="k2", email="b@example.com")) == "b@example.com"


@pytest.mark.parametrize("answer", [ConnectionRefusedError(111, "refused"), {"no": "keys"}, {"keys": "x"}, [1]],
                         ids=["down", "no-keys-member", "keys-not-list", "not-an-object"])
def test_jwks_unavailable_is_a_401_and_not_cached(keys, clock, answer):
    http = FakeHttp({JWKS_URL: answer})
    v = JWKSVerifier(ISSUER, AUDIENCE, http_get=http, clock=clock)
    token = sign(keys["k1"], email="a@example.com")
    code, description = failure(v, token)
    assert code == "invalid_key"
    assert description.startswith(f"Unable to fetch the signing keys (JWKS) from {JWKS_URL}")
    # The endpoint recovers: the very next request fetches again and succeeds.
    http.answers[JWKS_URL] = {"keys": [jwk("k1", keys["k1"])]}
    assert v.identity(token) == "a@example.com"
    assert http.count("jwks.json") == 2


def test_jwks_cached_for_an_hour(verifier, keys, http, clock):
    token = sign(keys["k1"], email="a@example.com")
    for _ in range(3):
        verifier.identity(token)
    assert http.count("jwks.json") == 1
    clock.now += 3599
    verifier.identity(token)
    assert http.count("jwks.json") == 1
    clock.now += 2
    verifier.identity(token)
    assert http.count("jwks.json") == 2
    verifier.identity(token)
    assert http.count("jwks.json") == 2


def test_unknown_kid_refetches_early_but_rate_limited(verifier, keys, http, clock):
    """Key rotation: a token signed with a newly published key is accepted without waiting an hour,
    while unknown kids do not make every request refetch."""
    old = sign(keys["k1"], email="a@example.com")
    new = sign(keys["k2"], kid="k2", email="a@example.com")
    verifier.identity(old)
    http.answers[JWKS_URL] = {"keys": [jwk("k1", keys["k1"]), jwk("k2", keys["k2"])]}
    assert failure(verifier, new)[0] == "invalid_key"  # just fetched: no early refetch yet
    assert http.count("jwks.json") == 1
    clock.now += 300
    assert verifier.identity(new) == "a@example.com"
    assert http.count("jwks.json") == 2
    assert failure(verifier, sign(keys["k2"], kid="k3", email="a@example.com"))[0] == "invalid_key"
    assert http.count("jwks.json") == 2


def test_unknown_kid_refetch_failure_keeps_the_cached_keys(verifier, keys, http, clock):
    verifier.identity(sign(keys["k1"], email="a@example.com"))
    http.answers[JWKS_URL] = OSError("down")
    clock.now += 600
    assert failure(verifier, sign(keys["k2"], kid="k2", email="a@example.com")) == (
        "invalid_key", "Unable to find RSA key.")
    assert verifier.identity(sign(keys["k1"], email="a@example.com")) == "a@example.com"
    assert http.count("jwks.json") == 2


def test_userinfo_when_no_email_claim_memoised_per_token(verifier, keys, http):
    first, second = sign(keys["k1"], sub="auth0|1"), sign(keys["k1"], sub="auth0|2")
    assert verifier.identity(first) == "from-userinfo@example.com"
    assert verifier.identity(first) == "from-userinfo@example.com"
    assert http.count("/userinfo") == 1
    assert http.calls[-1] == (USERINFO_URL, {"Authorization": f"Bearer {first}"})
    verifier.identity(second)
    assert http.count("/userinfo") == 2


def test_userinfo_memo_is_bounded(keys, http, clock):
    v = JWKSVerifier(ISSUER, AUDIENCE, http_get=http, clock=clock, userinfo_cache_size=2)
    tokens = [sign(keys["k1"], sub=f"auth0|{i}") for i in range(3)]
    for token in tokens:
        v.identity(token)
    v.identity(tokens[2])
    assert http.count("/userinfo") == 3
    v.identity(tokens[0])  # evicted
    assert http.count("/userinfo") == 4


def test_no_email_anywhere(verifier, keys, http):
    http.answers[USERINFO_URL] = {"sub": "auth0|123", "email": ""}
    assert failure(verifier, sign(keys["k1"])) == ("no_email", "no email address found in access or id tokens")


@pytest.mark.parametrize("answer", [OSError("down"), ValueError("not JSON"), ["a list"]])
def test_userinfo_failure_is_a_401(verifier, keys, http, answer):
    http.answers[USERINFO_URL] = answer
    code, _ = failure(verifier, sign(keys["k1"]))
    assert code == "incomplete_validation"
    # Failures are not memoised.
    http.answers[USERINFO_URL] = {"email": "late@example.com"}
    assert verifier.identity(sign(keys["k1"])) == "late@example.com"


def test_authenticate_with_jwks_verifier(verifier, keys):
    known = {"alice@example.com"}
    assert run(f"Bearer {sign(keys['k1'], email='alice@example.com')}", verifier, known) == ("ok", "alice@example.com")
    assert run(f"Bearer {sign(keys['k1'], email='bob@example.com')}", verifier, known) == (
        403, transcript("auth-basics")["steps"][14]["response_json"])
    assert run(f"Bearer {sign(keys['k1'], gty='client-credentials', azp='agent-client-id')}", verifier, known) == (
        "ok", "balrogagent")


# --- against a real HTTP server (the default urllib fetcher) -----------------------------------------

class IdentityProvider:
    """A tiny OIDC provider on 127.0.0.1: JWKS and userinfo, with request counters."""

    def __init__(self, jwks):
        self.jwks = jwks
        self.jwks_status = 200
        self.profiles = {}  # bearer token → profile
        self.requests = []  # (path, Authorization header)
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                provider.requests.append((self.path, self.headers.get("Authorization")))
                if self.path == "/.well-known/jwks.json" and provider.jwks_status == 200:
                    self.answer(200, provider.jwks)
                elif self.path == "/.well-known/jwks.json":
                    self.answer(provider.jwks_status, {"error": "unavailable"})
                elif self.path == "/userinfo":
                    token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                    profile = provider.profiles.get(token)
                    self.answer(200 if profile else 401, profile or {"error": "invalid_token"})
                else:
                    self.answer(404, {})

            def answer(self, status, document):
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, path):
        return sum(1 for p, _ in self.requests if p == path)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def provider(keys, monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    idp = IdentityProvider({"keys": [jwk("k1", keys["k1"])]})
    yield idp
    idp.close()


def served_verifier(idp, clock, **kwargs):
    # The issuer is an https URL (as at Auth0); the documents come from the local server.
    return JWKSVerifier(ISSUER, AUDIENCE, jwks_url=f"{idp.url}/.well-known/jwks.json",
                        userinfo_url=f"{idp.url}/userinfo", clock=clock, **kwargs)


def test_over_http_userinfo_lookup_and_caches(provider, keys, clock):
    v = served_verifier(provider, clock)
    token = sign(keys["k1"], sub="auth0|alice")
    provider.profiles[token] = {"sub": "auth0|alice", "email": "alice@example.com"}
    assert authenticate(f"Bearer {token}", v, lambda user: user == "alice@example.com") == "alice@example.com"
    assert v.identity(token) == "alice@example.com"
    assert provider.count("/.well-known/jwks.json") == 1
    assert provider.count("/userinfo") == 1
    assert ("/userinfo", f"Bearer {token}") in provider.requests
    clock.now += 3601
    assert v.identity(token) == "alice@example.com"
    assert provider.count("/.well-known/jwks.json") == 2
    assert provider.count("/userinfo") == 1


def test_over_http_m2m_and_email_claim(provider, keys, clock):
    v = served_verifier(provider, clock, m2m_accounts={"agent-client-id": "balrogagent"})
    assert v.identity(sign(keys["k1"], gty="client-credentials", azp="agent-client-id")) == "balrogagent"
    assert v.identity(sign(keys["k1"], email="bob@example.com")) == "bob@example.com"
    assert provider.count("/userinfo") == 0


def test_over_http_userinfo_refusing_the_token(provider, keys, clock):
    v = served_verifier(provider, clock)
    assert failure(v, sign(keys["k1"]))[0] == "incomplete_validation"


def test_over_http_jwks_endpoint_error_is_a_401(provider, keys, clock):
    provider.jwks_status = 503
    v = served_verifier(provider, clock)
    token = sign(keys["k1"], email="a@example.com")
    code, description = failure(v, token)
    assert code == "invalid_key" and "HTTPError" in description and provider.url in description
    provider.jwks_status = 200
    assert v.identity(token) == "a@example.com"


def test_jwks_endpoint_not_listening_is_a_401(keys, clock):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    v = JWKSVerifier(ISSUER, AUDIENCE, jwks_url=f"http://127.0.0.1:{port}/.well-known/jwks.json", clock=clock)
    with pytest.raises(AuthError) as caught:
        authenticate(f"Bearer {sign(keys['k1'], email='a@example.com')}", v, lambda user: True)
    assert (caught.value.status, caught.value.code) == (401, "invalid_key")
    assert caught.value.body["detail"] == "PermissionDeniedError"
