"""The real, unchanged PyPI client ``balrogclient==2.0`` against the admin API (client-compat.md).

Everything goes over real HTTP on 127.0.0.1 and authentication is the production path, end to end:

* :class:`TokenService` is a local Auth0 stand-in over **HTTPS**: the test makes a CA and a server
  certificate with ``cryptography``, and the service answers ``POST /oauth/token`` (client credentials)
  with RS256 JWTs (``iss``, ``aud``, ``exp``, ``gty: client-credentials``, ``azp`` = client id) signed by
  a test RSA key, and publishes that key at ``/.well-known/jwks.json`` (client-compat.md §8.2 option C).
* The admin app (waitress, SQLite in ``tmp_path``) verifies those tokens with the real
  :class:`~balrog_app.admin.auth.JWKSVerifier`, fetching the JWKS over HTTPS, and maps the client id to
  the Balrog account ``balrog-ffxbld`` (``m2m_accounts``).
* Both sides trust the test CA the way a deployment with a private CA would: ``REQUESTS_CA_BUNDLE`` for
  the client (requests), ``SSL_CERT_FILE`` for the server's JWKS fetch (urllib / OpenSSL).

The client is driven like release automation drives it (client-compat.md §5): the test only calls the
package's public classes and functions; where automation retries (lost locale races), the test retries
the same way, re-reading ``data_version`` with ``SingleLocale.get_data`` each time. Every test checks the
server's state afterwards through GET endpoints and the storage, not just the absence of exceptions.

Each test uses its own audience, so the client's module-level token cache (keyed by client id, secret
and audience) never hands one test a token minted by another test's service.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
import requests
from balrogclient import (Release, ReleaseState, Rule, ScheduledRuleChange, SingleLocale, balrog_request,
                          get_balrog_session)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from jwt.algorithms import RSAAlgorithm

from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import JWKSVerifier
from balrog_app.admin.testing import seed, serve
from balrog_engine import load_plugins

REGISTRY = load_plugins()

AUTOMATION = "balrog-ffxbld"          # the Balrog account release automation acts as
AUTOMATION_CLIENT = "ffxbld-3fJx9Qm"  # its Auth0 client id (what the token's azp carries)
STRANGER_CLIENT = "stranger-client"   # a client the token service knows but Balrog has no permissions for
SECRETS = {AUTOMATION_CLIENT: "s3cret-ffxbld", STRANGER_CLIENT: "s3cret-stranger"}

PRODUCT = "Firefox"
PLATFORM = "WINNT_x86_64-msvc"
DOWNLOADS = "https://download.mozilla.org/?product=firefox-99.0-complete&os=%OS_BOUNCER%&lang=%LOCALE%"
TOP_LEVEL = {"appVersion": "99.0", "displayVersion": "99.0",
             "fileUrls": {"*": {"completes": {"*": DOWNLOADS}}}}
#: What release automation holds (client-compat.md §8.1, auth-and-permissions.md §6), for Firefox only.
AUTOMATION_PERMISSIONS = ("release", "release_locale", "rule", "release_read_only", "pinnable_release")


def locale_data(size: int, build_id: str = "20990101000000") -> dict:
    return {"buildID": build_id, "appVersion": "99.0", "displayVersion": "99.0",
            "completes": [{"from": "*", "filesize": size, "hashValue": f"{size:0128x}"}]}


# --- the local Auth0 stand-in ------------------------------------------------------------------------
@dataclass(frozen=True)
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path
    signing_key: rsa.RSAPrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path) -> Pki:
    """A CA, a certificate for 127.0.0.1 signed by it, and the token signing key."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_cert = (x509.CertificateBuilder().subject_name(_name("balrog test CA")).issuer_name(_name("balrog test CA"))
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server_cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca_cert.subject)
                   .public_key(server_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                               x509.DNSName("localhost")]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False)
                   .sign(ca_key, hashes.SHA256()))
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem",
              rsa.generate_private_key(public_exponent=65537, key_size=2048))
    pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(server_key.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.TraditionalOpenSSL,
                                                      serialization.NoEncryption()))
    return pki


class TokenService:
    """Auth0's client-credentials grant and JWKS over HTTPS on 127.0.0.1 (a thread).

    ``requests`` logs ``(method, path)`` so tests can show the client caches its token and the server
    caches the JWKS.
    """

    KID = "test-key-1"

    def __init__(self, pki: Pki, audience: str, secrets: dict[str, str]):
        self.pki = pki
        self.audience = audience
        self.secrets = secrets
        self.requests: list[tuple[str, str]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                service.requests.append(("POST", self.path))
                if self.path != "/oauth/token":
                    return self.answer(404, {"error": "not_found"})
                try:
                    grant = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                except ValueError:
                    return self.answer(400, {"error": "invalid_request"})
                status, body = service.grant(grant)
                self.answer(status, body)

            def do_GET(self):
                service.requests.append(("GET", self.path))
                if self.path == "/.well-known/jwks.json":
                    return self.answer(200, service.jwks())
                self.answer(404, {"error": "not_found"})

            def answer(self, status, body):
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.cert_file, pki.key_file)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.domain = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def issuer(self) -> str:
        return f"https://{self.domain}/"

    def secrets_for(self, client_id: str, client_secret: str | None = None) -> dict[str, str]:
        """The ``auth0_secrets`` dict release automation is configured with."""
        return {"domain": self.domain, "audience": self.audience, "client_id": client_id,
                "client_secret": client_secret if client_secret is not None else self.secrets[client_id]}

    def grant(self, request: dict) -> tuple[int, dict]:
        client_id = request.get("client_id")
        if request.get("grant_type") != "client_credentials":
            return 403, {"error": "unauthorized_client"}
        if client_id not in self.secrets or self.secrets[client_id] != request.get("client_secret"):
            return 401, {"error": "access_denied", "error_description": "Unauthorized"}
        if request.get("audience") != self.audience:
            return 403, {"error": "access_denied", "error_description": "Service not found"}
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": f"{client_id}@clients", "aud": self.audience, "iat": now,
                  "exp": now + 86400, "azp": client_id, "gty": "client-credentials"}
        token = jwt.encode(claims, self.pki.signing_key, algorithm="RS256", headers={"kid": self.KID})
        return 200, {"access_token": token, "expires_in": 86400, "token_type": "Bearer"}

    def jwks(self) -> dict:
        key = RSAAlgorithm.to_jwk(self.pki.signing_key.public_key(), as_dict=True)
        return {"keys": [{**key, "kid": self.KID, "use": "sig", "alg": "RS256"}]}

    def count(self, method: str, path: str) -> int:
        return self.requests.count((method, path))

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


# --- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def trust(pki, monkeypatch):
    """Trust the test CA on both sides, and keep proxies away from 127.0.0.1."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                 "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca_file))  # the client (requests)
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))       # the server's JWKS fetch (urllib/OpenSSL)


@pytest.fixture
def idp(pki, trust):
    service = TokenService(pki, audience=f"balrog-test-{uuid.uuid4().hex}", secrets=SECRETS)
    yield service
    service.close()


class Server:
    """The admin app under test, plus what the tests need to drive the client against it."""

    def __init__(self, root: str, storage, idp: TokenService):
        self.root = root
        self.storage = storage
        self.idp = idp
        self.sessions: list[requests.Session] = []

    def api(self, client_id: str = AUTOMATION_CLIENT, **overrides) -> dict:
        """Keyword arguments of every balrogclient API class, as automation configures them, plus
        an explicit ``session`` (a public parameter) so the test can close its connections."""
        return {"api_root": self.root, "auth0_secrets": self.idp.secrets_for(client_id, **overrides),
                "session": self.track(requests.Session())}

    def balrog_session(self, client_id: str = AUTOMATION_CLIENT) -> requests.Session:
        """``get_balrog_session`` as automation calls it (it builds the session, with retries)."""
        return self.track(get_balrog_session(self.idp.secrets_for(client_id)))

    def track(self, session: requests.Session) -> requests.Session:
        self.sessions.append(session)
        return session

    def close_sessions(self):
        """Drop the clients' keep-alive connections, or stopping waitress waits for them (5 s).

        ``Session.close`` is not enough with urllib3 2: it forgets its pools without closing them,
        and a pool's connections are closed only when the pool is garbage-collected (a response
        kept by a caught exception keeps its pool alive)."""
        for session in self.sessions:
            for adapter in session.adapters.values():
                pools = adapter.poolmanager.pools
                for key in pools.keys():
                    pools[key].close()
            session.close()
        self.sessions.clear()

    def get(self, path: str) -> requests.Response:
        return self.track(requests.Session()).get(self.root + path, timeout=30)

    def history(self, table: str, where: dict) -> list[dict]:
        """History rows of one object, oldest first."""
        with self.storage.session() as session:
            return list(reversed(session.history(table, where)))


@pytest.fixture
def server(idp, tmp_path):
    storage = REGISTRY.storage_for(f"sqlite:///{tmp_path}/admin.db")
    seed(storage, permissions=[{"username": AUTOMATION, "permission": p, "options": {"products": [PRODUCT]}}
                               for p in AUTOMATION_PERMISSIONS])
    # Production configuration: Auth0 domain + audience, and the client-id -> account map.
    verifier = JWKSVerifier.auth0(idp.domain, idp.audience, m2m_accounts={AUTOMATION_CLIENT: AUTOMATION})
    ctx = AdminContext(storage, REGISTRY, verifier, system_accounts=frozenset({AUTOMATION}),
                       allowlisted_domains={"download.mozilla.org": [PRODUCT]})
    with serve(create_admin_app(ctx)) as root:
        running = Server(root, storage, idp)
        yield running
        running.close_sessions()
    storage.close()


def create_release(server: Server, name: str) -> requests.Response:
    return Release(name, **server.api()).update_release(PRODUCT, "sha512", json.dumps({**TOP_LEVEL, "name": name}),
                                                        schemaVersion=9)


# --- authentication ------------------------------------------------------------------------------------
def test_token_from_local_auth0_is_verified_and_mapped_to_the_automation_account(server):
    name = "Firefox-99.0-build1"
    created = create_release(server, name)
    assert (created.status_code, created.json()) == (201, {"new_data_version": 2})
    assert Release(name, **server.api()).get_data() == ({"name": name, "schema_version": 9, "hashFunction": "sha512",
                                                         **TOP_LEVEL}, 2)
    # One token for the whole run (client cache); the JWKS fetched once (server cache), over HTTPS.
    assert server.idp.count("POST", "/oauth/token") == 1
    assert server.idp.count("GET", "/.well-known/jwks.json") == 1
    # The writes are attributed to the mapped account, not to the raw client id.
    assert {row["changed_by"] for row in server.history("releases", {"name": name})} == {AUTOMATION}


def test_tls_and_credentials_are_really_checked(server):
    # The token service's certificate is only good through the test CA.
    untrusting = server.track(requests.Session())
    untrusting.trust_env = False  # ignore REQUESTS_CA_BUNDLE: the default (certifi) bundle only
    with pytest.raises(requests.exceptions.SSLError):
        Release("R", **dict(server.api(), session=untrusting)).update_release(PRODUCT, "sha512", "{}", schemaVersion=9)
    # Wrong client secret: Auth0 refuses the grant, the client raises before talking to Balrog.
    with pytest.raises(requests.HTTPError) as refused:
        Release("R", **server.api(client_secret="wrong")).update_release(PRODUCT, "sha512", "{}", schemaVersion=9)
    assert refused.value.response.status_code == 401 and refused.value.response.url.endswith("/oauth/token")
    # A valid token of a client Balrog has no permissions for: authenticated, then forbidden.
    with pytest.raises(requests.HTTPError) as forbidden:
        Release("R", **server.api(STRANGER_CLIENT)).update_release(PRODUCT, "sha512", json.dumps({"name": "R"}),
                                                                   schemaVersion=9)
    assert forbidden.value.response.status_code == 403
    assert STRANGER_CLIENT in forbidden.value.response.json()["exception"]
    assert server.get("/releases/R").status_code == 404


# --- releases (v1) -------------------------------------------------------------------------------------
def test_update_release_new_and_existing(server):
    name = "Firefox-99.0-build1"
    assert create_release(server, name).status_code == 201
    # Automation: read, merge locally, write back with the version it read.
    blob, version = Release(name, **server.api()).get_data()
    merged = {**blob, "displayVersion": "99.0 Beta",
              "platforms": {PLATFORM: {"OS_FTP": "win64", "OS_BOUNCER": "win64"}}}
    updated = Release(name, **server.api()).update_release(PRODUCT, "sha512", json.dumps(merged), data_version=version,
                                                           schemaVersion=9)
    assert (updated.status_code, updated.json()) == (200, {"new_data_version": 3})
    # Without an explicit data_version the client takes it from the HEAD's X-Data-Version.
    again = Release(name, **server.api()).update_release(PRODUCT, "sha512", json.dumps({"appVersion": "99.0.1"}),
                                                         schemaVersion=9)
    assert (again.status_code, again.json()) == (200, {"new_data_version": 4})

    response = server.get(f"/releases/{name}")
    assert response.headers["X-Data-Version"] == "4"
    assert response.json() == {**merged, "appVersion": "99.0.1"}
    assert [row["data_version"] for row in server.history("releases", {"name": name})] == [1, 2, 3, 4]
    # A write with a version that is both stale and conflicting is refused with a 4xx (automation retries).
    with pytest.raises(requests.HTTPError) as stale:
        Release(name, **server.api()).update_release(PRODUCT, "sha512", json.dumps({"appVersion": "98.0"}),
                                                     data_version=3, schemaVersion=9)
    assert stale.value.response.status_code == 400
    assert server.get(f"/releases/{name}").json()["appVersion"] == "99.0.1"


def submit_locale(server: Server, name: str, platform: str, locale: str, data: dict, attempts: int = 10,
                  alias: str | None = None) -> int:
    """One locale submission as release automation does it: read the version, write, and on any HTTP
    error start again from a fresh read (bounded). Returns the number of attempts used."""
    for attempt in range(1, attempts + 1):
        api = SingleLocale(name, platform, locale, **server.api())
        current, version = api.get_data()
        if current == data:
            return attempt  # already there (e.g. an earlier attempt landed but its answer was lost)
        try:
            api.update_build(PRODUCT, "sha512", json.dumps(data), alias=alias, schemaVersion=9, data_version=version)
            return attempt
        except requests.HTTPError as exc:
            assert exc.response.status_code < 500, exc.response.text
            time.sleep(0.01 * attempt)
    raise AssertionError(f"{locale} did not land in {attempts} attempts")


def test_concurrent_locale_submissions_all_land(server):
    name = "Firefox-99.0-build1"
    assert create_release(server, name).status_code == 201
    platforms = (PLATFORM, "Linux_x86_64-gcc3", "Darwin_x86_64-gcc3-u-i386-x86_64")
    jobs = [(platform, locale, locale_data(100 * index + 7))
            for index, (platform, locale) in enumerate((p, l) for p in platforms for l in ("de", "fr", "ja", "en-US"))]
    barrier = threading.Barrier(len(jobs))
    attempts: dict[tuple[str, str], int] = {}
    errors: list[BaseException] = []

    def job(platform, locale, data):
        try:
            barrier.wait(30)
            attempts[platform, locale] = submit_locale(server, name, platform, locale, data)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=job, args=spec) for spec in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(attempts) == len(jobs)

    # Every locale is there, with exactly the data submitted, read back through the client.
    blob, version = Release(name, **server.api()).get_data()
    for platform, locale, data in jobs:
        assert blob["platforms"][platform]["locales"][locale] == data
        assert SingleLocale(name, platform, locale, **server.api()).get_data() == (data, version)
    assert {p: set(v["locales"]) for p, v in blob["platforms"].items()} == \
        {p: {"de", "fr", "ja", "en-US"} for p in platforms}
    # History is coherent: one version per change, no gap, each version keeps what the previous one had
    # (a lost update would show as a locale disappearing), all by the automation account.
    history = server.history("releases", {"name": name})
    assert [row["data_version"] for row in history] == list(range(1, version + 1))
    assert version == 2 + len(jobs)  # created (1), top level (2), one version per locale
    assert {row["changed_by"] for row in history} == {AUTOMATION}
    seen: set[tuple[str, str]] = set()
    for row in history:
        present = {(p, l) for p, v in row["data"].get("platforms", {}).items() for l in v.get("locales", {})}
        assert seen <= present, f"version {row['data_version']} lost {seen - present}"
        seen = present
    assert history[-1]["data"] == blob


def stale_pair(server: Server, name: str, first: tuple[str, str], second: tuple[str, str]):
    """Two locale jobs that both read the release before either writes (the race, made deterministic):
    both submit with the same, soon stale, data_version and no retry."""
    reads = [SingleLocale(name, platform, locale, **server.api()).get_data() for platform, locale in (first, second)]
    assert reads[0][1] == reads[1][1]
    return [SingleLocale(name, platform, locale, **server.api()).update_build(
                PRODUCT, "sha512", json.dumps(locale_data(size)), schemaVersion=9, data_version=version)
            for (platform, locale), (_, version), size in zip((first, second), reads, (1, 2))]


def test_stale_locale_submission_to_an_existing_platform_is_merged(server):
    # admin-api.md §2.3: the second, stale write is merged, not refused, so automation does not retry.
    name = "Firefox-99.0-build1"
    assert create_release(server, name).status_code == 201
    submit_locale(server, name, PLATFORM, "en-US", locale_data(0))
    responses = stale_pair(server, name, (PLATFORM, "de"), (PLATFORM, "fr"))
    assert [(r.status_code, r.json()) for r in responses] == [(201, {"new_data_version": 4}),
                                                              (201, {"new_data_version": 5})]
    locales = server.get(f"/releases/{name}").json()["platforms"][PLATFORM]["locales"]
    assert locales == {"en-US": locale_data(0), "de": locale_data(1), "fr": locale_data(2)}


def test_stale_first_locales_of_a_new_platform_are_merged(server):
    # The first locales of a platform race each other: both add platforms[<platform>] (and, in a
    # release without platforms yet, the "platforms" key itself). Balrog merges those dicts.
    name = "Firefox-99.0-build1"
    assert create_release(server, name).status_code == 201
    responses = stale_pair(server, name, (PLATFORM, "de"), (PLATFORM, "fr"))
    assert [r.status_code for r in responses] == [201, 201]
    locales = server.get(f"/releases/{name}").json()["platforms"][PLATFORM]["locales"]
    assert locales == {"de": locale_data(1), "fr": locale_data(2)}


def test_locale_alias_and_resubmission(server):
    name = "Firefox-99.0-build1"
    assert create_release(server, name).status_code == 201
    alias = json.dumps(["WINNT_x86_64-msvc-x64"])
    response = SingleLocale(name, PLATFORM, "de", **server.api()).update_build(
        PRODUCT, "sha512", json.dumps(locale_data(1)), alias=alias, schemaVersion=9)
    assert (response.status_code, response.json()) == (201, {"new_data_version": 3})
    # Resubmitting an existing locale (version read via the client) replaces it: 200.
    data, version = SingleLocale(name, PLATFORM, "de", **server.api()).get_data()
    assert (data, version) == (locale_data(1), 3)
    replaced = SingleLocale(name, PLATFORM, "de", **server.api()).update_build(
        PRODUCT, "sha512", json.dumps(locale_data(2)), schemaVersion=9, data_version=version)
    assert (replaced.status_code, replaced.json()) == (200, {"new_data_version": 4})
    blob = server.get(f"/releases/{name}").json()
    assert blob["platforms"]["WINNT_x86_64-msvc-x64"] == {"alias": PLATFORM}
    assert blob["platforms"][PLATFORM]["locales"]["de"] == locale_data(2)
    # A locale of a release that does not exist: the client's get_data answers ({}, None).
    assert SingleLocale("Firefox-0.1-build1", PLATFORM, "de", **server.api()).get_data() == ({}, None)


def test_alias_null_string_means_no_alias(server):
    # Nightly automation passes alias=json.dumps(None) when a platform has no aliases: the client sends it.
    name = "Firefox-99.0-build1"
    assert create_release(server, name).status_code == 201
    response = SingleLocale(name, PLATFORM, "de", **server.api()).update_build(
        PRODUCT, "sha512", json.dumps(locale_data(1)), alias="null", schemaVersion=9)
    assert (response.status_code, response.json()) == (201, {"new_data_version": 3})
    assert set(server.get(f"/releases/{name}").json()["platforms"]) == {PLATFORM}


def test_read_only_release_refuses_writes(server):
    name = "Firefox-99.0-build1"
    assert create_release(server, name).status_code == 201
    submit_locale(server, name, PLATFORM, "de", locale_data(1))
    locked = ReleaseState(name, **server.api()).set_readonly()
    assert (locked.status_code, locked.json()) == (201, {"new_data_version": 4})
    assert server.get(f"/releases/{name}/read_only").json() == {"read_only": True}
    before = server.get(f"/releases/{name}")

    with pytest.raises(requests.HTTPError) as locale_refused:
        SingleLocale(name, PLATFORM, "fr", **server.api()).update_build(
            PRODUCT, "sha512", json.dumps(locale_data(2)), schemaVersion=9)
    with pytest.raises(requests.HTTPError) as release_refused:
        Release(name, **server.api()).update_release(PRODUCT, "sha512", json.dumps({"appVersion": "100.0"}),
                                                     schemaVersion=9)
    for refused in (locale_refused, release_refused):
        assert refused.value.response.status_code == 403
        assert "read only" in refused.value.response.json()["detail"]
    after = server.get(f"/releases/{name}")
    assert (after.json(), after.headers["X-Data-Version"]) == (before.json(), "4")
    # No required signoffs on this product: automation can unlock it again, and then write.
    assert ReleaseState(name, **server.api()).set_modifiable().status_code == 201
    submit_locale(server, name, PLATFORM, "fr", locale_data(2))
    assert server.get(f"/releases/{name}/builds/{PLATFORM}/fr").json() == locale_data(2)


# --- rules and scheduled changes -----------------------------------------------------------------------
def test_rules_update_and_scheduled_change(server):
    for name in ("Firefox-98.0-build1", "Firefox-99.0-build1", "Firefox-99.0.1-build1"):
        assert create_release(server, name).status_code == 201
    # Rule has no create in the client: automation-side tooling POSTs through a balrog session.
    session = server.balrog_session()
    rule_id = balrog_request(session, "post", f"{server.root}/rules",
                             json={"priority": 100, "backgroundRate": 100, "update_type": "minor",
                                   "product": PRODUCT, "channel": "release", "mapping": "Firefox-98.0-build1",
                                   "alias": "firefox-release"})
    assert isinstance(rule_id, int)

    shipped = Rule("firefox-release", **server.api()).update_rule(mapping="Firefox-99.0-build1", backgroundRate=50)
    assert (shipped.status_code, shipped.json()) == (200, {"new_data_version": 2})
    rule, version = Rule(rule_id, **server.api()).get_data()
    assert (rule["mapping"], rule["backgroundRate"], rule["data_version"], version) == \
        ("Firefox-99.0-build1", 50, 2, 2)

    # Schedule the next ship exactly as balrogscript does: the whole rule JSON back, plus its typo.
    when = int(time.time() * 1000) + 3_600_000
    change = dict(rule, data_verison=version, change_type="update", when=when,
                  mapping="Firefox-99.0.1-build1", fallbackMapping=None, backgroundRate=100)
    scheduled = ScheduledRuleChange(rule_id, **server.api()).add_scheduled_rule_change(**change)
    assert scheduled.status_code == 200
    sc = scheduled.json()
    assert set(sc) == {"sc_id", "signoffs"} and sc["signoffs"] == {}

    listed = server.get("/scheduled_changes/rules").json()
    assert listed["count"] == 1
    (pending,) = listed["scheduled_changes"]
    assert pending["sc_id"] == sc["sc_id"]
    assert (pending["rule_id"], pending["change_type"], pending["when"], pending["scheduled_by"]) == \
        (rule_id, "update", when, AUTOMATION)
    assert (pending["mapping"], pending["backgroundRate"], pending["data_version"], pending["alias"]) == \
        ("Firefox-99.0.1-build1", 100, 2, "firefox-release")
    # Scheduling does not touch the rule itself.
    current = server.get(f"/rules/{rule_id}")
    assert (current.json()["mapping"], current.headers["X-Data-Version"]) == ("Firefox-99.0-build1", "2")
    assert [row["changed_by"] for row in server.history("rules", {"rule_id": rule_id})] == [AUTOMATION] * 2


# --- releases (v2) through balrog_request --------------------------------------------------------------
def test_v2_release_submission_and_pin(server):
    name = "Firefox-99.0-build1"
    root = f"{server.root}/v2/releases/{name}"
    session = server.balrog_session()
    with pytest.raises(requests.HTTPError) as missing:
        balrog_request(session, "get", root)
    assert missing.value.response.status_code == 404

    # Skeleton, then the top level deep-merged, then locales (client-compat.md §5, "v2" column).
    created = balrog_request(session, "put", root, json={
        "blob": {"name": name, "hashFunction": "sha512", "schema_version": 9}, "product": PRODUCT})
    assert created == {".": 1}
    current = balrog_request(session, "get", root)
    top = balrog_request(session, "post", root, json={"blob": TOP_LEVEL, "old_data_versions": current["data_versions"]})
    assert top == {".": 2}
    for locale, size in (("de", 1), ("fr", 2)):
        written = balrog_request(session, "post", root, json={
            "blob": {"platforms": {PLATFORM: {"locales": {locale: locale_data(size)}}}},
            "old_data_versions": {"platforms": {PLATFORM: {"locales": {}}}}})
        assert written == {"platforms": {PLATFORM: {"locales": {locale: 1}}}}
    # Resubmitting a locale needs its own version, read from the release.
    versions = balrog_request(session, "get", root)["data_versions"]
    resubmitted = balrog_request(session, "post", root, json={
        "blob": {"platforms": {PLATFORM: {"locales": {"de": locale_data(3)}}}}, "old_data_versions": versions})
    assert resubmitted == {"platforms": {PLATFORM: {"locales": {"de": 2}}}}

    release = balrog_request(session, "get", root)
    assert release["blob"] == {"name": name, "hashFunction": "sha512", "schema_version": 9, **TOP_LEVEL,
                               "platforms": {PLATFORM: {"locales": {"de": locale_data(3), "fr": locale_data(2)}}}}
    assert release["data_versions"] == {".": 2, "platforms": {PLATFORM: {"locales": {"de": 2, "fr": 1}}}}
    # The v1 single-release reads see v2 releases too (admin-api.md §2), so v1 tooling can read them.
    assert Release(name, **server.api()).get_data() == (release["blob"], 2)

    # Pins: major and minor, as automation sets them when shipping.
    for version in ("99.", "99.0."):
        pinned = balrog_request(session, "put", f"{root}/pinnable",
                                json={"product": PRODUCT, "channel": "release", "version": version, "when": None})
        assert pinned == {".": 1}
        pin = server.get(f"/v2/pins/{PRODUCT}/release/{version}").json()
        assert (pin["mapping"], pin["data_version"]) == (name, 1)
    assert server.idp.count("POST", "/oauth/token") == 1  # the session kept its one token
