"""The update protocol at the HTTP level: ``/update/…`` and ``/json/…`` (public-api.md §3, §5).

:func:`respond` maps (path, query string, User-Agent) to a complete
:class:`Response` — status, headers and body bytes — using a snapshot. The
public falcon app and the embedded :class:`~balrog_engine.engine.Engine` both
answer through it, so tests of one are tests of the other.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .blobs import BadRequest, XmlParts
from .query import (
    QueryError,
    UpdateQuery,
    build_json_query,
    build_update_query,
    match_json_path,
    match_update_path,
    params_for,
    parse_query_string,
    validate_params,
)
from .rules import RuleError
from .versions import InvalidPin, InvalidVersion

log = logging.getLogger("balrog.responses")

XML_TYPE = "text/xml; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json"
PROBLEM_TYPE = "application/problem+json"

EMPTY_UPDATES = '<?xml version="1.0"?>\n<updates>\n</updates>'
NOT_FOUND_TEXT = (
    "The requested URL was not found on the server. If you entered the URL manually please check your "
    "spelling and try again."
)
UNICODE_ERROR = (
    '{"type": "about:blank", "title": "Unicode Error", "detail": "Connexion was unable to parse some '
    'unicode data correctly.", "status": 400}'
)
# Two 2019 Nightlies could not parse whitespace (public-api.md §3.9).
NIGHTLY_WORKAROUND_RELEASE = "Firefox-mozilla-central-nightly-latest"
NIGHTLY_WORKAROUND_BUILDS = frozenset({"20190103220533", "20190104093221"})


@dataclass
class Response:
    status: int
    content_type: str | None
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    # For metrics and logs: what kind of answer this was, and for which product/channel.
    outcome: str = "other"
    product: str | None = None
    channel: str | None = None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass(frozen=True)
class HeaderPolicy:
    """Headers added to every public response (public-api.md §2)."""

    cache_control: str = "public, max-age=90"
    strict_transport_security: str = "max-age=31536000;"
    content_type_options: str = "nosniff"
    content_security_policy: str = "default-src 'none'; frame-ancestors 'none'"

    def apply(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        present = {k.lower() for k, _ in headers}
        out = list(headers)
        out.append(("Strict-Transport-Security", self.strict_transport_security))
        out.append(("X-Content-Type-Options", self.content_type_options))
        if "cache-control" not in present:
            out.append(("Cache-Control", self.cache_control))
        out.append(("Content-Security-Policy", self.content_security_policy))
        return out


_BARE_AMP = re.compile(r"&(?!amp;)")


def xml_document(parts: XmlParts) -> str:
    """Join a blob's parts into a document; only ``&`` is escaped, as the reference does."""
    text = "\n".join(('<?xml version="1.0"?>', "<updates>", parts.header, *parts.lines, parts.footer, "</updates>"))
    return _BARE_AMP.sub("&amp;", text) if "&" in text else text


def problem(status: int, title: str | None, detail: str) -> Response:
    body = json.dumps({"detail": detail, "status": status, "title": title, "type": "about:blank"}, indent=2,
                      sort_keys=True) + "\n"
    return Response(status, PROBLEM_TYPE, body.encode())


def text_error(message: str, status: int = 400) -> Response:
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Response(status, TEXT_TYPE, escaped.encode("utf-8"))


def not_found() -> Response:
    return Response(404, TEXT_TYPE, NOT_FOUND_TEXT.encode())


def _labelled(response: Response, outcome: str) -> Response:
    response.outcome = outcome
    return response


def _rule_headers(rule_id: str, data_version: str) -> list[tuple[str, str]]:
    return [("Rule-ID", rule_id), ("Rule-Data-Version", data_version)]


class ResponseCache:
    """Answers for identical requests, valid for one snapshot; bounded, oldest evicted first.

    Most clients send byte-identical URLs, so this turns evaluation + rendering into one
    dict lookup. It belongs to a snapshot: a swap starts an empty cache. Answers that
    depended on the backgroundRate dice are never stored (each client gets its own roll).
    """

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._owner: object = None
        self._entries: dict = {}

    def get(self, snapshot: object, key) -> "Response | None":
        if self._owner is not snapshot:
            return None
        return self._entries.get(key)

    def put(self, snapshot: object, key, response: "Response") -> None:
        if self._owner is not snapshot:
            self._owner, self._entries = snapshot, {}
        entries = self._entries
        if len(entries) >= self.max_entries:
            try:
                del entries[next(iter(entries))]
            except (StopIteration, KeyError, RuntimeError):  # another thread got there first
                pass
        entries[key] = response

    def __len__(self) -> int:
        return len(self._entries)


class Protocol:
    """Answers ``/update`` and ``/json`` requests from whatever snapshot ``snapshot()`` returns."""

    def __init__(
        self,
        snapshot: Callable[[], object],
        normalizers: Sequence[Callable[[UpdateQuery], UpdateQuery]] = (),
        signers: Sequence[Callable[[UpdateQuery, bytes], tuple[str, str] | None]] = (),
        cache_size: int = 0,
    ):
        self._snapshot = snapshot
        self.normalizers = tuple(normalizers)
        self.signers = tuple(signers)
        self.cache = ResponseCache(cache_size) if cache_size > 0 else None

    def respond(self, path: str | None, query_string: str = "", user_agent: str = "") -> Response:
        """``path`` is the percent-decoded path (None when it was not UTF-8); ``query_string`` is raw.

        Responses are shared with the cache: callers must not modify them."""
        if path is None:
            return Response(400, JSON_TYPE, UNICODE_ERROR.encode(), outcome="bad_request")
        cache = self.cache
        if cache is None:
            return self._respond(path, query_string, user_agent)
        snapshot = self._snapshot()
        # Only Darwin targets look at the User-Agent, and only for "PPC".
        key = (path, query_string, "PPC" in user_agent)
        response = cache.get(snapshot, key)
        if response is None:
            snapshot.take_rolled()
            response = self._respond(path, query_string, user_agent)
            if not snapshot.take_rolled() and response.status < 500:
                cache.put(snapshot, key, response)
        return response

    def _respond(self, path: str, query_string: str, user_agent: str) -> Response:
        segments = path.split("/")
        if path.startswith("/update"):
            matched = match_update_path(segments[2:]) if segments[1] == "update" else None
            if matched is None:  # any other /update… path: the empty document, no rule headers
                return Response(200, XML_TYPE, EMPTY_UPDATES.encode(), outcome="unrouted")
            kind = "xml"
        elif path.startswith("/json/"):
            matched = match_json_path(segments[2:])
            if matched is None:
                return not_found()
            kind = "json"
        else:
            return not_found()
        protocol, fields = matched
        params = parse_query_string(query_string)
        try:
            validate_params(params, params_for(kind, protocol))
        except QueryError as exc:
            return _labelled(problem(400, exc.title, exc.detail), "bad_request")
        if kind == "xml":
            query = build_update_query(protocol, fields, params, user_agent)
        else:
            query = build_json_query(protocol, fields, params)
        for normalize in self.normalizers:
            query = normalize(query)
        snapshot = self._snapshot()
        try:
            evaluation = snapshot.evaluate(query)
            render = self._render_xml if kind == "xml" else self._render_json
            response = render(query, evaluation, snapshot)
        except (RuleError, BadRequest) as exc:
            response = _labelled(text_error(exc.message), "bad_request")
        except (InvalidVersion, InvalidPin) as exc:
            response = _labelled(text_error(str(exc)), "bad_request")
        response.product, response.channel = query.product, query.channel
        return response

    def _render_xml(self, query: UpdateQuery, evaluation, snapshot) -> Response:
        headers = _rule_headers(evaluation.rule_id, evaluation.rule_data_version)
        release = evaluation.release
        if release is None:
            return Response(200, XML_TYPE, EMPTY_UPDATES.encode(), headers, "no_update")
        if release.blob.content != "xml":
            return _labelled(text_error("Wrong blob type"), "bad_request")
        body = xml_document(release.blob.render_xml(query, evaluation.update_type, snapshot))
        if release.name == NIGHTLY_WORKAROUND_RELEASE and query.buildID in NIGHTLY_WORKAROUND_BUILDS:
            body = body.replace("\n", "").replace("    ", "")
        payload = body.encode("utf-8")
        return Response(200, XML_TYPE, payload, headers + self._signature(query, payload), "update")

    def _render_json(self, query: UpdateQuery, evaluation, snapshot) -> Response:
        release = evaluation.release
        if release is None or release.blob.content != "json":
            # XML-only blobs answer 500 in the reference; "no update" is the honest answer.
            return Response(404, HTML_TYPE, b"", [], "no_update")
        payload = release.blob.render_json(query, snapshot).encode("utf-8")
        headers = _rule_headers(evaluation.rule_id, evaluation.rule_data_version)
        return Response(200, JSON_TYPE, payload, headers + self._signature(query, payload), "update")

    def _signature(self, query: UpdateQuery, payload: bytes) -> list[tuple[str, str]]:
        for sign in self.signers:
            header = sign(query, payload)
            if header is not None:
                return [header]
        return []
