"""Real network peers for the agent's tests, each in a thread on 127.0.0.1: an SMTP sink (the
heads-up mails), a small HTTP endpoint (metrics JSON, webhooks, an OAuth token endpoint), and
the admin API itself (the real app, seeded with the users of these tests)."""
from __future__ import annotations

import contextlib
import email
import email.policy
import http.server
import json
import socketserver
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_app.admin.testing import seed, serve
from balrog_engine import load_plugins

REGISTRY = load_plugins()


# --- SMTP -------------------------------------------------------------------------------------------------
@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage
    received: float  # time.time() when the DATA was accepted

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return self.message.get_content()


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough RFC 5321 for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode("ascii") + b"\r\n")

    def handle(self) -> None:
        sink: SmtpSink = self.server.sink
        self.reply("220 127.0.0.1 test SMTP sink")
        sender, recipients = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-127.0.0.1")
                self.reply("250 8BITMIME")
            elif verb == "HELO" or verb == "NOOP":
                self.reply("250 OK")
            elif verb == "MAIL":
                if sink.refuse:
                    self.reply("554 refused by the test")
                    continue
                sender, recipients = command.split(":", 1)[1].strip().strip("<>"), []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while True:
                    data = self.rfile.readline()
                    if data in (b".\r\n", b".\n", b""):
                        break
                    lines.append(data[1:] if data.startswith(b"..") else data)  # undo dot-stuffing
                message = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                with sink.lock:
                    sink.mails.append(Mail(sender, recipients, message, time.time()))
                self.reply("250 OK queued")
            elif verb == "RSET":
                sender, recipients = None, []
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class SmtpSink:
    def __init__(self):
        self.mails: list[Mail] = []
        self.lock = threading.Lock()
        self.refuse = False
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
        self.server.daemon_threads = True
        self.server.sink = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SmtpSink:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, predicate: Callable[[Mail], bool], timeout: float = 20.0) -> Mail:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for mail in self.mails:
                    if predicate(mail):
                        return mail
            time.sleep(0.05)
        raise AssertionError(f"no such mail within {timeout}s; got {[m.subject for m in self.mails]}")


# --- HTTP -------------------------------------------------------------------------------------------------
@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class HttpEndpoint:
    """Answers every request with ``respond(request) -> (status, json)``; records the requests."""

    def __init__(self, respond: Callable[[Request], tuple[int, Any]]):
        self.respond = respond
        self.requests: list[Request] = []
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Request(self.command, parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
                                  dict(self.headers), json.loads(raw) if raw else None)
                endpoint.requests.append(request)
                status, answer = endpoint.respond(request)
                data = json.dumps(answer).encode() if not isinstance(answer, bytes) else answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the admin API ----------------------------------------------------------------------------------------
ADMIN, ALICE, BOB, CAROL, AGENT = ("admin@example.com", "alice@example.com", "bob@example.com", "carol@example.com",
                                   "balrogagent")
USERS = (ADMIN, ALICE, BOB, CAROL, AGENT)
TOKENS = {user: f"t-{user}" for user in USERS}
PERMISSIONS = [
    {"username": ADMIN, "permission": "admin", "options": None},
    {"username": ALICE, "permission": "rule", "options": {"products": ["Firefox"]}},
    {"username": BOB, "permission": "rule", "options": {"products": ["Firefox"]}},
    {"username": CAROL, "permission": "rule", "options": {"products": ["Firefox"]}},
    # The agent's account, as Balrog's own local setup creates it (§8.1): enact, nothing else.
    {"username": AGENT, "permission": "scheduled_change", "options": {"actions": ["enact"]}},
]
ROLES = [{"username": BOB, "role": "relman"}, {"username": CAROL, "role": "relman"}]
ALLOWLIST = {"download.mozilla.org": ["Firefox"]}


def seed_database(storage) -> None:
    seed(storage, PERMISSIONS, ROLES)


def call(base_url: str, method: str, path: str, user: str | None = None, body: Any = None) -> tuple[int, Any]:
    """One admin API request over HTTP; (status, parsed JSON or text)."""
    headers = {"Content-Type": "application/json"}
    if user:
        headers["Authorization"] = f"Bearer {TOKENS[user]}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode()


@contextlib.contextmanager
def admin_api(url: str = "memory://", wrap: Callable | None = None):
    """The real admin app over HTTP (in a thread), seeded; yields (base_url, storage).
    ``wrap(app)`` may put WSGI middleware in front (to lose answers, fail transiently…)."""
    storage = REGISTRY.storage_for(url)
    seed_database(storage)
    ctx = AdminContext(storage, REGISTRY, StaticTokens({token: user for user, token in TOKENS.items()}),
                       system_accounts=frozenset({AGENT}), allowlisted_domains=ALLOWLIST)
    app = create_admin_app(ctx)
    try:
        with serve(wrap(app) if wrap else app) as base_url:
            yield base_url, storage
    finally:
        storage.close()


# --- a Firefox set-up shared by the tests -------------------------------------------------------------------
def release_blob(name: str, version: str) -> str:
    locales = {"en-US": {"complete": {"filesize": 1000, "from": "*", "hashValue": "00" * 20,
                                      "fileUrl": "http://download.mozilla.org/?product=firefox-complete"}}}
    return json.dumps({"name": name, "schema_version": 1, "hashFunction": "sha512", "appv": version, "extv": version,
                       "platforms": {"WINNT_x86-msvc": {"buildID": "20180501120000", "locales": locales}}})


RULES = {  # rule_id -> channel; "release" is protected by 2 relman signoffs
    1: ("release", 100), 2: ("beta", 90), 3: ("release", 80), 4: ("beta", 70), 5: ("beta", 60),
}


def firefox(base_url: str) -> None:
    """Two releases, the rules of :data:`RULES` (all on Firefox-60.0), and 2 relman signoffs
    required for Firefox/release."""
    for name, version in (("Firefox-60.0-build1", "60.0"), ("Firefox-61.0-build1", "61.0")):
        status, _ = call(base_url, "PUT", f"/releases/{name}", ADMIN,
                         {"name": name, "product": "Firefox", "blob": release_blob(name, version)})
        assert status == 201, status
    for rule_id, (channel, priority) in RULES.items():
        status, answer = call(base_url, "POST", "/rules", ADMIN, {
            "priority": priority, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
            "channel": channel, "mapping": "Firefox-60.0-build1"})
        assert (status, answer) == (200, rule_id), (status, answer)
    status, _ = call(base_url, "POST", "/required_signoffs/product", ADMIN,
                     {"product": "Firefox", "channel": "release", "role": "relman", "signoffs_required": 2})
    assert status == 201, status


def schedule(base_url: str, rule_id: int, when: int | None, user: str = ALICE, conditions: dict | None = None,
             **changes) -> int:
    """Schedule an update of a rule (its current values overlaid with ``changes``); the sc_id."""
    status, rule = call(base_url, "GET", f"/rules/{rule_id}")
    assert status == 200, rule
    body = {k: v for k, v in rule.items() if k not in ("rule_id", "data_version")}
    body.update(changes, change_type="update", rule_id=rule_id, data_version=rule["data_version"])
    if when is not None:
        body["when"] = when
    if conditions is not None:
        body["conditions"] = conditions
    status, answer = call(base_url, "POST", "/scheduled_changes/rules", user, body)
    assert status == 200, answer
    return answer["sc_id"]


def sign(base_url: str, sc_id: int, *users: str) -> None:
    for user in users:
        status, answer = call(base_url, "POST", f"/scheduled_changes/rules/{sc_id}/signoffs", user, {"role": "relman"})
        assert status == 200, answer


def now_ms(plus_seconds: float = 0.0) -> int:
    return int((time.time() + plus_seconds) * 1000)
