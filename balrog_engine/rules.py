"""Compiled rules and the rule index (rule-matching.md §3–§4).

Each stored rule is compiled once into a :class:`CompiledRule`: the columns that
are set become small predicates, the rest cost nothing. The :class:`RuleIndex`
groups rules by product and channel so a request only looks at rules that can
apply to its product and channel, already sorted by ``priority DESC, rule_id ASC``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from .matching import (
    channel_matches,
    compile_exact_list,
    compile_int_expression,
    compile_os_version,
    compile_string_expression,
    compile_version_expression,
    parse_query_version,
)
from .query import UpdateQuery
from .versions import InvalidVersion

# Products whose rule versions compare as loose versions (rule-matching.md §3.2.2).
LOOSE_VERSION_PRODUCTS = frozenset({"FirefoxVPN", "Guardian"})


class RuleError(Exception):
    """A rule that cannot be evaluated for this request; carries the 400 message."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ParsedVersions:
    """The query version parsed both ways, computed once per request."""

    mozilla: Any
    loose: Any


class CompiledRule:
    __slots__ = ("rule_id", "data_version", "priority", "mapping", "fallback_mapping", "background_rate", "update_type",
                 "product", "channel", "build_target", "header_architecture", "dist_version", "has_version",
                 "_checks", "_version")

    def __init__(self, row: Mapping[str, Any]):
        # The row itself is not kept: a snapshot may hold 100k rules.
        self.rule_id = row["rule_id"]
        self.data_version = row.get("data_version")
        self.priority = row.get("priority") or 0
        self.mapping = row.get("mapping") or None
        self.fallback_mapping = row.get("fallbackMapping") or None
        rate = row.get("backgroundRate")
        self.background_rate = 100 if rate is None else rate
        self.update_type = row.get("update_type")
        self.product = row.get("product")
        self.channel = row.get("channel")
        self.build_target = row.get("buildTarget")
        self.header_architecture = row.get("headerArchitecture")
        self.dist_version = row.get("distVersion")
        version = row.get("version")
        self.has_version = version is not None
        self._version = None
        if version is not None:
            loose = self.product in LOOSE_VERSION_PRODUCTS
            matcher = compile_version_expression(version, loose=loose)
            if loose:
                self._version = lambda pv: matcher(pv.loose)
            else:
                self._version = lambda pv: matcher(pv.mozilla)
        self._checks = tuple(self._compile_checks(row))

    @staticmethod
    def _compile_checks(row: Mapping[str, Any]) -> Iterable[Callable[[UpdateQuery], bool]]:
        """Predicates for the columns after version, in the reference's evaluation order."""
        if row.get("buildID") is not None:
            build_id = compile_string_expression(row["buildID"])
            yield lambda q: build_id(q.buildID)
        if row.get("memory") is not None:
            memory = compile_int_expression(str(row["memory"]))
            yield lambda q: memory(q.memory)
        if row.get("osVersion") is not None:
            os_version = compile_os_version(row["osVersion"])
            yield lambda q: os_version(q.osVersion)
        if row.get("instructionSet") is not None:
            iset = compile_exact_list(row["instructionSet"])
            yield lambda q: iset(q.instructionSet)
        if row.get("distribution") is not None:
            dist = compile_exact_list(row["distribution"])
            yield lambda q: dist(q.distribution)
        if row.get("locale") is not None:
            locale = compile_exact_list(row["locale"])
            yield lambda q: locale(q.locale)
        if row.get("mig64") is not None:
            mig64 = bool(row["mig64"])
            yield lambda q: q.mig64 is not None and q.mig64 == mig64
        if row.get("jaws") is not None:
            jaws = bool(row["jaws"])
            yield lambda q: q.jaws is not None and q.jaws == jaws

    def is_candidate(self, q: UpdateQuery) -> bool:
        """The columns the reference compares in SQL, before any other filter."""
        if self.build_target is not None and self.build_target != q.buildTarget:
            return False
        if self.header_architecture is not None and self.header_architecture != q.headerArchitecture:
            return False
        if self.dist_version is not None and self.dist_version != q.distVersion:
            return False
        return True

    def version_matches(self, versions: ParsedVersions) -> bool:
        """May raise InvalidVersion (query or rule operand), which the caller turns into a 400."""
        return self._version is None or self._version(versions)

    def matches_rest(self, q: UpdateQuery) -> bool:
        """Every column but channel and version (those are settled by the index's memos)."""
        if not self.is_candidate(q):
            return False
        for check in self._checks:
            if not check(q):
                return False
        return True


@dataclass(frozen=True, slots=True)
class VersionFiltered:
    """Candidates of one (product, channel) sorted by priority, split by one client version.

    ``passing``: rules whose version column accepts the version (or is NULL).
    ``raising``: (rule, error) for rules whose version check fails the request — an unparsable
    client version or rule operand — in rule_id order, the order the reference meets them.
    """

    passing: tuple[CompiledRule, ...]
    raising: tuple[tuple[CompiledRule, InvalidVersion], ...]

    @classmethod
    def build(cls, candidates: tuple[CompiledRule, ...], version: str, loose: bool) -> "VersionFiltered":
        versions = ParsedVersions(
            mozilla=parse_query_version(version, loose=False),
            loose=parse_query_version(version, loose=True),
        )
        passing, raising = [], []
        for rule in candidates:
            try:
                if rule.version_matches(versions):
                    passing.append(rule)
            except InvalidVersion as exc:
                raising.append((rule, exc))
        raising.sort(key=lambda pair: pair[0].rule_id)
        return cls(tuple(passing), tuple(raising))


class RuleIndex:
    """Rules grouped by product, with per-(product, channel) candidate lists and per-version
    filters memoised.

    The memos are bounded: channels and versions come from clients, so an attacker could
    send endless distinct ones; beyond the bound a memo is simply cleared.
    """

    MEMO_LIMIT = 20000

    def __init__(self, rows: Iterable[Mapping[str, Any]]):
        compiled = [CompiledRule(row) for row in rows]
        compiled.sort(key=lambda r: (-r.priority, r.rule_id))
        self.rules = compiled
        self.by_id = {r.rule_id: r for r in compiled}
        self._by_product: dict[str | None, list[CompiledRule]] = {}
        for rule in compiled:
            self._by_product.setdefault(rule.product, []).append(rule)
        self._memo: dict[tuple[str, str], tuple[CompiledRule, ...]] = {}
        self._version_memo: dict[tuple[str, str, str], VersionFiltered] = {}

    def __len__(self) -> int:
        return len(self.rules)

    def products(self) -> set:
        return set(self._by_product)

    def channels(self) -> set:
        return {r.channel for r in self.rules}

    def candidates(self, product: str, channel: str, fallback: str) -> tuple[CompiledRule, ...]:
        key = (product, channel)
        found = self._memo.get(key)
        if found is None:
            pool = self._by_product.get(product, []) + self._by_product.get(None, []) if product is not None else []
            found = tuple(sorted(
                (r for r in pool if r.channel is None or channel_matches(r.channel, channel, fallback)),
                key=lambda r: (-r.priority, r.rule_id),
            ))
            if len(self._memo) >= self.MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = found
        return found

    def version_filtered(self, q: UpdateQuery) -> VersionFiltered:
        key = (q.product, q.channel, q.version)
        found = self._version_memo.get(key)
        if found is None:
            candidates = self.candidates(q.product, q.channel, q.fallbackChannel)
            found = VersionFiltered.build(candidates, q.version, q.product in LOOSE_VERSION_PRODUCTS)
            if len(self._version_memo) >= self.MEMO_LIMIT:
                self._version_memo.clear()
            self._version_memo[key] = found
        return found

    def select(self, q: UpdateQuery) -> CompiledRule | None:
        """The winning rule for ``q`` or None; raises RuleError where the reference answers 400.

        The reference filters *every* candidate before sorting, so a version check that
        fails (unparsable client version or rule operand) fails the request even when that
        rule would not win — but only for rules that pass the SQL-side columns. Clients send
        few distinct versions, so the version filter is memoised per (product, channel,
        version); per request only the rules that passed it are checked further.
        """
        filtered = self.version_filtered(q)
        for rule, error in filtered.raising:
            if rule.is_candidate(q):
                raise RuleError(str(error))
        for rule in filtered.passing:
            if rule.matches_rest(q):
                return rule
        return None
