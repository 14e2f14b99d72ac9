"""Explain and simulate (docs/explain.md): read-only endpoints over :mod:`balrog_engine.explain`.

    GET|HEAD /explain?url=<update URL>[&user_agent=<UA>]   how the public server answers that URL, and why
    POST     /explain/preview                             answers before and after a proposed rule change
    GET|HEAD /explain/lint                                rules an earlier rule always beats

Nothing is written, so any known user may call them (no permission). As everywhere in this API,
the request is validated before authentication: a malformed URL, change or body is a
``problem+json`` 400 whose detail starts with the offending field (``url: …``, ``urls[3]: …``,
``change.rule.priority: …``).

The explanations are computed on a snapshot built from the live storage exactly as the public
server builds its own (same code, same deployment settings as far as the admin app knows them:
the allowlisted domains of its settings, the rest stored with the data). It is rebuilt only when
the storage's change counter moves.
"""
from __future__ import annotations

import threading
from typing import Any, Mapping

from balrog_engine import ChangeError, ExplainInputError, RuleChange, ServerState, explain, lint, parse_change, preview
from balrog_engine.explain import CHANGE_COLUMNS, MAX_PREVIEW_URLS, parse_request

from .app import AdminContext, Resource, send_json
from .problems import Problem, invalid
from .requests import check_encodable, check_query, json_object, query_value
from .rules import NewRuleSchema, RuleUpdateSchema, load_body

PREVIEW_MEMBERS = ("change", "urls", "user_agent")


class LiveState:
    """The explainer's view of the live storage, rebuilt when the change counter moves."""

    def __init__(self, ctx: AdminContext):
        self.ctx = ctx
        self._lock = threading.Lock()
        self._state: ServerState | None = None

    def _fresh(self, state: ServerState | None, counter: int) -> bool:
        return state is not None and state.snapshot.change_counter == counter

    def get(self) -> ServerState:
        counter = self.ctx.storage.change_counter()
        state = self._state
        if self._fresh(state, counter):
            return state
        with self._lock:  # one rebuild at a time; the others then find it done
            state = self._state
            if not self._fresh(state, counter):
                # An empty allowlist in the admin settings means "not configured": the stored one applies,
                # as on the public server.
                overrides = {"allowlisted_domains": dict(self.ctx.allowlisted_domains) or None,
                             "special_force_hosts": self.ctx.special_force_hosts}
                state = ServerState.from_storage(self.ctx.storage, self.ctx.registry, overrides)
                self._state = state
        return state


def _refused(error: ExplainInputError) -> Problem:
    return invalid(str(error))


class Explain(Resource):
    """``/explain?url=…``"""

    def __init__(self, ctx: AdminContext, live: LiveState):
        super().__init__(ctx)
        self.live = live

    def on_get(self, req, resp):
        check_query(req, ("url", "user_agent"))
        url = query_value(req, "url")
        if url is None:
            raise invalid("Missing query parameter 'url'")
        try:
            request = parse_request(url, query_value(req, "user_agent") or "", self.ctx.registry.query_normalizers)
        except ExplainInputError as exc:
            raise _refused(exc) from None
        self.ctx.user(req)
        send_json(resp, explain(self.live.get(), request).to_json())


class Preview(Resource):
    """``/explain/preview``: ``{"change": {...}, "urls": [...], "user_agent": "..."}``."""

    def __init__(self, ctx: AdminContext, live: LiveState):
        super().__init__(ctx)
        self.live = live

    def on_post(self, req, resp):
        check_query(req)
        body = json_object(req)
        check_encodable(body)
        extra = sorted(set(body) - set(PREVIEW_MEMBERS))
        if extra:
            raise invalid(f"{extra[0]}: unknown member (a preview takes {', '.join(PREVIEW_MEMBERS)})")
        user_agent = body.get("user_agent", "")
        if not isinstance(user_agent, str):
            raise invalid(f"user_agent: {user_agent!r} is not of type 'string'")
        requests = self._requests(body.get("urls"), user_agent)
        change = self._change(body.get("change"))
        self.ctx.user(req)
        self._check_mappings(change)
        try:
            result = preview(self.live.get(), change, requests, user_agent)
        except ExplainInputError as exc:  # e.g. an edit of a rule that does not exist
            raise _refused(exc) from None
        send_json(resp, result.to_json())

    def _requests(self, urls: Any, user_agent: str) -> list:
        if urls is None:
            raise invalid("urls: required: a list of update URLs")
        if not isinstance(urls, list):
            raise invalid(f"urls: {urls!r} is not of type 'array'")
        if not urls:
            raise invalid("urls: must list at least one update URL")
        if len(urls) > MAX_PREVIEW_URLS:
            raise invalid(f"urls: at most {MAX_PREVIEW_URLS} URLs per preview (got {len(urls)})")
        normalizers = self.ctx.registry.query_normalizers
        try:
            return [parse_request(url, user_agent, normalizers, f"urls[{i}]") for i, url in enumerate(urls)]
        except ExplainInputError as exc:
            raise _refused(exc) from None

    @staticmethod
    def _change(doc: Any) -> RuleChange:
        """The change, its rule values read as ``POST /rules`` / ``PUT /rules/<id>`` read them (same
        checks, same normalisation: trimmed strings, blank as null, no whitespace in locale and
        distribution), so the preview shows what the real write would do."""
        if doc is None:
            raise invalid("change: required: {\"action\": \"create\" | \"update\" | \"delete\", ...}")
        if isinstance(doc, Mapping) and isinstance(doc.get("rule"), Mapping) and \
                doc.get("action") in ("create", "update"):
            values = doc["rule"]
            unknown = sorted(set(values) - set(CHANGE_COLUMNS))
            if unknown:
                raise invalid(f"change.rule.{unknown[0]}: is not a rule column that can be set")
            try:
                if doc["action"] == "create":
                    loaded = load_body(NewRuleSchema, values)
                else:
                    loaded = load_body(RuleUpdateSchema, {**values, "data_version": 1})
                    loaded.pop("data_version")
            except Problem as problem:
                raise invalid(f"change.rule: {problem.detail}") from None
            if doc["action"] == "create" and loaded.get("mapping") is None:
                raise invalid("change.rule.mapping: a new rule needs a mapping (POST /rules refuses it without)")
            doc = {**doc, "rule": loaded}
        try:
            return parse_change(doc)
        except ChangeError as exc:
            raise _refused(exc) from None

    def _check_mappings(self, change: RuleChange) -> None:
        """As ``POST /rules`` does: a mapping must name a release that exists."""
        for column in ("mapping", "fallbackMapping"):
            name = change.values.get(column)
            if name is not None and not self.ctx.storage.releases([name]):
                raise invalid(f"change.rule.{column}: there is no release named {name!r}")


class Lint(Resource):
    """``/explain/lint``"""

    def __init__(self, ctx: AdminContext, live: LiveState):
        super().__init__(ctx)
        self.live = live

    def on_get(self, req, resp):
        check_query(req)
        self.ctx.user(req)
        findings = lint(self.live.get())
        send_json(resp, {"count": len(findings), "findings": [f.to_json() for f in findings]})


def routes(ctx: AdminContext) -> list:
    live = LiveState(ctx)
    return [("/explain", Explain(ctx, live)), ("/explain/preview", Preview(ctx, live)),
            ("/explain/lint", Lint(ctx, live))]
