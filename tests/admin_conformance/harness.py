"""Replaying the recorded admin-API transcripts (shared/admin-transcripts/README.md).

A transcript is an ordered conversation with Mozilla's Balrog admin API together with
the exact answers Balrog gave. This module loads and validates transcripts, builds
the exact HTTP request of every step, sends it over real HTTP to any base URL (one
connection per request, the request target sent verbatim), and compares the answer
with the recorded one, honouring the per-step ``ignore``, ``unordered`` and
``informative`` JSON paths.

It is deliberately free of pytest: the test suite and any command-line runner can
share it.
"""
from __future__ import annotations

import difflib
import enum
import http.client
import json as _json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SHARED_TRANSCRIPTS = Path(__file__).resolve().parents[2].parent / "shared" / "admin-transcripts"
DIVERGENCES_FILE = Path(__file__).with_name("divergences.json")
ENV_DIRS = "BALROG_ADMIN_TRANSCRIPT_DIRS"


class Absent(enum.Enum):
    """Marks a member missing from a step, as opposed to one present with JSON ``null``."""

    ABSENT = "ABSENT"

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent.ABSENT


class TranscriptFormatError(ValueError):
    """A transcript (or the divergences file) does not follow the documented format."""


# --------------------------------------------------------------------------------------
# JSON paths
# --------------------------------------------------------------------------------------


class _Wildcard:
    """The ``[*]`` segment: every element of a list."""

    _instance: _Wildcard | None = None

    def __new__(cls) -> _Wildcard:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "WILDCARD"

    def __reduce__(self):
        return (_Wildcard, ())


WILDCARD = _Wildcard()

#: A path segment: a member name, a list index (concrete paths; also accepted as ``[3]``)
#: or WILDCARD.
Segment = str | int | _Wildcard
JsonPath = tuple[Segment, ...]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEX = re.compile(r"\[(0|[1-9][0-9]*)\]")
_DECODER = _json.JSONDecoder()


def parse_path(text: str) -> JsonPath:
    """Parse the README's JSON path syntax into a tuple of segments.

    ``rules[*].timestamp`` -> ``("rules", WILDCARD, "timestamp")``;
    ``["Rules scheduled change"].revisions[*].timestamp`` -> ``("Rules scheduled change",
    "revisions", WILDCARD, "timestamp")``; ``["."].when`` -> ``(".", "when")``;
    ``count`` -> ``("count",)``. A non-negative integer in brackets (``[0]``) is a
    concrete list index.
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"invalid JSON path {text!r}: empty")
    segments: list[Segment] = []
    pos = 0
    while pos < len(text):
        if text.startswith("[*]", pos):
            segments.append(WILDCARD)
            pos += 3
        elif text.startswith('["', pos):
            try:
                name, end = _DECODER.raw_decode(text, pos + 1)
            except _json.JSONDecodeError as exc:
                raise ValueError(f"invalid JSON path {text!r}: bad quoted member at {pos}: {exc.msg}") from None
            if not text.startswith("]", end):
                raise ValueError(f"invalid JSON path {text!r}: expected ']' at {end}")
            segments.append(name)
            pos = end + 1
        elif (m := _INDEX.match(text, pos)) is not None:
            segments.append(int(m.group(1)))
            pos = m.end()
        else:
            if segments:
                if text[pos] != ".":
                    raise ValueError(f"invalid JSON path {text!r}: expected '.' or '[' at {pos}")
                pos += 1
            m = _IDENTIFIER.match(text, pos)
            if m is None:
                raise ValueError(f"invalid JSON path {text!r}: expected a member name at {pos}")
            segments.append(m.group(0))
            pos = m.end()
    return tuple(segments)


def format_path(path: Sequence[Segment]) -> str:
    """The inverse of :func:`parse_path` (concrete indices print as ``[3]``); ``<root>`` for ()."""
    out: list[str] = []
    for seg in path:
        if seg is WILDCARD:
            out.append("[*]")
        elif isinstance(seg, int):
            out.append(f"[{seg}]")
        elif _IDENTIFIER.fullmatch(seg):
            out.append(("." if out else "") + seg)
        else:
            out.append("[" + _json.dumps(seg, ensure_ascii=False) + "]")
    return "".join(out) or "<root>"


def path_matches(pattern: Sequence[Segment], concrete: Sequence[str | int]) -> bool:
    """Whether a concrete location (member names and list indices) is selected by a pattern."""
    if len(pattern) != len(concrete):
        return False
    for pat, seg in zip(pattern, concrete):
        if pat is WILDCARD:
            if not isinstance(seg, int):
                return False
        elif type(pat) is not type(seg) or pat != seg:
            return False
    return True


def resolve(value: Any, pattern: Sequence[Segment]) -> list[tuple[tuple[str | int, ...], Any]]:
    """Every (concrete path, value) selected by a pattern in a JSON value (missing parts select nothing)."""
    found: list[tuple[tuple[str | int, ...], Any]] = []

    def walk(v: Any, i: int, here: tuple[str | int, ...]) -> None:
        if i == len(pattern):
            found.append((here, v))
            return
        seg = pattern[i]
        if seg is WILDCARD:
            if isinstance(v, list):
                for n, item in enumerate(v):
                    walk(item, i + 1, here + (n,))
        elif isinstance(seg, int):
            if isinstance(v, list) and seg < len(v):
                walk(v[seg], i + 1, here + (seg,))
        elif isinstance(v, dict) and seg in v:
            walk(v[seg], i + 1, here + (seg,))

    walk(value, 0, ())
    return found


def replace_at(value: Any, pattern: Sequence[Segment], fn: Callable[[Any], Any]) -> Any:
    """A deep copy of ``value`` with every location selected by ``pattern`` replaced by ``fn(old)``."""

    def walk(v: Any, i: int) -> Any:
        if i == len(pattern):
            return fn(v)
        seg = pattern[i]
        if seg is WILDCARD:
            return [walk(x, i + 1) for x in v] if isinstance(v, list) else _copy(v)
        if isinstance(seg, int):
            if isinstance(v, list) and seg < len(v):
                return [walk(x, i + 1) if n == seg else _copy(x) for n, x in enumerate(v)]
            return _copy(v)
        if isinstance(v, dict) and seg in v:
            return {k: (walk(x, i + 1) if k == seg else _copy(x)) for k, x in v.items()}
        return _copy(v)

    return walk(value, 0)


def delete_at(value: Any, pattern: Sequence[Segment]) -> Any:
    """A deep copy of ``value`` without the object members selected by ``pattern``."""
    if not pattern or not isinstance(pattern[-1], str):
        raise ValueError("delete_at needs a path ending in a member name")
    parent, member = pattern[:-1], pattern[-1]

    def drop(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: v for k, v in obj.items() if k != member}
        return obj

    return replace_at(value, parent, drop)


def _copy(v: Any) -> Any:
    return _json.loads(_json.dumps(v))


# --------------------------------------------------------------------------------------
# Transcripts
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    index: int
    method: str
    path: str
    user: str | None
    status: int
    response_headers: Mapping[str, str] = field(default_factory=dict)
    #: request body as JSON (ABSENT: no ``json`` member; ``None``: JSON null)
    json: Any = ABSENT
    #: request body sent as-is (ABSENT when not given)
    raw: str | Absent = ABSENT
    headers: Mapping[str, str] = field(default_factory=dict)
    response_json: Any = ABSENT
    response_text: str | Absent = ABSENT
    ignore: tuple[str, ...] = ()
    unordered: tuple[str, ...] = ()
    informative: tuple[str, ...] = ()
    note: str | None = None

    @property
    def ignore_paths(self) -> tuple[JsonPath, ...]:
        return tuple(parse_path(p) for p in self.ignore)

    @property
    def unordered_paths(self) -> tuple[JsonPath, ...]:
        return tuple(parse_path(p) for p in self.unordered)

    @property
    def informative_paths(self) -> tuple[JsonPath, ...]:
        return tuple(parse_path(p) for p in self.informative)

    def describe(self) -> str:
        who = self.user if self.user is not None else "no user"
        return f"{self.method} {self.path} ({who})"


@dataclass(frozen=True)
class Transcript:
    name: str
    description: str
    config: Mapping[str, Any]
    bootstrap: Mapping[str, Any]
    users: tuple[str, ...]
    steps: tuple[Step, ...]
    source: Path | None = None


_TOP_KEYS = {"name", "description", "config", "bootstrap", "users", "steps"}
_STEP_REQUIRED = {"method", "path", "user", "status"}
_STEP_OPTIONAL = {"json", "raw", "headers", "response_headers", "response_json", "response_text",
                  "ignore", "unordered", "informative", "note"}
_METHOD = re.compile(r"[A-Z]+")
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")


def parse_transcript(data: Any, source: Path | str = "<transcript>") -> Transcript:
    """Validate a decoded transcript; errors name the file and, for steps, the step index."""
    where = str(source)

    def fail(msg: str, step: int | None = None) -> TranscriptFormatError:
        loc = f"{where}: step {step}" if step is not None else where
        return TranscriptFormatError(f"{loc}: {msg}")

    if not isinstance(data, dict):
        raise fail("a transcript is a JSON object")
    missing = _TOP_KEYS - data.keys()
    if missing:
        raise fail(f"missing top-level member(s) {sorted(missing)}")
    unknown = data.keys() - _TOP_KEYS
    if unknown:
        raise fail(f"unknown top-level member(s) {sorted(unknown)}")
    name, description = data["name"], data["description"]
    if not isinstance(name, str) or not name:
        raise fail("'name' must be a non-empty string")
    if not isinstance(description, str):
        raise fail("'description' must be a string")
    if isinstance(source, Path) and source.suffix == ".json" and source.stem != name:
        raise fail(f"'name' {name!r} differs from the file name {source.stem!r}")

    config = data["config"]
    if not isinstance(config, dict):
        raise fail("'config' must be an object")
    domains = config.get("allowlisted_domains", {})
    if not (isinstance(domains, dict)
            and all(isinstance(v, list) and all(isinstance(p, str) for p in v) for v in domains.values())):
        raise fail("'config.allowlisted_domains' must map hosts to lists of product names")
    accounts = config.get("system_accounts", [])
    if not (isinstance(accounts, list) and all(isinstance(a, str) for a in accounts)):
        raise fail("'config.system_accounts' must be a list of strings")

    users = data["users"]
    if not (isinstance(users, list) and all(isinstance(u, str) and u for u in users)):
        raise fail("'users' must be a list of non-empty strings")
    if len(set(users)) != len(users):
        raise fail("'users' lists a user twice")

    bootstrap = data["bootstrap"]
    if not isinstance(bootstrap, dict) or not set(bootstrap) <= {"permissions", "roles"}:
        raise fail("'bootstrap' must be an object with 'permissions' and optionally 'roles'")
    for i, row in enumerate(bootstrap.get("permissions", [])):
        if not (isinstance(row, dict) and set(row) == {"username", "permission", "options"}
                and isinstance(row["username"], str) and isinstance(row["permission"], str)
                and (row["options"] is None or isinstance(row["options"], dict))):
            raise fail(f"bootstrap permission {i} must be {{username, permission, options: object|null}}")
        if row["username"] not in users:
            raise fail(f"bootstrap permission {i}: user {row['username']!r} is not in 'users'")
    for i, row in enumerate(bootstrap.get("roles", [])):
        if not (isinstance(row, dict) and set(row) == {"username", "role"}
                and isinstance(row["username"], str) and isinstance(row["role"], str)):
            raise fail(f"bootstrap role {i} must be {{username, role}}")
        if row["username"] not in users:
            raise fail(f"bootstrap role {i}: user {row['username']!r} is not in 'users'")

    raw_steps = data["steps"]
    if not isinstance(raw_steps, list) or not raw_steps:
        raise fail("'steps' must be a non-empty list")
    steps = tuple(_parse_step(s, i, users, fail) for i, s in enumerate(raw_steps))
    return Transcript(
        name=name,
        description=description,
        config=config,
        bootstrap=bootstrap,
        users=tuple(users),
        steps=steps,
        source=source if isinstance(source, Path) else None,
    )


def _parse_step(s: Any, i: int, users: list[str], fail) -> Step:
    if not isinstance(s, dict):
        raise fail("a step is a JSON object", i)
    missing = _STEP_REQUIRED - s.keys()
    if missing:
        raise fail(f"missing member(s) {sorted(missing)}", i)
    unknown = s.keys() - _STEP_REQUIRED - _STEP_OPTIONAL
    if unknown:
        raise fail(f"unknown member(s) {sorted(unknown)}", i)

    method, path, user, status = s["method"], s["path"], s["user"], s["status"]
    if not (isinstance(method, str) and _METHOD.fullmatch(method)):
        raise fail(f"'method' must be an upper-case HTTP method, got {method!r}", i)
    if not (isinstance(path, str) and path.startswith("/")) or _BAD_TARGET.search(path) or not path.isascii():
        raise fail(f"'path' must be an ASCII request target starting with '/' without spaces, got {path!r}", i)
    if user is not None and not isinstance(user, str):
        raise fail(f"'user' must be a string or null, got {user!r}", i)
    if user is not None and user not in users:
        raise fail(f"user {user!r} is not in the transcript's 'users'", i)
    if not (type(status) is int and 100 <= status <= 599):
        raise fail(f"'status' must be an HTTP status code, got {status!r}", i)

    if "json" in s and "raw" in s:
        raise fail("'json' and 'raw' are mutually exclusive", i)
    raw = s.get("raw", ABSENT)
    if raw is not ABSENT and not isinstance(raw, str):
        raise fail("'raw' must be a string", i)

    headers = s.get("headers", {})
    if not (isinstance(headers, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
        raise fail("'headers' must map header names to strings", i)
    if user is None and any("{token}" in v for v in headers.values()):
        raise fail("'headers' uses {token} but the step has no user", i)
    response_headers = s.get("response_headers", {})
    if not (isinstance(response_headers, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in response_headers.items())):
        raise fail("'response_headers' must map header names to strings (X-Data-Version is a string)", i)
    if len({k.lower() for k in response_headers}) != len(response_headers):
        raise fail("'response_headers' names a header twice", i)

    has_json, has_text = "response_json" in s, "response_text" in s
    if has_json == has_text:
        raise fail("exactly one of 'response_json' and 'response_text' is required", i)
    response_text = s.get("response_text", ABSENT)
    if has_text and not isinstance(response_text, str):
        raise fail("'response_text' must be a string", i)

    lists: dict[str, tuple[str, ...]] = {}
    for key in ("ignore", "unordered", "informative"):
        value = s.get(key, [])
        if not (isinstance(value, list) and all(isinstance(p, str) for p in value)):
            raise fail(f"'{key}' must be a list of JSON paths", i)
        if value and not has_json:
            raise fail(f"'{key}' only applies to 'response_json'", i)
        for p in value:
            try:
                parse_path(p)
            except ValueError as exc:
                raise fail(f"'{key}': {exc}", i) from None
        lists[key] = tuple(value)

    note = s.get("note")
    if note is not None and not isinstance(note, str):
        raise fail("'note' must be a string", i)

    return Step(
        index=i,
        method=method,
        path=path,
        user=user,
        status=status,
        response_headers=response_headers,
        json=s.get("json", ABSENT),
        raw=raw,
        headers=headers,
        response_json=s.get("response_json", ABSENT),
        response_text=response_text,
        note=note,
        **lists,
    )


def load_transcript(path: Path) -> Transcript:
    try:
        data = _json.loads(path.read_text(encoding="utf-8"))
    except _json.JSONDecodeError as exc:
        raise TranscriptFormatError(f"{path}: not valid JSON: {exc}") from None
    return parse_transcript(data, path)


def transcript_dirs(extra_dirs: Sequence[Path] = ()) -> list[Path]:
    """The shared folder, then ``$BALROG_ADMIN_TRANSCRIPT_DIRS`` (os.pathsep-separated), then ``extra_dirs``."""
    dirs = [SHARED_TRANSCRIPTS]
    dirs += [Path(d) for d in os.environ.get(ENV_DIRS, "").split(os.pathsep) if d.strip()]
    dirs += [Path(d) for d in extra_dirs]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in {u.resolve() for u in unique}:
            unique.append(d)
    return unique


def load_transcripts(extra_dirs: Sequence[Path] = ()) -> list[Transcript]:
    """Every ``*.json`` transcript of the shared folder, the env-var folders and ``extra_dirs``.

    A missing shared folder is skipped; a folder named explicitly (env var or argument)
    must exist. Transcript names must be unique across folders.
    """
    transcripts: list[Transcript] = []
    seen: dict[str, Path] = {}
    for d in transcript_dirs(extra_dirs):
        if not d.is_dir():
            if d == SHARED_TRANSCRIPTS:
                continue
            raise FileNotFoundError(f"admin transcript folder {d} does not exist")
        for f in sorted(d.glob("*.json")):
            if f.stem.upper() == "README":
                continue
            t = load_transcript(f)
            if t.name in seen:
                raise TranscriptFormatError(f"{f}: transcript name {t.name!r} already loaded from {seen[t.name]}")
            seen[t.name] = f
            transcripts.append(t)
    return transcripts


# --------------------------------------------------------------------------------------
# Divergences
# --------------------------------------------------------------------------------------


def load_divergences(path: Path = DIVERGENCES_FILE) -> dict[tuple[str, int], str]:
    """Intended divergences: (transcript name, step index) -> reason."""
    try:
        entries = _json.loads(Path(path).read_text(encoding="utf-8"))
    except _json.JSONDecodeError as exc:
        raise TranscriptFormatError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(entries, list):
        raise TranscriptFormatError(f"{path}: must be a JSON list")
    out: dict[tuple[str, int], str] = {}
    for n, e in enumerate(entries):
        if not (isinstance(e, dict) and set(e) == {"transcript", "step", "reason"}
                and isinstance(e["transcript"], str) and type(e["step"]) is int and e["step"] >= 0
                and isinstance(e["reason"], str) and e["reason"].strip()):
            raise TranscriptFormatError(
                f"{path}: entry {n} must be {{\"transcript\": name, \"step\": index, \"reason\": non-empty text}}")
        key = (e["transcript"], e["step"])
        if key in out:
            raise TranscriptFormatError(f"{path}: entry {n} repeats {key[0]}#{key[1]}")
        out[key] = e["reason"]
    return out


def check_divergences(divergences: Mapping[tuple[str, int], str], transcripts: Iterable[Transcript]) -> list[str]:
    """Problems with divergence entries that name no existing step."""
    sizes = {t.name: len(t.steps) for t in transcripts}
    problems = []
    for name, index in divergences:
        if name not in sizes:
            problems.append(f"{name}#{index}: no such transcript")
        elif index >= sizes[name]:
            problems.append(f"{name}#{index}: the transcript has {sizes[name]} steps")
    return problems


# --------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


def short(value: Any, limit: int = 80) -> str:
    """A short JSON rendering of a value for messages."""
    if value is ABSENT:
        return "(absent)"
    try:
        text = _json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _same_scalar(a: Any, b: Any) -> bool:
    # bool is a subclass of int and 1 == 1.0 in Python: compare the exact JSON kind too.
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class _Rules:
    ignore: tuple[JsonPath, ...]
    unordered: tuple[JsonPath, ...]
    informative: tuple[JsonPath, ...]

    def any(self, patterns: tuple[JsonPath, ...], here: tuple[str | int, ...]) -> bool:
        return any(path_matches(p, here) for p in patterns)


def compare_json(expected: Any, actual: Any, *, ignore: Iterable[str | JsonPath] = (),
                 unordered: Iterable[str | JsonPath] = (),
                 informative: Iterable[str | JsonPath] = ()) -> list[str]:
    """Mismatches between two JSON values under the transcript comparison rules."""

    def norm(ps: Iterable[str | JsonPath]) -> tuple[JsonPath, ...]:
        return tuple(parse_path(p) if isinstance(p, str) else tuple(p) for p in ps)

    rules = _Rules(norm(ignore), norm(unordered), norm(informative))
    out: list[str] = []
    _cmp(expected, actual, (), rules, out)
    return out


def _at(here: tuple[str | int, ...]) -> str:
    return f"body at {format_path(here)}"


def _cmp(exp: Any, act: Any, here: tuple[str | int, ...], rules: _Rules, out: list[str]) -> None:
    if rules.any(rules.ignore, here):
        return  # present (the parent checked), value not compared
    if rules.any(rules.informative, here):
        if json_type(exp) != json_type(act):
            out.append(f"{_at(here)} (informative, type only): expected a {json_type(exp)}, "
                       f"got a {json_type(act)} {short(act)}")
        return
    if json_type(exp) != json_type(act) or (json_type(exp) == "number" and type(exp) is not type(act)):
        out.append(f"{_at(here)}: expected {short(exp)} ({_kind(exp)}), got {short(act)} ({_kind(act)})")
        return
    if isinstance(exp, dict):
        for key in exp:
            if key not in act:
                out.append(f"{_at(here + (key,))}: missing member (expected {short(exp[key])})")
        for key in act:
            if key not in exp:
                out.append(f"{_at(here + (key,))}: unexpected member (got {short(act[key])})")
        for key in exp:
            if key in act:
                _cmp(exp[key], act[key], here + (key,), rules, out)
    elif isinstance(exp, list):
        if rules.any(rules.unordered, here):
            _cmp_multiset(exp, act, here, rules, out)
            return
        if len(exp) != len(act):
            out.append(f"{_at(here)}: expected {len(exp)} element(s), got {len(act)}")
        for n, (e, a) in enumerate(zip(exp, act)):
            _cmp(e, a, here + (n,), rules, out)
    elif not _same_scalar(exp, act):
        out.append(f"{_at(here)}: expected {short(exp)}, got {short(act)}")


def _kind(v: Any) -> str:
    t = json_type(v)
    if t == "number":
        return "integer" if isinstance(v, int) else "float"
    return t


def _cmp_multiset(exp: list, act: list, here: tuple[str | int, ...], rules: _Rules, out: list[str]) -> None:
    """Compare two lists as multisets: a perfect matching of equal elements (ignore rules apply inside)."""
    fits = [[j for j, a in enumerate(act) if not _sub(e, a, here + (i,), rules)] for i, e in enumerate(exp)]
    owner: dict[int, int] = {}  # actual index -> expected index

    def augment(i: int, seen: set[int]) -> bool:
        for j in fits[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(exp)):
        augment(i, set())
    matched_exp = set(owner.values())
    missing = [exp[i] for i in range(len(exp)) if i not in matched_exp]
    extra = [act[j] for j in range(len(act)) if j not in owner]
    if missing or extra:
        parts = []
        if len(exp) != len(act):
            parts.append(f"expected {len(exp)} element(s), got {len(act)}")
        if missing:
            parts.append(f"expected element(s) not found: {short(missing)}")
        if extra:
            parts.append(f"unexpected element(s): {short(extra)}")
        out.append(f"{_at(here)} (unordered): " + "; ".join(parts))


def _sub(exp: Any, act: Any, here: tuple[str | int, ...], rules: _Rules) -> list[str]:
    out: list[str] = []
    _cmp(exp, act, here, rules, out)
    return out


def _header_map(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    merged: dict[str, str] = {}
    for k, v in items:
        key = k.lower()
        merged[key] = f"{merged[key]}, {v}" if key in merged else v
    return merged


def parse_json_body(body: bytes) -> Any:
    """Parse a response body as strict JSON (no NaN/Infinity). Raises ValueError."""

    def reject(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return _json.loads(body, parse_constant=reject)


def compare(step: Step, status: int, headers: Mapping[str, str], body: bytes) -> list[str]:
    """Mismatches between an answer and the step's recorded one (empty list: the step matches)."""
    out: list[str] = []
    if status != step.status:
        out.append(f"status: expected {step.status}, got {status}")
    actual_headers = _header_map(headers)
    for name, value in step.response_headers.items():
        got = actual_headers.get(name.lower())
        if got is None:
            out.append(f"header {name}: expected {value!r}, got (absent)")
        elif got != value:
            out.append(f"header {name}: expected {value!r}, got {got!r}")
    if step.response_json is not ABSENT:
        try:
            actual = parse_json_body(body)
        except (ValueError, UnicodeDecodeError) as exc:
            out.append(f"body: expected JSON {short(step.response_json)}, but the body is not JSON "
                       f"({exc}): {_short_bytes(body)}")
        else:
            out += compare_json(step.response_json, actual, ignore=step.ignore_paths,
                                unordered=step.unordered_paths, informative=step.informative_paths)
    else:
        text = body.decode("utf-8", errors="replace")
        if text != step.response_text:
            out.append(f"body text: expected {_short_text(step.response_text)}, got {_short_text(text)}")
    return out


def _short_text(text: str, limit: int = 80) -> str:
    r = repr(text)
    return r if len(r) <= limit else r[: limit - 1] + "…"


def _short_bytes(body: bytes, limit: int = 80) -> str:
    r = repr(body)
    return r if len(r) <= limit else r[: limit - 1] + "…"


def body_diff(step: Step, body: bytes, context: int = 3) -> str:
    """A unified diff of the expected and actual bodies (JSON pretty-printed, ignored values masked,
    unordered lists sorted); empty when the rendered bodies are equal."""
    if step.response_json is not ABSENT:
        expected_value = step.response_json
        try:
            actual_value = parse_json_body(body)
        except (ValueError, UnicodeDecodeError):
            expected = _pretty(expected_value)
            actual = body.decode("utf-8", errors="replace")
        else:
            for p in step.ignore_paths:
                expected_value = replace_at(expected_value, p, lambda _: "<ignored>")
                actual_value = replace_at(actual_value, p, lambda _: "<ignored>")
            for p in step.unordered_paths:
                expected_value = replace_at(expected_value, p, _sorted_list)
                actual_value = replace_at(actual_value, p, _sorted_list)
            expected, actual = _pretty(expected_value), _pretty(actual_value)
    else:
        expected, actual = step.response_text, body.decode("utf-8", errors="replace")
    if expected == actual:
        return ""
    lines = difflib.unified_diff(expected.splitlines(), actual.splitlines(), "expected", "actual",
                                 n=context, lineterm="")
    return "\n".join(lines)


def _pretty(v: Any) -> str:
    return _json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False)


def _sorted_list(v: Any) -> Any:
    return sorted(v, key=lambda x: _json.dumps(x, sort_keys=True)) if isinstance(v, list) else v


# --------------------------------------------------------------------------------------
# Requests and replay
# --------------------------------------------------------------------------------------


def _token_of(step: Step, tokens: Mapping[str, str]) -> str:
    try:
        return tokens[step.user]  # type: ignore[index]
    except KeyError:
        raise KeyError(f"no token for user {step.user!r} (step {step.index})") from None


def request_for(step: Step, tokens: Mapping[str, str]) -> tuple[str, str, dict[str, str], bytes | None]:
    """(method, path, headers, body) of a step; the body is None when the step sends none."""
    headers: dict[str, str] = {}
    body: bytes | None = None
    if step.json is not ABSENT:
        body = _json.dumps(step.json).encode("utf-8")
        headers["Content-Type"] = "application/json"
    elif step.raw is not ABSENT:
        body = step.raw.encode("utf-8")
        headers["Content-Type"] = "application/json"
    if step.user is not None:
        headers["Authorization"] = f"Bearer {_token_of(step, tokens)}"
    for name, value in step.headers.items():
        if "{token}" in value:
            value = value.replace("{token}", _token_of(step, tokens))
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value
    return step.method, step.path, headers, body


def make_tokens(users: Iterable[str]) -> dict[str, str]:
    """Distinct static bearer tokens for a transcript's users (username -> token)."""
    return {u: "token-" + re.sub(r"[^A-Za-z0-9]", "-", u) + f"-{n}" for n, u in enumerate(users)}


#: send(base_url, method, path, headers, body) -> (status, headers, body)
Sender = Callable[[str, str, str, Mapping[str, str], "bytes | None"], tuple[int, dict[str, str], bytes]]


def http_send(base_url: str, method: str, path: str, headers: Mapping[str, str], body: bytes | None,
              timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection; the request target is ``<base path><path>``, sent verbatim."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base URL must be http(s)://host[:port][/prefix], got {base_url!r}")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path.rstrip("/") + path, body=body, headers=dict(headers))
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, _header_map(resp.getheaders()), data
    finally:
        conn.close()


@dataclass
class StepResult:
    transcript: str
    step: Step
    request: tuple[str, str, dict[str, str], bytes | None]
    status: int | None
    headers: dict[str, str]
    body: bytes
    mismatches: list[str]
    diff: str = ""
    first_mismatch: bool = False
    divergence: str | None = None

    @property
    def matched(self) -> bool:
        return not self.mismatches

    @property
    def outcome(self) -> str:
        if self.matched:
            return "matched"
        return "divergent" if self.divergence is not None else "mismatched"


@dataclass
class TranscriptResult:
    transcript: Transcript
    steps: list[StepResult]

    @property
    def name(self) -> str:
        return self.transcript.name

    @property
    def matched(self) -> int:
        return sum(1 for s in self.steps if s.matched)

    @property
    def passed(self) -> bool:
        return all(s.outcome != "mismatched" for s in self.steps)

    @property
    def first_mismatch(self) -> StepResult | None:
        return next((s for s in self.steps if s.first_mismatch), None)


def replay(transcript: Transcript, base_url: str, tokens: Mapping[str, str], send: Sender = http_send,
           divergences: Mapping[tuple[str, int], str] | None = None) -> TranscriptResult:
    """Send every step in order, compare each answer and carry on after mismatches.

    The first mismatch that is not an intended divergence is marked ``first_mismatch``.
    A failure to send (connection refused, timeout) is recorded as that step's mismatch.
    """
    divergences = divergences or {}
    results: list[StepResult] = []
    first_seen = False
    for step in transcript.steps:
        request = request_for(step, tokens)
        method, path, headers, body = request
        try:
            status, resp_headers, resp_body = send(base_url, method, path, headers, body)
        except (OSError, http.client.HTTPException) as exc:
            status, resp_headers, resp_body = None, {}, b""
            mismatches = [f"request failed: {type(exc).__name__}: {exc}"]
            diff = ""
        else:
            mismatches = compare(step, status, resp_headers, resp_body)
            diff = body_diff(step, resp_body) if mismatches else ""
        result = StepResult(transcript.name, step, request, status, dict(resp_headers), resp_body,
                            mismatches, diff, divergence=divergences.get((transcript.name, step.index)))
        if result.outcome == "mismatched" and not first_seen:
            result.first_mismatch = first_seen = True
        results.append(result)
    return TranscriptResult(transcript, results)


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _format_request(request: tuple[str, str, Mapping[str, str], bytes | None], limit: int = 400) -> str:
    method, path, headers, body = request
    lines = [f"{method} {path}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        text = body.decode("utf-8", errors="replace")
        lines.append("")
        lines.append(text if len(text) <= limit else text[:limit] + "…")
    return "\n".join(lines)


def format_report(results: Sequence[TranscriptResult], divergences: Mapping[tuple[str, int], str] | None = None,
                  max_diff_lines: int = 60) -> str:
    """A human report; the last line is ``admin conformance: <matched>/<total> steps match``.

    Steps listed in ``divergences`` that mismatch are counted apart (neither matched nor
    failed) and listed as ``transcript#step: reason``; listed steps that now match are
    pointed out so the entry can be removed.
    """
    divergences = divergences or {}
    lines: list[str] = []
    total = matched = 0
    divergent: list[tuple[str, int, str]] = []
    stale: list[tuple[str, int]] = []
    for tr in results:
        total += len(tr.steps)
        first_done = False
        failed = []
        for sr in tr.steps:
            key = (tr.name, sr.step.index)
            if sr.matched:
                matched += 1
                if key in divergences:
                    stale.append(key)
            elif key in divergences:
                divergent.append((tr.name, sr.step.index, divergences[key]))
            else:
                failed.append(sr)
        tr_matched = sum(1 for s in tr.steps if s.matched)
        if not failed:
            lines.append(f"PASS {tr.name}: {tr_matched}/{len(tr.steps)} steps match")
            continue
        lines.append(f"FAIL {tr.name}: {tr_matched}/{len(tr.steps)} steps match, "
                     f"first mismatch at step {failed[0].step.index}")
        for sr in failed:
            head = f"  step {sr.step.index}: {sr.step.describe()}"
            if not first_done:
                first_done = True
                lines.append(head + "  <- first mismatch")
                lines.append("    request:")
                lines.append(_indent(_format_request(sr.request), "      "))
                lines += [f"    {m}" for m in sr.mismatches]
                if sr.diff:
                    diff_lines = sr.diff.splitlines()
                    lines.append("    diff:")
                    lines += [f"      {d}" for d in diff_lines[:max_diff_lines]]
                    if len(diff_lines) > max_diff_lines:
                        lines.append(f"      … {len(diff_lines) - max_diff_lines} more diff line(s)")
            else:
                lines.append(head)
                lines += [f"    {m}" for m in sr.mismatches]
    if stale:
        lines.append(f"divergences listed but now matching: {len(stale)}")
        lines += [f"  {name}#{index}" for name, index in stale]
    if divergent:
        lines.append(f"intended divergences: {len(divergent)}")
        lines += [f"{name}#{index}: {reason}" for name, index, reason in divergent]
    lines.append(f"admin conformance: {matched}/{total} steps match")
    return "\n".join(lines)
