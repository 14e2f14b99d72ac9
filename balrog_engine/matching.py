"""Pure matchers for rule columns (rule-matching.md §3).

Each ``compile_*`` function turns one rule column into a predicate once, when the
snapshot is built; the request path only calls the predicates. Predicates for
version columns may raise :class:`~balrog_engine.versions.InvalidVersion`, which
is the only error a rule can produce on the wire (HTTP 400).
"""
from __future__ import annotations

import operator
import re
from typing import Callable

from .versions import GlobVersion, InvalidVersion, MozillaVersion, parse_loose, parse_mozilla, parse_mozilla_or_glob


def fallback_channel(channel: str) -> str:
    """The channel before the first ``-cck-`` (partner builds share their base channel's rules)."""
    cut = channel.find("-cck-")
    return channel if cut < 0 else channel[:cut]


def glob_match(pattern: str, value: str) -> bool:
    """Channel glob: a trailing ``*`` is a prefix match, but only for patterns of 3+ characters."""
    if pattern.endswith("*"):
        return len(pattern) >= 3 and value.startswith(pattern[:-1])
    return pattern == value


def channel_matches(pattern: str, channel: str, fallback: str) -> bool:
    return glob_match(pattern, channel) or glob_match(pattern, fallback)


_OPERATORS = (
    (">=", operator.ge),
    (">", operator.gt),
    ("<", operator.lt),
    ("<=", operator.le),
)
_OPERAND = re.compile(r"[A-Za-z0-9_.]+")


class MalformedExpression(ValueError):
    """An expression without a comparator (``=60``, ``>= 60``); the reference crashes, we never match."""


def split_expression(expr: str) -> tuple[Callable, str, bool]:
    """Return (comparator, operand, is_glob) for a comparison expression (rule-matching.md §3.3)."""
    if expr.endswith("*"):
        return operator.eq, expr, True
    if expr and (expr[0].isalnum() or expr[0] == "_"):
        return operator.eq, expr, False
    for symbol, op in _OPERATORS:
        if expr.startswith(symbol):
            m = _OPERAND.match(expr, len(symbol))
            if m:
                return op, m.group(), False
    raise MalformedExpression(expr)


Predicate = Callable[[object], bool]


def compile_string_expression(expr: str) -> Callable[[str], bool]:
    """buildID columns: string comparison, no lists (a ``*`` glob is literal equality)."""
    try:
        op, operand, _ = split_expression(expr)
    except MalformedExpression:
        return lambda value: False
    return lambda value: op(value or "", operand)


def compile_int_expression(expr: str) -> Callable[[int | None], bool]:
    """memory columns: integer comparison; an unknown query memory always matches."""
    try:
        op, operand, _ = split_expression(expr)
        number = int(operand)
    except (MalformedExpression, ValueError):
        # Reference crashes on a non-integer operand; such a rule can only match unknown memory.
        return lambda value: value is None
    return lambda value: value is None or op(value, number)


def _version_element(expr: str, loose: bool) -> Callable[[object], bool]:
    """One element of a version list; the query version arrives parsed (or as InvalidVersion)."""
    try:
        op, operand, is_glob = split_expression(expr)
    except MalformedExpression:
        return lambda q: False
    if loose:
        key = parse_loose(operand)

        def loose_cmp(q):
            try:
                return op(q, key)
            except TypeError:
                return False

        return loose_cmp
    try:
        parsed = parse_mozilla_or_glob(operand) if is_glob else parse_mozilla(operand)
    except InvalidVersion as exc:
        error = exc

        def poisoned(q):
            if isinstance(q, InvalidVersion):
                raise q
            raise error

        return poisoned
    if isinstance(parsed, GlobVersion):
        glob = parsed

        def glob_cmp(q):
            if isinstance(q, InvalidVersion):
                raise q
            return glob.matches(q)

        return glob_cmp

    def cmp(q):
        if isinstance(q, InvalidVersion):
            raise q
        return op(q, parsed)

    return cmp


def compile_version_expression(expr: str, loose: bool = False) -> Callable[[object], bool]:
    """A version column: comma list of expressions, any may match (evaluated left to right)."""
    elements = [_version_element(e, loose) for e in expr.split(",")]
    if len(elements) == 1:
        return elements[0]
    return lambda q: any(e(q) for e in elements)


def compile_os_version(expr: str) -> Callable[[str | None], bool]:
    """Substring expression: ``,`` separates alternatives, ``&&`` joins required terms."""
    alternatives = [tuple(term.strip() for term in alt.split("&&")) for alt in expr.split(",")]

    def match(value):
        value = value or ""
        return any(all(term in value for term in terms) for terms in alternatives)

    return match


def compile_exact_list(expr: str) -> Callable[[str | None], bool]:
    """locale / instructionSet / distribution: comma list, exact elements, no trimming."""
    allowed = frozenset(expr.split(","))
    return lambda value: value is not None and value in allowed


def parse_query_version(text: str, loose: bool) -> object:
    """Parse the query's version once per request; an invalid one is carried, not raised."""
    if loose:
        return parse_loose(text)
    try:
        return parse_mozilla(text)
    except InvalidVersion as exc:
        return exc


__all__ = [
    "MozillaVersion",
    "channel_matches",
    "compile_exact_list",
    "compile_int_expression",
    "compile_os_version",
    "compile_string_expression",
    "compile_version_expression",
    "fallback_channel",
    "glob_match",
    "parse_query_version",
    "split_expression",
]
