"""Authentication of admin API requests (auth-and-permissions.md §1, admin-api.md §0.3/§0.7).

Framework-free on purpose: the admin app wraps :func:`authenticate` in a falcon hook and turns an
:class:`AuthFailure` into ``exc.status`` + ``exc.body`` (sent as ``application/json``, which is what
Balrog's own error handler used). Everything here is plain functions and two small verifier classes,
so the wire behaviour can be tested without a server.

The pieces, in request order:

1. :func:`parse_authorization` takes the token out of the ``Authorization`` header (401 otherwise).
2. A :class:`TokenVerifier` turns the token into an identity: :class:`StaticTokens` for development
   and the recorded transcripts, :class:`JWKSVerifier` for real Auth0/OIDC RS256 access tokens.
3. :func:`authenticate` applies the identity rule: an identity containing ``@`` is a human and must be
   a known user (at least one permission row), else 403 ``Authorization Required``; an identity
   without ``@`` is a machine account and passes (the permission checks then decide).

Errors:

* :class:`AuthError` (401): the token could not be obtained or verified. Its body reproduces Balrog's
  quirky shape exactly, title "Forbidden" with status 401 and the error dict rendered as a *Python
  repr* inside ``exception``, because clients and the recorded transcripts compare it verbatim.
* :class:`NotAuthorized` (403): a valid human identity that is not a known user.
* :class:`LoginRequired` (401 ``Unauthenticated``): an empty identity; unreachable with the verifiers
  here (they never return one), kept so a custom verifier cannot let an empty name through.

All three derive from :class:`AuthFailure`, so one ``except AuthFailure`` renders any of them.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import jwt

__all__ = [
    "AuthFailure", "AuthError", "NotAuthorized", "LoginRequired",
    "parse_authorization", "TokenVerifier", "StaticTokens", "JWKSVerifier", "fetch_json",
    "authenticate",
]

# Balrog's error codes and descriptions (auth-and-permissions.md §1.2); clients see them verbatim.
HEADER_MISSING = ("authorization_header_missing", "Authorization header is expected")
NOT_BEARER = ("invalid_header", "Authorization header must start with Bearer")
TOKEN_NOT_FOUND = ("invalid_header", "Token not found")
TOO_MANY_PARTS = ("invalid_header", "Authorization header must be Bearer token")
NOT_RS256 = ("invalid_header", "Invalid header. Use an RS256 signed JWT Access Token")
UNPARSABLE = ("invalid_header", "Unable to parse authentication token.")
NO_RSA_KEY = ("invalid_key", "Unable to find RSA key.")
EXPIRED = ("token_expired", "token is expired")
BAD_CLAIMS = ("invalid_claims", "incorrect claims, please check the audience and issuer")
NO_EMAIL = ("no_email", "no email address found in access or id tokens")

PROBLEM_TYPE = "about:blank"


class AuthFailure(Exception):
    """Base of the errors :func:`authenticate` raises; ``status`` and ``body`` are the HTTP answer."""

    status: int

    @property
    def body(self) -> dict[str, Any]:
        raise NotImplementedError


class AuthError(AuthFailure):
    """The request carries no usable credentials (HTTP 401).

    ``code``/``description`` are Balrog's (see the constants above). The body keeps Balrog's shape,
    including the title "Forbidden" on a 401 and the dict repr in ``exception``.
    """

    def __init__(self, code: str, description: str, status: int = 401):
        super().__init__(code, description)
        self.code = code
        self.description = description
        self.status = status

    @classmethod
    def of(cls, error: tuple[str, str]) -> AuthError:
        """Build from one of the module's ``(code, description)`` constants."""
        return cls(*error)

    @property
    def error(self) -> dict[str, str]:
        return {"code": self.code, "description": self.description}

    @property
    def exception_text(self) -> str:
        # Balrog formats the AuthError's dict with str(): Python repr, single quotes and all.
        return f"Permission denied to perform the request. {self.error!r}"

    @property
    def body(self) -> dict[str, Any]:
        return {"type": PROBLEM_TYPE, "title": "Forbidden", "detail": "PermissionDeniedError",
                "status": self.status, "exception": self.exception_text}

    def __str__(self) -> str:
        return f"{self.code}: {self.description}"


class NotAuthorized(AuthFailure):
    """A verified human identity (contains ``@``) that is not a known user (HTTP 403).

    Separate from :class:`AuthError` because it has neither code nor ``exception`` member: Balrog
    answers just ``Authorization Required``.
    """

    status = 403

    def __init__(self, username: str):
        super().__init__(username)
        self.username = username

    @property
    def body(self) -> dict[str, Any]:
        return {"type": PROBLEM_TYPE, "title": "Forbidden", "detail": "Authorization Required", "status": 403}

    def __str__(self) -> str:
        return f"{self.username} is not a known user"


class LoginRequired(AuthFailure):
    """A verifier produced an empty identity (HTTP 401, Balrog's ``Login Required``)."""

    status = 401

    @property
    def body(self) -> dict[str, Any]:
        return {"type": PROBLEM_TYPE, "title": "Unauthenticated", "detail": "Login Required", "status": 401}


def parse_authorization(header: str | None) -> str:
    """The bearer token of an ``Authorization`` header value, or :class:`AuthError`.

    Balrog's checks, in its order (the first failing one names the error). A value that is empty or
    only whitespace counts as missing (Balrog crashed on whitespace; proxies may strip it anyway).
    """
    parts = header.split() if header else []
    if not parts:
        raise AuthError.of(HEADER_MISSING)
    if parts[0].lower() != "bearer":
        raise AuthError.of(NOT_BEARER)
    if len(parts) == 1:
        raise AuthError.of(TOKEN_NOT_FOUND)
    if len(parts) > 2:
        raise AuthError.of(TOO_MANY_PARTS)
    return parts[1]


class TokenVerifier(Protocol):
    """Turns a bearer token into an identity (email or machine name), or raises :class:`AuthError`."""

    def identity(self, token: str) -> str: ...


class StaticTokens:
    """Fixed token → username map: development servers and the transcript harness (README item 3).

    Never use it in production: tokens do not expire and are compared by plain lookup.
    """

    def __init__(self, mapping: Mapping[str, str]):
        self.mapping = dict(mapping)

    def identity(self, token: str) -> str:
        try:
            return self.mapping[token]
        except KeyError:
            # Balrog's verifier says this about any token that is not a JWT (transcript auth-basics).
            raise AuthError.of(NOT_RS256) from None


def fetch_json(url: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> Any:
    """GET ``url`` and parse the JSON body; any failure (network, HTTP status, JSON) raises.

    The default ``http_get`` of :class:`JWKSVerifier`. Uses urllib, so standard proxy variables apply.
    """
    request = urllib.request.Request(url, headers={"Accept": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured URLs)
        return json.loads(response.read())


HttpGet = Callable[[str, Mapping[str, str]], Any]


class JWKSVerifier:
    """Verifies Auth0/OIDC RS256 access tokens (auth-and-permissions.md §1.2).

    * ``issuer`` is the exact ``iss`` expected (Auth0: ``https://<domain>/``); ``jwks_url`` and
      ``userinfo_url`` default to ``<issuer>/.well-known/jwks.json`` and ``<issuer>/userinfo``.
    * ``http_get(url, headers)`` returns parsed JSON or raises; injectable for tests.
    * The JWKS is cached for ``jwks_ttl`` seconds (1 h, like Balrog) measured on ``clock``. A token
      whose ``kid`` is unknown triggers one early refetch, at most every ``refetch_after`` seconds, so
      a key rotation at the identity provider does not lock everyone out for an hour while garbage
      ``kid`` values cannot make us hammer the provider.
    * Identity: ``azp`` for machine-to-machine tokens (``gty`` claim present), mapped through
      ``m2m_accounts`` when listed there; otherwise the ``email`` claim, otherwise the ``email`` of the
      userinfo endpoint (memoised per token, as the profile of a token does not change).
    * Unlike Balrog, an unreachable JWKS or userinfo endpoint is a 401 with a clear description, not
      a 500: the caller cannot be authenticated, and the server itself is fine.

    Thread-safe: waitress serves requests from several threads.
    """

    def __init__(self, issuer: str, audience: str, jwks_url: str | None = None,
                 userinfo_url: str | None = None, http_get: HttpGet = fetch_json, *,
                 m2m_accounts: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic,
                 jwks_ttl: float = 3600.0, refetch_after: float = 300.0, leeway: float = 0.0,
                 userinfo_cache_size: int = 2048):
        base = issuer.rstrip("/")
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url or f"{base}/.well-known/jwks.json"
        self.userinfo_url = userinfo_url or f"{base}/userinfo"
        self.http_get = http_get
        self.m2m_accounts = dict(m2m_accounts or {})
        self.clock = clock
        self.jwks_ttl = jwks_ttl
        self.refetch_after = refetch_after
        self.leeway = leeway
        self.userinfo_cache_size = userinfo_cache_size
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._fetched_at = 0.0
        self._last_attempt = float("-inf")
        self._jwks_lock = threading.Lock()
        self._userinfo: OrderedDict[str, dict] = OrderedDict()
        self._userinfo_lock = threading.Lock()

    @classmethod
    def auth0(cls, domain: str, audience: str, **kwargs: Any) -> JWKSVerifier:
        """Balrog's configuration (``AUTH0_DOMAIN``, ``AUTH0_AUDIENCE``) as a verifier."""
        return cls(f"https://{domain}/", audience, **kwargs)

    def identity(self, token: str) -> str:
        claims = self.verified_claims(token)
        if "gty" in claims:
            client_id = claims.get("azp")
            if not isinstance(client_id, str) or not client_id:
                raise AuthError("invalid_claims", "machine-to-machine token without an azp claim")
            return self.m2m_accounts.get(client_id, client_id)
        email = claims.get("email")
        if not _is_email(email):
            email = self.userinfo(token).get("email")
        if not _is_email(email):
            raise AuthError.of(NO_EMAIL)
        return email

    def verified_claims(self, token: str) -> dict[str, Any]:
        """The claims of a token whose signature, ``aud``, ``iss`` and ``exp`` check out."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError.of(NOT_RS256) from None
        # Only RS256: refuses HS256 (the public key would be usable as an HMAC secret) and "none".
        if header.get("alg") != "RS256":
            raise AuthError.of(NOT_RS256)
        key = self.signing_key(header.get("kid"))
        try:
            return jwt.decode(token, key, algorithms=["RS256"], audience=self.audience, issuer=self.issuer,
                              leeway=self.leeway, options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise AuthError.of(EXPIRED) from None
        except (jwt.InvalidAudienceError, jwt.InvalidIssuerError, jwt.MissingRequiredClaimError,
                jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError):
            raise AuthError.of(BAD_CLAIMS) from None
        except jwt.InvalidTokenError:  # bad signature, malformed payload, ...
            raise AuthError.of(UNPARSABLE) from None

    def signing_key(self, kid: Any) -> jwt.PyJWK:
        """The JWKS key for ``kid``; refetches early once if it is unknown (see the class doc)."""
        if not isinstance(kid, str):
            raise AuthError.of(NO_RSA_KEY)
        with self._jwks_lock:
            keys = self._current_keys()
            if kid not in keys and self.clock() - self._last_attempt >= self.refetch_after:
                try:
                    keys = self._fetch_keys()
                except AuthError:
                    pass  # keep the keys we have: the kid is simply unknown
        if kid not in keys:
            raise AuthError.of(NO_RSA_KEY)
        return keys[kid]

    def _current_keys(self) -> dict[str, jwt.PyJWK]:
        if self._keys is None or self.clock() - self._fetched_at >= self.jwks_ttl:
            return self._fetch_keys()
        return self._keys

    def _fetch_keys(self) -> dict[str, jwt.PyJWK]:
        """Fetch and parse the JWKS (lock held). A failure is not cached: the next request retries."""
        self._last_attempt = self.clock()
        try:
            document = self.http_get(self.jwks_url, {})
            entries = document["keys"]
            if not isinstance(entries, list):
                raise TypeError("'keys' is not a list")
        except Exception as exc:
            raise AuthError("invalid_key", f"Unable to fetch the signing keys (JWKS) from {self.jwks_url}: "
                                           f"{type(exc).__name__}") from exc
        keys = {}
        for entry in entries:
            key = _rsa_signing_key(entry)
            if key is not None:
                keys[entry["kid"]] = key
        self._keys, self._fetched_at = keys, self.clock()
        return keys

    def userinfo(self, token: str) -> dict[str, Any]:
        """The userinfo profile of ``token`` (already verified), memoised per token (LRU).

        Keyed by a hash so the cache does not hold usable tokens.
        """
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._userinfo_lock:
            if digest in self._userinfo:
                self._userinfo.move_to_end(digest)
                return self._userinfo[digest]
        try:
            profile = self.http_get(self.userinfo_url, {"Authorization": f"Bearer {token}"})
        except Exception as exc:
            raise AuthError("incomplete_validation", f"Unable to fetch the user profile from "
                                                     f"{self.userinfo_url}: {type(exc).__name__}") from exc
        if not isinstance(profile, dict):
            raise AuthError("incomplete_validation", "The userinfo endpoint did not answer a JSON object")
        with self._userinfo_lock:
            self._userinfo[digest] = profile
            while len(self._userinfo) > self.userinfo_cache_size:
                self._userinfo.popitem(last=False)
        return profile


def _is_email(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _rsa_signing_key(entry: Any) -> jwt.PyJWK | None:
    """A usable RS256 key from one JWKS entry, or None (other key types, encryption keys, junk)."""
    if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not isinstance(entry.get("kid"), str):
        return None
    if entry.get("use", "sig") != "sig":
        return None
    try:
        return jwt.PyJWK(entry, algorithm="RS256")
    except jwt.PyJWTError:
        return None


def authenticate(header: str | None, verifier: TokenVerifier, known_user: Callable[[str], bool]) -> str:
    """The Balrog username making the request, or an :class:`AuthFailure`.

    ``known_user(name)`` answers whether the user has at least one permission row; it is asked only
    for human identities (those containing ``@``), as Balrog does (auth-and-permissions.md §1.3).
    """
    username = verifier.identity(parse_authorization(header))
    if not username:
        raise LoginRequired()
    if "@" in username and not known_user(username):
        raise NotAuthorized(username)
    return username
