"""Explain and simulate: why the update server answers a request the way it does (Balrog issue #1065).

Three questions an operator asks about a rules table:

* :func:`explain` — for one public update URL: the query the server parses from it, every
  rule in evaluation order with whether it matched and, if not, the first column that
  failed (the rule's value against the request's, in words); the rule that decides, what
  its mapping / fallbackMapping / backgroundRate make of the request, and the exact
  answer(s) the public server sends.
* :func:`preview` — those answers for a list of URLs before and after a proposed rule
  change (a new rule, an edit, a deletion), without writing anything.
* :func:`lint` — rules no request can ever reach because an earlier rule provably matches
  every request they match.

Nothing here re-implements matching or rendering, so an explanation cannot disagree with
the server: a rule's verdict comes from the snapshot's own compiled rule, and each column
of a failing rule is checked by compiling a rule that sets only that column (the same
compiler the server uses); answers come from the server's :class:`~.responses.Protocol`
over a snapshot built exactly as the public server builds its own. Only the lint reasons
about rules rather than requests, and it is one-sided on purpose: it reports a rule only
when it can prove the shadowing, never when unsure.
"""
from __future__ import annotations

import dataclasses
import heapq
import operator
import random
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

from .blobs import BadRequest, Evaluation, Release
from .matching import (
    MalformedExpression,
    channel_matches,
    compile_int_expression,
    compile_string_expression,
    compile_version_expression,
    fallback_channel,
    parse_query_version,
    split_expression,
)
from .plugins import PluginRegistry
from .query import (
    JSON_TEMPLATES,
    UPDATE_TEMPLATES,
    Force,
    QueryError,
    UpdateQuery,
    build_json_query,
    build_update_query,
    decode_path,
    match_json_path,
    match_update_path,
    params_for,
    parse_query_string,
    validate_params,
)
from .responses import Protocol, Response
from .rules import LOOSE_VERSION_PRODUCTS, CompiledRule, ParsedVersions, RuleError
from .snapshot import Snapshot, build_snapshot, reachable_release_names
from .snapshot import load_releases as load_reachable_releases
from .storage import RULE_COLUMNS, Storage, normalise_rule
from .versions import GlobVersion, InvalidPin, InvalidVersion, parse_mozilla, parse_mozilla_or_glob


#: The columns a rule matches on, in the order the server checks them (rule-matching.md §3):
#: the database-side columns first, then channel, version and the rest.
MATCH_COLUMNS: tuple[str, ...] = (
    "product", "buildTarget", "headerArchitecture", "distVersion", "channel", "version", "buildID", "memory",
    "osVersion", "instructionSet", "distribution", "locale", "mig64", "jaws",
)
_CANDIDATE_COLUMNS = frozenset({"buildTarget", "headerArchitecture", "distVersion"})

#: A preview evaluates at most this many URLs.
MAX_PREVIEW_URLS = 1000

#: Dice values that reach each branch of a throttled rule: 0 wins any backgroundRate above 0,
#: 99 loses any below 100 (rule-matching.md §5).
WINNING_ROLL, LOSING_ROLL = 0, 99


# --- input errors -------------------------------------------------------------------------------------
class ExplainInputError(ValueError):
    """Input the explainer refuses; ``field`` names the offending input (``url``, ``urls[3]``,
    ``change.rule.priority``…) so servers can answer a precise 400."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnparsableRequest(ExplainInputError):
    """A URL that is no update query. ``answer`` is what the public server replies to it anyway
    (the empty document, a 404 or a 400), when it is a path at all."""

    def __init__(self, field: str, message: str, answer: Response | None = None):
        super().__init__(field, message)
        self.answer = answer


class ChangeError(ExplainInputError):
    """A proposed rule change that is malformed or names no rule."""


# --- the dice -----------------------------------------------------------------------------------------
class _Dice:
    """The backgroundRate dice of the snapshots built here: random like the server's, unless a
    caller fixes the value (for its own thread only) to look at one branch of a throttled rule."""

    def __init__(self):
        self._local = threading.local()

    def roll(self) -> int:
        self._local.rolled = True
        fixed = getattr(self._local, "fixed", None)
        return random.randrange(100) if fixed is None else fixed

    @contextmanager
    def fixed(self, value: int) -> Iterator[Callable[[], bool]]:
        """Within the block every roll is ``value``; yields "were the dice rolled so far?"."""
        local = self._local
        saved = getattr(local, "fixed", None), getattr(local, "rolled", False)
        local.fixed, local.rolled = value, False
        try:
            yield lambda: local.rolled
        finally:
            local.fixed, local.rolled = saved


DICE = _Dice()


# --- what is explained ------------------------------------------------------------------------------
ReleaseLoader = Callable[[Iterable[str], Mapping[str, Release]], Mapping[str, Release]]


def _no_releases(names: Iterable[str], known: Mapping[str, Release]) -> Mapping[str, Release]:
    return {}


@dataclass(frozen=True)
class ServerState:
    """What the explainer works on: the rule rows, the :class:`Snapshot` the public server would
    build from them (with :data:`DICE` as its dice), a way to load releases the snapshot did not
    need (a proposed rule may map to one), and the query normalisers of the installed plugins."""

    rules: tuple[Mapping[str, Any], ...]
    snapshot: Snapshot
    load_releases: ReleaseLoader = _no_releases
    normalizers: tuple[Callable[[UpdateQuery], UpdateQuery], ...] = ()

    @classmethod
    def from_storage(cls, storage: Storage, registry: PluginRegistry,
                     overrides: Mapping[str, Any] | None = None) -> "ServerState":
        """Read storage once, as the public server does (:func:`build_snapshot`, same deployment
        ``overrides``), keeping the rule rows of that same read."""
        with storage.consistent_reads():
            rows = storage.rules()
            snapshot = build_snapshot(storage, registry, overrides, roll=DICE.roll)

        def load(names: Iterable[str], known: Mapping[str, Release]) -> Mapping[str, Release]:
            return load_reachable_releases(storage, registry, names, known)

        return cls(tuple(rows), snapshot, load, tuple(registry.query_normalizers))

    @cached_property
    def rules_by_id(self) -> Mapping[int, Mapping[str, Any]]:
        return {row["rule_id"]: row for row in self.rules}

    def rule(self, rule_id: int) -> Mapping[str, Any] | None:
        return self.rules_by_id.get(rule_id)

    def with_rules(self, rows: Iterable[Mapping[str, Any]]) -> "ServerState":
        """The same server with other rules: releases, shutoffs, pins and settings are kept;
        releases the new rules name and the snapshot lacks are loaded."""
        rows = tuple(rows)
        releases = dict(self.snapshot.releases)
        missing = reachable_release_names(rows, ()) - releases.keys()
        if missing:
            releases.update(self.load_releases(missing, releases))
        base = self.snapshot
        snapshot = Snapshot(rules=rows, releases=releases, shutoffs=base.shutoffs, pins=base.pins,
                            settings=base.settings, change_counter=base.change_counter, roll=DICE.roll,
                            load_errors=base.load_errors)
        return replace(self, rules=rows, snapshot=snapshot)


# --- from a URL to a query ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """One update request as the server sees it: the decoded path, the raw query string, the
    User-Agent and the normalised query built from them."""

    url: str
    path: str
    query_string: str
    user_agent: str
    protocol: str
    query: UpdateQuery

    def query_json(self) -> dict:
        q = self.query
        out = {"kind": q.kind, "protocol": self.protocol}
        for name in ("product", "version", "buildID", "buildTarget", "locale", "channel", "fallbackChannel",
                     "osVersion", "distribution", "distVersion", "instructionSet", "memory", "jaws", "mig64",
                     "headerArchitecture", "pin"):
            out[name] = getattr(q, name)
        out["force"] = None if q.force is None else q.force.value
        return out


def parse_request(url: Any, user_agent: str = "", normalizers: Sequence[Callable] = (),
                  field: str = "url") -> Request:
    """Turn a public update URL (``/update/6/…/update.xml?force=1``, percent-encoded as on the
    wire; a full ``https://host/…`` URL is accepted too) into the query the server evaluates,
    with the same functions the server uses. Raises :class:`UnparsableRequest` (naming ``field``)
    for anything that is not an update query, with the public server's answer attached."""
    if not isinstance(url, str) or not url:
        raise UnparsableRequest(field, "must be a non-empty string: an update URL path such as /update/6/…/update.xml")
    target = url
    if not url.startswith("/") and "://" in url.split("?", 1)[0]:  # a full URL: keep its path and query
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise UnparsableRequest(field, f"{url!r} is not a URL: {exc}") from None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not target.startswith("/"):
        raise UnparsableRequest(field, f"{url!r} is not a URL path: it must start with /update/ or /json/")
    raw_path, _, query_string = target.partition("?")
    path = decode_path(raw_path)

    def refuse(message: str) -> UnparsableRequest:
        # The server refuses these before it looks at any snapshot.
        return UnparsableRequest(field, message, Protocol(lambda: None).respond(path, query_string, user_agent))

    if path is None:
        raise refuse("the percent-decoded path is not UTF-8 (the public server answers 400 Unicode Error)")
    segments = path.split("/")
    if path.startswith("/update"):
        matched = match_update_path(segments[2:]) if segments[1] == "update" else None
        kind = "xml"
    elif path.startswith("/json/"):
        matched = match_json_path(segments[2:])
        kind = "json"
    else:
        raise refuse("not an update URL: the path must start with /update/ or /json/ (the public server answers 404)")
    if matched is None:
        raise refuse(_routing_problem(path, segments))
    protocol, fields = matched
    params = parse_query_string(query_string)
    try:
        validate_params(params, params_for(kind, protocol))
    except QueryError as exc:
        raise refuse(f"{exc.detail.splitlines()[0]} (the public server answers 400)") from None
    query = build_update_query(protocol, fields, params, user_agent) if kind == "xml" else \
        build_json_query(protocol, fields, params)
    for normalize in normalizers:
        query = normalize(query)
    return Request(url, path, query_string, user_agent, protocol, query)


def _routing_problem(path: str, segments: list[str]) -> str:
    """In words, why no protocol template fits ``path`` (the server's matchers said so)."""
    if path.startswith("/update"):
        templates, suffix, prefix = UPDATE_TEMPLATES, "update.xml", "/update"
        answer = " (the public server answers 200 with the empty update document)"
        if segments[1] != "update":
            return f"the path must start with /update/<protocol>/, not {'/' + segments[1]!r}{answer}"
    else:
        templates, suffix, prefix = JSON_TEMPLATES, "update.json", "/json"
        answer = " (the public server answers 404)"
    rest = segments[2:]
    if len(rest) < 2 or rest[-1] != suffix:
        return f"the path must end with /{suffix}{answer}"
    protocol, values = rest[0], rest[1:-1]
    names = templates.get(protocol)
    if names is None:
        return f"unknown protocol {protocol!r} for {prefix}/ (known: {', '.join(templates)}){answer}"
    if len(values) != len(names):
        return (f"{prefix}/{protocol}/ takes {len(names)} segments ({'/'.join(names)}) before {suffix}, "
                f"got {len(values)}{answer}")
    empty = [name for name, value in zip(names, values) if not value]
    if empty:
        return f"segment {empty[0]} is empty{answer}"
    return f"the path fits no {prefix}/{protocol}/ template{answer}"


# --- rule verdicts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reason:
    """Why a rule did not match: the first failing column, both values, in words."""

    field: str
    rule_value: Any
    request_value: Any
    text: str

    def to_json(self) -> dict:
        return {"field": self.field, "rule_value": self.rule_value, "request_value": self.request_value,
                "text": self.text}


@dataclass(frozen=True)
class RuleVerdict:
    """One rule, as the server met it for a request. ``status``: ``selected`` (the rule that
    decides), ``matched`` (matches, but an earlier rule decides), ``no match`` or ``error`` (its
    version check fails the whole request with a 400)."""

    rule_id: int
    alias: str | None
    priority: int
    mapping: str | None
    fallback_mapping: str | None
    background_rate: int
    status: str
    reason: Reason | None = None

    def to_json(self) -> dict:
        return {"rule_id": self.rule_id, "alias": self.alias, "priority": self.priority, "mapping": self.mapping,
                "fallbackMapping": self.fallback_mapping, "backgroundRate": self.background_rate,
                "status": self.status, "reason": None if self.reason is None else self.reason.to_json()}


def _probe(row: Mapping[str, Any], column: str) -> CompiledRule:
    """A compiled rule that sets only ``column`` (and ``product``, which picks the version
    family): asking it is asking the server's own predicate for that one column."""
    probe = {"rule_id": row["rule_id"], column: row[column]}
    if column == "version":
        probe["product"] = row["product"]
    return CompiledRule(probe)


def _column_passes(row: Mapping[str, Any], column: str, query: UpdateQuery, versions: ParsedVersions) -> bool:
    """May raise InvalidVersion (version column), as the server's check does."""
    value = row[column]
    if value is None:
        return True
    if column == "product":
        return value == query.product
    if column == "channel":
        return channel_matches(value, query.channel, query.fallbackChannel)
    probe = _probe(row, column)
    if column == "version":
        return probe.version_matches(versions)
    if column in _CANDIDATE_COLUMNS:
        return probe.is_candidate(query)
    return probe.matches_rest(query)


def _first_failure(row: Mapping[str, Any], query: UpdateQuery, versions: ParsedVersions) -> Reason | None:
    for column in MATCH_COLUMNS:
        try:
            if _column_passes(row, column, query, versions):
                continue
            text = _failure_text(column, row[column], query)
        except InvalidVersion as exc:
            text = (f"version: comparing {query.version!r} with {row[column]!r} fails: {exc} "
                    f"Any version check that fails this way fails the whole request (HTTP 400).")
        return Reason(column, row[column], getattr(query, column), text)
    return None


def _failure_text(column: str, rule_value: Any, query: UpdateQuery) -> str:
    got = getattr(query, column)
    if column == "channel":
        fallback = f" (fallback channel {query.fallbackChannel!r})" if query.fallbackChannel != query.channel else ""
        hint = " A glob shorter than 3 characters never matches." if rule_value.endswith("*") and len(rule_value) < 3 \
            else ""
        return f"channel: the rule wants {rule_value!r}, the request has {query.channel!r}{fallback}.{hint}"
    if column in ("product", "buildTarget"):
        return f"{column}: the rule wants {rule_value!r}, the request has {got!r}."
    if column == "headerArchitecture":
        has = "none (JSON requests carry no architecture)" if got is None else \
            f"{got!r} (derived from the build target and the User-Agent)"
        return f"headerArchitecture: the rule wants {rule_value!r}, the request has {has}."
    if column == "distVersion":
        has = "none (only /update protocols 3 to 6 carry one)" if got is None else repr(got)
        return f"distVersion: the rule wants {rule_value!r}, the request has {has}."
    if column == "version":
        family = "loose" if query.product in LOOSE_VERSION_PRODUCTS else "Mozilla"
        return f"version: {got!r} does not satisfy {rule_value!r} (compared as {family} versions)."
    if column == "buildID":
        if got is None:
            return f"buildID: the rule wants {rule_value!r}, the request has none (JSON requests carry no buildID)."
        return f"buildID: {got!r} does not satisfy {rule_value!r} (build IDs compare as strings)."
    if column == "memory":
        return f"memory: {got} MB does not satisfy {rule_value!r}."
    if column == "osVersion":
        return (f"osVersion: {got or ''!r} does not contain all the terms of any alternative of {rule_value!r} "
                f"(',' separates alternatives, '&&' joins terms, matched as substrings).")
    if column in ("instructionSet", "distribution", "locale"):
        allowed = ", ".join(repr(v) for v in rule_value.split(","))
        if got is None:
            return f"{column}: the rule wants one of {allowed}, the request has none (JSON requests carry no {column})."
        if got == "":
            return f"{column}: the rule wants one of {allowed}, the request has none (empty)."
        return f"{column}: {got!r} is not one of {allowed}."
    if column in ("mig64", "jaws"):
        source = "no mig64 parameter" if column == "mig64" else "no JAWS: in systemCapabilities"
        has = f"none ({source})" if got is None else str(got).lower()
        return f"{column}: the rule wants {str(bool(rule_value)).lower()}, the request has {has}."
    return f"{column}: the rule wants {rule_value!r}, the request has {got!r}."


def rule_verdicts(state: ServerState, query: UpdateQuery, selected: int | None) -> tuple[RuleVerdict, ...]:
    """Every rule in evaluation order (priority descending, then rule_id) with its verdict.

    Whether a rule matches is decided by the snapshot's compiled rule exactly as
    :meth:`RuleIndex.select` decides it; only the reason for a miss is looked up column by
    column. ``selected`` is the rule the server's evaluation chose (None: none)."""
    index = state.snapshot.index
    versions = ParsedVersions(mozilla=parse_query_version(query.version, loose=False),
                              loose=parse_query_version(query.version, loose=True))
    candidates = {r.rule_id for r in index.candidates(query.product, query.channel, query.fallbackChannel)}
    rows = state.rules_by_id
    verdicts = []
    for compiled in index.rules:
        row = rows[compiled.rule_id]
        status = _real_status(compiled, candidates, query, versions)
        if status == "matched" and compiled.rule_id == selected:
            status = "selected"
        reason = None if status in ("matched", "selected") else _first_failure(row, query, versions)
        if status == "no match" and reason is None:  # cannot happen: both use the same predicates
            reason = Reason("", None, None, "the server's compiled rule refuses the request")
        verdicts.append(RuleVerdict(compiled.rule_id, row.get("alias"), compiled.priority, compiled.mapping,
                                    compiled.fallback_mapping, compiled.background_rate, status, reason))
    return tuple(verdicts)


def _real_status(rule: CompiledRule, candidates: set, query: UpdateQuery, versions: ParsedVersions) -> str:
    """The verdict of :meth:`RuleIndex.select` for one rule: product and channel through the
    index's candidates, then the version filter (a raising check is an error only for rules
    passing the database-side columns), then the remaining columns."""
    if rule.rule_id not in candidates:
        return "no match"
    try:
        version_ok = rule.version_matches(versions)
    except InvalidVersion:
        return "error" if rule.is_candidate(query) else "no match"
    return "matched" if version_ok and rule.matches_rest(query) else "no match"


# --- answers ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """One answer the server gives, and to which share of such requests (None: depends on dice
    rolled for other products' rules, see :class:`Answer`). ``roll`` is the dice value that
    reaches it (None: no dice involved); ``body`` is the exact response body."""

    share: int | None
    roll: int | None
    branch: str
    release: str | None
    note: str
    status: int
    content_type: str | None
    headers: Mapping[str, str]
    body: str

    def key(self) -> tuple:
        """What a client sees, without the Rule-ID/Rule-Data-Version headers."""
        return (self.share, self.status, self.content_type, self.body)

    def to_json(self) -> dict:
        return {"share": self.share, "roll": self.roll, "branch": self.branch, "release": self.release,
                "note": self.note, "status": self.status, "content_type": self.content_type,
                "headers": dict(self.headers), "body": self.body}


@dataclass(frozen=True)
class Answer:
    """What the server answers a request. ``rule_id``: the rule the evaluation selects (None:
    none matches, an emergency shutoff, or a version check failed the request); ``error``: why
    the request fails with a 400, if it does; ``random``: the answer depends on backgroundRate dice."""

    rule_id: int | None
    summary: str
    shutoff: tuple[str, str] | None
    error: str | None
    random: bool
    outcomes: tuple[Outcome, ...]

    def key(self) -> tuple:
        return tuple(o.key() for o in self.outcomes)

    def to_json(self) -> dict:
        return {"rule_id": self.rule_id, "summary": self.summary,
                "shutoff": None if self.shutoff is None else {"product": self.shutoff[0], "channel": self.shutoff[1]},
                "error": self.error, "random": self.random, "outcomes": [o.to_json() for o in self.outcomes]}


def _serve(state: ServerState, request: Request) -> tuple[Evaluation | None, str | None, Response]:
    """Evaluate and answer like the server (its Protocol, no response cache)."""
    snapshot = state.snapshot
    error = None
    evaluation = None
    try:
        evaluation = snapshot.evaluate(request.query)
    except (RuleError, BadRequest) as exc:
        error = exc.message
    except (InvalidVersion, InvalidPin) as exc:
        error = str(exc)
    response = Protocol(lambda: snapshot, state.normalizers).respond(request.path, request.query_string,
                                                                     request.user_agent)
    return evaluation, error, response


def _branch(row: Mapping[str, Any], force: Force | None) -> str:
    """Which of the rule's mappings rule-matching.md §5 picks: ``mapping``, ``fallback`` or ``dice``."""
    rate = 100 if row.get("backgroundRate") is None else row["backgroundRate"]
    if force is Force.MAIN or rate >= 100:
        return "mapping"
    if force is Force.FALLBACK or rate <= 0:
        return "fallback"
    return "dice"


def _throttling_text(row: Mapping[str, Any], force: Force | None) -> str:
    mapping, fallback = row.get("mapping"), row.get("fallbackMapping")
    rate = 100 if row.get("backgroundRate") is None else row["backgroundRate"]
    if not mapping:
        return "it has no mapping, so it serves nothing"
    otherwise = f"fallback {fallback!r}" if fallback else "nothing"
    branch = _branch(row, force)
    if branch == "mapping":
        if rate < 100:
            return f"force=1 takes mapping {mapping!r} whatever the backgroundRate ({rate}%)"
        return f"it serves mapping {mapping!r} to every request (backgroundRate 100%)"
    if branch == "fallback":
        if force is Force.FALLBACK:
            return f"force=-1 takes the losing branch of backgroundRate {rate}%: {otherwise}"
        return f"backgroundRate 0%: every request gets {otherwise}"
    return f"it serves mapping {mapping!r} to {rate}% of requests, {otherwise} otherwise"


def _outcome_note(state: ServerState, request: Request, row: Mapping[str, Any] | None, chosen: str | None,
                  evaluation: Evaluation | None, response: Response, shutoff: bool) -> tuple[str | None, str]:
    """(release served, what happened in words) for one answer."""
    served = evaluation.release.name if evaluation is not None and evaluation.release is not None else None
    if response.status >= 400:
        body = response.text.strip()
        return served, f"HTTP {response.status}" + (f": {body}" if body else "")
    if shutoff:
        return None, "emergency shutoff: nothing is served"
    if row is None:
        return None, "no rule matches: nothing is served"
    if not row.get("mapping"):
        return None, f"rule {row['rule_id']} has no mapping: nothing is served"
    if chosen is None:
        return None, "the losing branch has no fallbackMapping: nothing is served"
    if served is None:
        if state.snapshot.release(chosen) is None:
            return None, f"release {chosen!r} does not exist (or cannot be loaded): nothing is served"
        return None, (f"release {chosen!r} declines the request (its serve check: e.g. the client already has this "
                      f"version or a newer build, or the release has nothing for this build target): "
                      f"nothing is served")
    if served != chosen:
        return served, (f"release {chosen!r} is newer than the client's pin {request.query.pin!r}: the pin table "
                        f"serves {served!r} instead")
    return served, f"serves release {served!r}"


def answer(state: ServerState, request: Request) -> Answer:
    """What the public server answers ``request``: every distinct answer with its share when
    backgroundRate dice are involved (each branch is taken with the dice fixed, see :data:`DICE`)."""
    query = request.query
    with DICE.fixed(WINNING_ROLL) as rolled:
        evaluation, error, response = _serve(state, request)
        random_answer = rolled()
    results = [(WINNING_ROLL, evaluation, error, response)]
    if random_answer:
        with DICE.fixed(LOSING_ROLL):
            results.append((LOSING_ROLL, *_serve(state, request)))
        if results[1][2] != error:  # only one branch fails: its outcome says so, the request as such does not
            error = None
    snapshot = state.snapshot
    shutoff = snapshot.is_shut_off(query.product, query.channel, query.fallbackChannel)
    shut = None
    rule_id = None
    if shutoff:
        channel = query.channel if (query.product, query.channel) in snapshot.shutoffs else query.fallbackChannel
        shut = (query.product, channel)
    else:
        # The rule evaluation selects (a blob's serve check may still fail the request after it).
        try:
            selected = snapshot.index.select(query)
        except RuleError:
            selected = None
        rule_id = None if selected is None else selected.rule_id
    row = state.rule(rule_id) if rule_id is not None else None
    branch = _branch(row, query.force) if row is not None else None
    dice_rule = branch == "dice" and bool(row.get("mapping"))
    rate = row.get("backgroundRate") if dice_rule else None

    outcomes = []
    for roll, ev, _, resp in results:
        which = branch if branch != "dice" else ("mapping" if roll == WINNING_ROLL else "fallback")
        chosen = None if row is None else (row.get("mapping") if which == "mapping" else row.get("fallbackMapping"))
        served, note = _outcome_note(state, request, row, chosen, ev, resp, shutoff)
        if not random_answer:
            share, label, used = 100, which or "none", None
        elif dice_rule:
            share = rate if roll == WINNING_ROLL else 100 - rate
            label, used = which, roll
        else:
            share, label, used = None, "dice win" if roll == WINNING_ROLL else "dice lose", roll
        outcomes.append(Outcome(share, used, label, served, note, resp.status, resp.content_type,
                                {k: v for k, v in resp.headers}, resp.text))
    if len(outcomes) == 2 and outcomes[0].key()[1:] == outcomes[1].key()[1:] and \
            outcomes[0].headers == outcomes[1].headers:
        first = outcomes[0]
        outcomes = [replace(first, share=100, roll=None, branch="either",
                            note=first.note + " (the same answer whichever way the dice fall)")]

    if shut is not None:
        summary = f"emergency shutoff for {shut[0]}/{shut[1]}: no rule is consulted, nothing is served"
    elif error is not None:
        summary = f"HTTP 400: {error}" if row is None else \
            f"rule {rule_id} decides ({_throttling_text(row, query.force)}), but the request fails: HTTP 400: {error}"
    elif row is None:
        summary = "no rule matches: the server answers with no update (Rule-ID unknown)"
    else:
        summary = f"rule {rule_id} decides: {_throttling_text(row, query.force)}"
        if len(outcomes) == 1:
            summary += f"; {outcomes[0].note}"
    if random_answer and not dice_rule and shut is None and error is None:
        summary += " (the answer also depends on dice rolled for the rules of the products it aggregates)"
    return Answer(rule_id, summary, shut, error, random_answer, tuple(outcomes))


# --- explain ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Explanation:
    request: Request
    rules: tuple[RuleVerdict, ...]
    answer: Answer

    @property
    def matched_rule(self) -> int | None:
        return self.answer.rule_id

    def to_json(self) -> dict:
        return {"url": self.request.url, "user_agent": self.request.user_agent, "query": self.request.query_json(),
                "matched_rule": self.matched_rule, "answer": self.answer.to_json(),
                "rules": [v.to_json() for v in self.rules]}

    def text(self, all_rules: bool = False) -> str:
        """A readable report. Rules the request cannot reach because of their product or channel
        are counted but not listed unless ``all_rules``."""
        q = self.request.query_json()
        lines = [f"request: {self.request.url}"]
        lines.append("query:   " + ", ".join(f"{k}={v!r}" for k, v in q.items() if v not in (None, "")))
        lines.append("")
        lines.append("rules in evaluation order (priority descending, then rule_id):")
        hidden = 0
        for v in self.rules:
            if not all_rules and v.status == "no match" and v.reason is not None and \
                    v.reason.field in ("product", "channel"):
                hidden += 1
                continue
            mark = {"selected": "=>", "matched": "+ ", "error": "!!"}.get(v.status, "  ")
            head = f" {mark} rule {v.rule_id}" + (f" ({v.alias})" if v.alias else "") + \
                f" priority {v.priority}: {v.status}"
            lines.append(head if v.reason is None else f"{head}: {v.reason.text}")
        if hidden:
            lines.append(f"    ({hidden} more rule(s) for other products or channels; --all lists them)")
        lines.append("")
        lines.append(f"decision: {self.answer.summary}")
        for o in self.answer.outcomes:
            share = "" if o.share is None or len(self.answer.outcomes) == 1 else f" [{o.share}% of requests]"
            label = "" if o.branch in ("either", "mapping", "fallback", "none") and len(self.answer.outcomes) == 1 \
                else f" ({o.branch})"
            lines.append("")
            lines.append(f"answer{label}{share}: HTTP {o.status} {o.content_type or ''}".rstrip())
            for name, value in o.headers.items():
                lines.append(f"{name}: {value}")
            if len(self.answer.outcomes) > 1:  # a single answer's note is already in the decision
                lines.append(o.note)
            lines.append(o.body)
        return "\n".join(lines)


def explain(state: ServerState, url: str | Request, user_agent: str = "") -> Explanation:
    """Explain how the server answers one update URL (or an already parsed :class:`Request`)."""
    request = url if isinstance(url, Request) else parse_request(url, user_agent, state.normalizers)
    result = answer(state, request)
    return Explanation(request, rule_verdicts(state, request.query, result.rule_id), result)


# --- preview ------------------------------------------------------------------------------------------
_INTEGER_COLUMNS = ("priority", "backgroundRate")
_BOOLEAN_COLUMNS = ("jaws", "mig64")
#: The columns a change may set (the key and the version are not among them).
CHANGE_COLUMNS: tuple[str, ...] = tuple(c for c in RULE_COLUMNS if c not in ("rule_id", "data_version"))
ACTIONS = ("create", "update", "delete")


@dataclass(frozen=True)
class RuleChange:
    """A proposed change: ``create`` a rule with ``values``, ``update`` rule ``rule_id`` with
    ``values`` (the columns to change) or ``delete`` rule ``rule_id``."""

    action: str
    rule_id: int | None = None
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        out: dict[str, Any] = {"action": self.action}
        if self.rule_id is not None:
            out["rule_id"] = self.rule_id
        if self.action != "delete":
            out["rule"] = dict(self.values)
        return out


def parse_change(doc: Any, where: str = "change") -> RuleChange:
    """``{"action": "create", "rule": {...}}``, ``{"action": "update", "rule_id": N, "rule": {...}}``
    or ``{"action": "delete", "rule_id": N}``; raises :class:`ChangeError` naming the field.

    Values are taken as they would be stored (no trimming: servers normalise input first)."""
    if not isinstance(doc, Mapping):
        raise ChangeError(where, "must be an object with an action: create, update or delete")
    action = doc.get("action")
    if action not in ACTIONS:
        raise ChangeError(f"{where}.action", f"must be one of create, update, delete (got {action!r})")
    allowed = {"action", "rule"} | ({"rule_id"} if action != "create" else set())
    if action == "delete":
        allowed.discard("rule")
    extra = sorted(set(doc) - allowed)
    if extra:
        raise ChangeError(f"{where}.{extra[0]}", f"not allowed for action {action!r}")
    rule_id = None
    if action != "create":
        rule_id = doc.get("rule_id")
        if isinstance(rule_id, bool) or not isinstance(rule_id, int):
            raise ChangeError(f"{where}.rule_id", f"must be an integer rule id (got {rule_id!r})")
    if action == "delete":
        return RuleChange(action, rule_id)
    values = doc.get("rule")
    if not isinstance(values, Mapping):
        raise ChangeError(f"{where}.rule", "must be an object of rule columns")
    if action == "update" and not values:
        raise ChangeError(f"{where}.rule", "names no column to change")
    for column, value in values.items():
        _check_value(f"{where}.rule.{column}", column, value)
    if action == "create":
        for column in ("priority", "backgroundRate", "update_type"):
            if column not in values:
                raise ChangeError(f"{where}.rule.{column}", "is required for a new rule")
    return RuleChange(action, rule_id, dict(values))


def _check_value(path: str, column: str, value: Any) -> None:
    if column not in CHANGE_COLUMNS:
        raise ChangeError(path, "is not a rule column" + (" that can be set" if column in RULE_COLUMNS else ""))
    if column in _INTEGER_COLUMNS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ChangeError(path, f"must be an integer (got {value!r})")
        if column == "backgroundRate" and not 0 <= value <= 100:
            raise ChangeError(path, f"must be between 0 and 100 (got {value})")
    elif column == "update_type":
        if value not in ("minor", "major"):
            raise ChangeError(path, f"must be 'minor' or 'major' (got {value!r})")
    elif column in _BOOLEAN_COLUMNS:
        if value is not None and not isinstance(value, bool):
            raise ChangeError(path, f"must be true, false or null (got {value!r})")
    elif value is not None and not isinstance(value, str):
        raise ChangeError(path, f"must be a string or null (got {value!r})")


def apply_change(rules: Iterable[Mapping[str, Any]], change: RuleChange) -> list[dict]:
    """The rule rows after ``change``. A new rule gets the next rule_id (the highest + 1), as the
    database would number it; an edited rule's data_version goes up by one."""
    rows = [dict(row) for row in rules]
    if change.action == "create":
        rule_id = max((row["rule_id"] for row in rows), default=0) + 1
        rows.append(normalise_rule({**change.values, "rule_id": rule_id, "data_version": 1}))
        return rows
    for i, row in enumerate(rows):
        if row["rule_id"] == change.rule_id:
            break
    else:
        raise ChangeError("change.rule_id", f"there is no rule {change.rule_id}")
    if change.action == "delete":
        del rows[i]
    else:
        rows[i] = {**row, **change.values, "data_version": (row.get("data_version") or 0) + 1}
    return rows


@dataclass(frozen=True)
class PreviewResult:
    """One URL before and after. ``changed``: what clients get (status, content type, body, or
    the shares of a throttled answer) differs; ``rule_changed``: another rule decides."""

    url: str
    before: Answer
    after: Answer

    @property
    def changed(self) -> bool:
        return self.before.key() != self.after.key()

    @property
    def rule_changed(self) -> bool:
        return self.before.rule_id != self.after.rule_id

    def to_json(self) -> dict:
        return {"url": self.url, "changed": self.changed, "rule_changed": self.rule_changed,
                "before": self.before.to_json(), "after": self.after.to_json()}


@dataclass(frozen=True)
class Preview:
    change: RuleChange
    results: tuple[PreviewResult, ...]

    @property
    def summary(self) -> dict:
        changed = sum(r.changed for r in self.results)
        return {"urls": len(self.results), "changed": changed, "unchanged": len(self.results) - changed,
                "rule_changed": sum(r.rule_changed for r in self.results)}

    def to_json(self) -> dict:
        return {"change": self.change.to_json(), "summary": self.summary,
                "results": [r.to_json() for r in self.results]}


def preview(state: ServerState, change: RuleChange | Mapping[str, Any], urls: Sequence[str | Request],
            user_agent: str = "") -> Preview:
    """Answers for ``urls`` (or parsed requests) with the rules as they are and as ``change``
    would make them. Nothing is written: the change is applied to a copy of the rule rows."""
    if not isinstance(change, RuleChange):
        change = parse_change(change)
    if isinstance(urls, (str, bytes)) or not isinstance(urls, Sequence):
        raise ExplainInputError("urls", "must be a list of update URLs")
    if not urls:
        raise ExplainInputError("urls", "must list at least one update URL")
    if len(urls) > MAX_PREVIEW_URLS:
        raise ExplainInputError("urls", f"at most {MAX_PREVIEW_URLS} URLs per preview (got {len(urls)})")
    requests = [url if isinstance(url, Request) else parse_request(url, user_agent, state.normalizers, f"urls[{i}]")
                for i, url in enumerate(urls)]
    after = state.with_rules(apply_change(state.rules, change))
    return Preview(change, tuple(PreviewResult(r.url, answer(state, r), answer(after, r)) for r in requests))


# --- lint ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LintFinding:
    """Rule ``rule_id`` never decides: rule ``shadowed_by`` comes first and matches every request
    it matches. ``reasons``: the proof, column by column."""

    rule_id: int
    shadowed_by: int
    reasons: tuple[str, ...]

    def text(self) -> str:
        return (f"rule {self.rule_id} can never match: rule {self.shadowed_by} comes first and matches every "
                f"request rule {self.rule_id} matches\n" + "\n".join(f"    - {r}" for r in self.reasons))

    def to_json(self) -> dict:
        return {"rule_id": self.rule_id, "shadowed_by": self.shadowed_by, "reasons": list(self.reasons),
                "text": self.text()}


def lint(state: ServerState) -> tuple[LintFinding, ...]:
    """Every rule some earlier rule (in evaluation order) provably shadows, naming the first such rule.

    A rule B is reported only when, column by column, every value B accepts is accepted by the
    earlier rule A (a NULL column of A accepts everything; a column B leaves NULL but A sets
    defeats the proof). Anything not provable — ranges against globs, expressions that cannot
    be evaluated, different version families — counts as "not shadowed"."""
    rows = state.rules_by_id
    order = [rows[r.rule_id] for r in state.snapshot.index.rules]
    priority = {r.rule_id: r.priority for r in state.snapshot.index.rules}
    # Only rules whose product and buildTarget are NULL or equal to B's can cover B.
    buckets: dict[tuple, list[int]] = {}
    for position, row in enumerate(order):
        buckets.setdefault((row["product"], row["buildTarget"]), []).append(position)
    findings = []
    for position, b in enumerate(order):
        keys = {(p, t) for p in (b["product"], None) for t in (b["buildTarget"], None)}
        earlier = heapq.merge(*(buckets.get(k, []) for k in keys))
        for before in earlier:
            if before >= position:
                break
            a = order[before]
            reasons = covers(a, b)
            if reasons is None:
                continue
            pa, pb = priority[a["rule_id"]], priority[b["rule_id"]]
            first = (f"rule {a['rule_id']} is evaluated first (priority {pa} > {pb})" if pa != pb else
                     f"rule {a['rule_id']} is evaluated first (same priority {pa}, lower rule_id)")
            findings.append(LintFinding(b["rule_id"], a["rule_id"], (first, *reasons)))
            break
    return tuple(findings)


def covers(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The reasons why every request rule ``b`` matches is matched by rule ``a``, or None when
    that cannot be proven column by column."""
    reasons = []
    for column in MATCH_COLUMNS:
        if a[column] is None:
            continue
        if b[column] is None:
            return None
        reason = _COVERS[column](a, b, column)
        if reason is None:
            return None
        reasons.append(reason)
    unrestricted = [c for c in MATCH_COLUMNS if a[c] is None and b[c] is not None]
    if unrestricted:
        reasons.append(f"rule {a['rule_id']} does not restrict {', '.join(unrestricted)}")
    if not any(a[c] is not None for c in MATCH_COLUMNS):
        reasons.append(f"rule {a['rule_id']} sets no matching column: it matches every request")
    return tuple(reasons)


def _equal(a, b, column):
    return f"{column}: both {a[column]!r}" if a[column] == b[column] else None


def _same_bool(a, b, column):
    return f"{column}: both {str(bool(a[column])).lower()}" if bool(a[column]) == bool(b[column]) else None


def _list_subset(a, b, column):
    # Exact-element lists (rule-matching.md §3.2.6): B's elements must all be A's.
    if set(b[column].split(",")) <= set(a[column].split(",")):
        return f"{column}: both {a[column]!r}" if a[column] == b[column] else \
            f"{column}: every value of {b[column]!r} is in {a[column]!r}"
    return None


def _channel(a, b, column):
    """channel_matches(pattern, c, fallback(c)) (§3.2.1): a glob (3+ characters) takes every
    channel starting with its prefix; an exact channel also takes its ``-cck-`` partners."""
    pa, pb = a[column], b[column]
    a_glob, b_glob = pa.endswith("*"), pb.endswith("*")
    if (a_glob and len(pa) < 3) or (b_glob and len(pb) < 3):
        return None  # such a glob never matches: nothing to say about "A wins"
    if pa == pb:
        return f"channel: both {pa!r}"
    if a_glob:
        ok = pb[:-1].startswith(pa[:-1]) if b_glob else pb.startswith(pa[:-1])
        return f"channel: {pa!r} takes every channel {pb!r} takes" if ok else None
    # A exact: B must be an exact partner channel whose fallback is A (B itself has no partners:
    # the fallback of a channel never contains "-cck-").
    if not b_glob and "-cck-" in pb and fallback_channel(pb) == pa:
        return f"channel: {pb!r} falls back to {pa!r}"
    return None


# Version expressions: Mozilla versions only (loose versions are compared as equal text only).
@lru_cache(maxsize=4096)
def _version_elements(expr: str) -> tuple | None:
    """The elements of a version expression as (comparator or "glob", parsed operand);
    malformed elements are left out (they never match); None when an operand does not parse
    (the server then fails every request that reaches the rule: nothing is provable)."""
    elements = []
    for text in expr.split(","):
        try:
            op, operand, is_glob = split_expression(text)
        except MalformedExpression:
            continue
        try:
            parsed = parse_mozilla_or_glob(operand) if is_glob else parse_mozilla(operand)
        except InvalidVersion:
            return None
        elements.append(("glob", parsed) if isinstance(parsed, GlobVersion) else (op, parsed))
    return tuple(elements)


@lru_cache(maxsize=4096)
def _version_predicate(expr: str) -> Callable[[object], bool]:
    return compile_version_expression(expr, loose=False)


_UP = (operator.gt, operator.ge)
_DOWN = (operator.lt, operator.le)


def _range_within(b_op, y, a_op, x) -> bool:
    """Is {v : b_op(v, y)} inside {v : a_op(v, x)}? Only rays in the same direction are compared."""
    if b_op in _UP and a_op in _UP:
        if a_op is operator.ge or b_op is operator.gt:
            return y >= x
        return y > x
    if b_op in _DOWN and a_op in _DOWN:
        if a_op is operator.le or b_op is operator.lt:
            return y <= x
        return y < x
    return False


def _version(a, b, column):
    va, vb = a[column], b[column]
    a_loose, b_loose = a["product"] in LOOSE_VERSION_PRODUCTS, b["product"] in LOOSE_VERSION_PRODUCTS
    if a_loose or b_loose:
        return f"version: both {va!r}" if va == vb and a_loose == b_loose else None
    ea, eb = _version_elements(va), _version_elements(vb)
    if ea is None or eb is None or not eb:
        return None
    for op, operand in eb:
        if op is operator.eq:
            # A single version: A's own predicate says whether it takes it (every version equal
            # to it compares, globs and all, exactly like it).
            try:
                ok = _version_predicate(va)(operand)
            except InvalidVersion:
                ok = False
        elif op == "glob":
            ok = any(kind == "glob" and operand.prefix_text.startswith(glob.prefix_text)
                     and operand.numbers[:len(glob.numbers)] == glob.numbers for kind, glob in ea)
        else:
            ok = any(kind in _UP + _DOWN and _range_within(op, operand, kind, bound) for kind, bound in ea)
        if not ok:
            return None
    return f"version: both {va!r}" if va == vb else f"version: every version {vb!r} accepts, {va!r} accepts"


@lru_cache(maxsize=4096)
def _single_expression(expr: str, integer: bool) -> tuple | None:
    """(comparator, operand) of a buildID (string) or memory (integer) expression; None when it
    is malformed or, for memory, not an integer (such rules are left alone)."""
    try:
        op, operand, _ = split_expression(expr)
    except MalformedExpression:
        return None
    if integer:
        try:
            return op, int(operand)
        except ValueError:
            return None
    return op, operand


def _comparison(a, b, column):
    """buildID (strings) and memory (integers; an unknown memory matches every rule alike)."""
    integer = column == "memory"
    ta, tb = str(a[column]), str(b[column])
    ea, eb = _single_expression(ta, integer), _single_expression(tb, integer)
    if ea is None or eb is None:
        return None
    (a_op, x), (b_op, y) = ea, eb
    if b_op is operator.eq:
        accepts = compile_int_expression(ta) if integer else compile_string_expression(ta)
        ok = accepts(y)
    else:
        ok = a_op is not operator.eq and _range_within(b_op, y, a_op, x)
    if not ok:
        return None
    return f"{column}: both {ta!r}" if ta == tb else f"{column}: every value {tb!r} accepts, {ta!r} accepts"


def _os_alternatives(expr: str) -> tuple[tuple[str, ...], ...]:
    # As compile_os_version reads it: ',' separates alternatives, '&&' joins stripped terms.
    return tuple(tuple(term.strip() for term in alt.split("&&")) for alt in expr.split(","))


def _os_version(a, b, column):
    """Every alternative of B must imply one of A: each term of that A alternative is a substring
    of some term of the B alternative (then it is a substring of any osVersion B accepts)."""
    alts_a, alts_b = _os_alternatives(a[column]), _os_alternatives(b[column])
    for alt_b in alts_b:
        if not any(all(any(term_a in term_b for term_b in alt_b) for term_a in alt_a) for alt_a in alts_a):
            return None
    return f"osVersion: both {a[column]!r}" if a[column] == b[column] else \
        f"osVersion: every osVersion {b[column]!r} accepts contains what {a[column]!r} asks for"


_COVERS: dict[str, Callable[[Mapping, Mapping, str], str | None]] = {
    "product": _equal, "buildTarget": _equal, "headerArchitecture": _equal, "distVersion": _equal,
    "channel": _channel, "version": _version, "buildID": _comparison, "memory": _comparison,
    "osVersion": _os_version, "instructionSet": _list_subset, "distribution": _list_subset, "locale": _list_subset,
    "mig64": _same_bool, "jaws": _same_bool,
}


__all__ = [
    "Answer", "ChangeError", "DICE", "ExplainInputError", "Explanation", "LintFinding", "MATCH_COLUMNS",
    "MAX_PREVIEW_URLS", "Outcome", "Preview", "PreviewResult", "Reason", "Request", "RuleChange", "RuleVerdict",
    "ServerState", "UnparsableRequest", "answer", "apply_change", "covers", "explain", "lint", "parse_change",
    "parse_request", "preview", "rule_verdicts",
]
