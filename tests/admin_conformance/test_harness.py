"""The admin-transcript harness itself: loading, paths, comparison, requests, replay, report.

None of this needs the admin app: comparisons run against the recorded answers
themselves (and perturbations of them), and replay runs against small fake HTTP
servers on 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.admin_conformance import harness as h
from tests.admin_conformance.harness import (
    ABSENT, WILDCARD, Step, Transcript, TranscriptFormatError, compare, compare_json, format_path,
    format_report, load_divergences, load_transcripts, parse_path, parse_transcript, replay, request_for,
)

ALL = load_transcripts()
SHARED = [t for t in ALL if t.source is not None and t.source.parent == h.SHARED_TRANSCRIPTS]
BY_NAME = {t.name: t for t in ALL}
ALL_STEPS = [(t, s) for t in SHARED for s in t.steps]


def shared_step(name: str, index: int) -> Step:
    return BY_NAME[name].steps[index]


def recorded_body(step: Step) -> bytes:
    if step.response_json is not ABSENT:
        return json.dumps(step.response_json).encode("utf-8")
    return step.response_text.encode("utf-8")


def recorded_headers(step: Step) -> dict[str, str]:
    return dict(step.response_headers)


def matches_self(step: Step, body: bytes | None = None, **kw) -> list[str]:
    status = kw.get("status", step.status)
    headers = kw.get("headers", recorded_headers(step))
    return compare(step, status, headers, recorded_body(step) if body is None else body)


def minimal(**overrides) -> dict[str, Any]:
    """A small valid transcript as a dict (one step unless overridden)."""
    data = {
        "name": "tiny",
        "description": "a hand-made transcript",
        "config": {"allowlisted_domains": {"download.mozilla.org": ["Firefox"]}, "system_accounts": ["balrogagent"]},
        "bootstrap": {"permissions": [{"username": "admin@example.com", "permission": "admin", "options": None}]},
        "users": ["admin@example.com", "alice@example.com"],
        "steps": [{"method": "GET", "path": "/rules", "user": None, "status": 200,
                   "response_headers": {"Content-Type": "application/json"},
                   "response_json": {"count": 0, "rules": []}}],
    }
    data.update(overrides)
    return data


def make_step(**fields) -> Step:
    step = {"method": "GET", "path": "/x", "user": None, "status": 200, "response_headers": {}}
    step.update(fields)
    if "response_json" not in step and "response_text" not in step:
        step["response_json"] = None
    return parse_transcript(minimal(steps=[step])).steps[0]


def json_body(value: Any) -> bytes:
    return json.dumps(value).encode()


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def test_shared_transcripts_load_and_match_the_readme_table():
    readme = (h.SHARED_TRANSCRIPTS / "README.md").read_text()
    table = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| `([a-z0-9-]+)` \| (\d+) \|", readme, re.M)}
    counts = {t.name: len(t.steps) for t in SHARED}
    assert counts == table
    assert len(SHARED) == 18
    assert sum(counts.values()) == 501
    assert "18 transcripts, 501 steps." in readme
    for t in SHARED:
        assert t.source.name == f"{t.name}.json"
        assert [s.index for s in t.steps] == list(range(len(t.steps)))
        assert t.config["system_accounts"] and t.config["allowlisted_domains"]
        assert set(t.users) >= {s.user for s in t.steps if s.user is not None}


def test_absent_and_null_are_distinct(tmp_path):
    steps = [
        {"method": "POST", "path": "/a", "user": "alice@example.com", "json": None, "status": 200,
         "response_json": None},
        {"method": "GET", "path": "/b", "user": None, "status": 200, "response_text": ""},
    ]
    f = tmp_path / "tiny.json"
    f.write_text(json.dumps(minimal(steps=steps)))
    t = h.load_transcript(f)
    assert t.steps[0].json is None and t.steps[0].response_json is None
    assert t.steps[0].response_text is ABSENT and t.steps[0].raw is ABSENT
    assert t.steps[1].json is ABSENT and t.steps[1].response_json is ABSENT
    assert t.steps[1].response_text == ""
    # a JSON null body must be sent and must be answered with null
    assert request_for(t.steps[0], {"alice@example.com": "tok"})[3] == b"null"
    assert compare(t.steps[0], 200, {}, b"null") == []
    assert compare(t.steps[0], 200, {}, b"{}") != []
    assert request_for(t.steps[1], {})[3] is None


def test_shared_format_facts():
    """Facts about the shared transcripts the harness relies on (see the report)."""
    steps = [s for _, s in ALL_STEPS]
    assert not any(s.json is None for s in steps)  # no step sends a JSON null body
    assert not any(s.response_json is None for s in steps)
    assert sum(1 for s in steps if s.raw is not ABSENT) == 3
    get_with_body = [(t.name, s.index) for t, s in ALL_STEPS if s.method in ("GET", "PATCH") and s.json == {}]
    assert len(get_with_body) == 10  # 8 agent-style GETs and 2 PATCH 405s, all with {}
    assert all(s.user is None for s in steps if s.headers)
    assert not any("{token}" in v for s in steps for v in s.headers.values())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["steps"][1].pop("status"), "step 1: missing member(s) ['status']"),
        (lambda d: d["steps"][1].update(raw="{"), "step 1: 'json' and 'raw' are mutually exclusive"),
        (lambda d: d["steps"][1].update(response_text=""), "step 1: exactly one of"),
        (lambda d: d["steps"][1].update(ignore=["rules[*"]), "step 1: 'ignore': invalid JSON path"),
        (lambda d: d["steps"][1].update(user="mallory@example.com"), "step 1: user 'mallory@example.com'"),
        (lambda d: d["steps"][1].update(ignored=["x"]), "step 1: unknown member(s) ['ignored']"),
        (lambda d: d["steps"][1].update(response_headers={"X-Data-Version": 3}), "step 1: 'response_headers'"),
        (lambda d: d["steps"][1].update(status="200"), "step 1: 'status'"),
        (lambda d: d["steps"][1].update(path="/a b"), "step 1: 'path'"),
        (lambda d: d["steps"][1].update(headers={"Authorization": "Bearer {token}"}, user=None),
         "step 1: 'headers' uses {token}"),
        (lambda d: (d["steps"][0].pop("response_json"), d["steps"][0].update(response_text="x")),
         "step 0: 'ignore' only applies to 'response_json'"),
        (lambda d: d.update(name="other"), "'name' 'other' differs from the file name 'tiny'"),
        (lambda d: d.pop("users"), "missing top-level member(s) ['users']"),
        (lambda d: d.update(steps=[]), "'steps' must be a non-empty list"),
        (lambda d: d["bootstrap"]["permissions"][0].update(options="{}"), "bootstrap permission 0"),
    ],
)
def test_malformed_transcripts_name_file_and_step(tmp_path, mutate, message):
    data = minimal(steps=[
        {"method": "GET", "path": "/rules", "user": None, "status": 200, "response_json": {"n": 1},
         "ignore": ["n"]},
        {"method": "POST", "path": "/rules", "user": "alice@example.com", "json": {"a": 1}, "status": 200,
         "response_json": 1},
    ])
    mutate(data)
    f = tmp_path / "tiny.json"
    f.write_text(json.dumps(data))
    with pytest.raises(TranscriptFormatError) as info:
        h.load_transcript(f)
    assert str(info.value).startswith(str(f) + ": ")
    assert message in str(info.value)


def test_invalid_json_file_is_reported_with_its_name(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text("{")
    with pytest.raises(TranscriptFormatError, match=re.escape(str(f)) + ": not valid JSON"):
        load_transcripts(extra_dirs=[tmp_path])


def test_env_var_and_extra_dirs_add_transcripts(tmp_path, monkeypatch):
    env_dir, extra_dir = tmp_path / "env", tmp_path / "extra"
    env_dir.mkdir()
    extra_dir.mkdir()
    (env_dir / "tiny.json").write_text(json.dumps(minimal()))
    (env_dir / "README.json").write_text("not a transcript")
    (env_dir / "notes.txt").write_text("ignored")
    (extra_dir / "tiny-extra.json").write_text(json.dumps(minimal(name="tiny-extra")))
    monkeypatch.setenv(h.ENV_DIRS, os.pathsep.join([str(env_dir), ""]))
    loaded = load_transcripts()
    assert len(loaded) == len(SHARED) + 1
    tiny = loaded[-1]
    assert tiny.name == "tiny" and tiny.source == env_dir / "tiny.json" and len(tiny.steps) == 1
    names = [t.name for t in load_transcripts(extra_dirs=[extra_dir, env_dir])]  # env_dir only once
    assert names[-2:] == ["tiny", "tiny-extra"] and len(names) == len(SHARED) + 2


def test_duplicate_names_and_missing_dirs_are_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(h.ENV_DIRS, raising=False)
    (tmp_path / "rules-crud.json").write_text(json.dumps(minimal(name="rules-crud")))
    with pytest.raises(TranscriptFormatError, match="'rules-crud' already loaded"):
        load_transcripts(extra_dirs=[tmp_path])
    monkeypatch.setenv(h.ENV_DIRS, str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="nope"):
        load_transcripts()


# --------------------------------------------------------------------------------------
# JSON paths
# --------------------------------------------------------------------------------------


def test_path_parser_examples():
    assert parse_path("count") == ("count",)
    assert parse_path("rules[*].timestamp") == ("rules", WILDCARD, "timestamp")
    assert parse_path('["Rules scheduled change"].revisions[*].timestamp') == (
        "Rules scheduled change", "revisions", WILDCARD, "timestamp")
    assert parse_path('["."].when') == (".", "when")
    assert parse_path('a["b.c"][*][2]["x\\"]y"]') == ("a", "b.c", WILDCARD, 2, 'x"]y')
    assert parse_path("[*]") == (WILDCARD,)
    assert format_path(("Rules scheduled change", "revisions", 0, "timestamp")) == \
        '["Rules scheduled change"].revisions[0].timestamp'
    assert format_path(()) == "<root>"
    assert format_path(("platforms", "WINNT_x86-msvc", "locales", "en-US")) == \
        'platforms["WINNT_x86-msvc"].locales["en-US"]'


@pytest.mark.parametrize("bad", ["", ".a", "a.", "a..b", "a b", "[*", '["a"', '["a"x', "a[x]", "a[-1]", "a[01]",
                                 "a.[*]", "a*", "a.1", "a[*]b"])
def test_path_parser_rejects(bad):
    with pytest.raises(ValueError, match="invalid JSON path"):
        parse_path(bad)


def transcript_paths() -> list[tuple[str, int, str, str]]:
    return [(t.name, s.index, kind, p) for t, s in ALL_STEPS
            for kind in ("ignore", "unordered", "informative") for p in getattr(s, kind)]


def test_every_transcript_path_parses_round_trips_and_resolves():
    paths = transcript_paths()
    assert len({p for *_, p in paths}) == 12
    for name, index, kind, text in paths:
        parsed = parse_path(text)
        assert format_path(parsed) == text
        assert parse_path(format_path(parsed)) == parsed
        # every listed path selects at least one value of its own recorded answer
        assert h.resolve(shared_step(name, index).response_json, parsed), (name, index, text)
    assert parse_path('["Product Required Signoffs Scheduled Change"].revisions[*].timestamp') == (
        "Product Required Signoffs Scheduled Change", "revisions", WILDCARD, "timestamp")


def test_resolve_replace_delete():
    doc = {"a": [{"t": 1, "k": 2}, {"t": 3}], ".": {"when": 5}}
    assert h.resolve(doc, parse_path("a[*].t")) == [(("a", 0, "t"), 1), (("a", 1, "t"), 3)]
    assert h.resolve(doc, parse_path("a[*].k")) == [(("a", 0, "k"), 2)]
    assert h.resolve(doc, parse_path("b[*].k")) == []
    assert h.replace_at(doc, parse_path('["."].when'), lambda v: v + 1)["."] == {"when": 6}
    assert h.delete_at(doc, parse_path("a[*].t"))["a"] == [{"k": 2}, {}]
    assert doc["a"][0] == {"t": 1, "k": 2}  # copies, not in place
    assert h.path_matches(parse_path("a[*].t"), ("a", 4, "t"))
    assert not h.path_matches(parse_path("a[*].t"), ("a", "4", "t"))
    assert not h.path_matches(parse_path("a[*]"), ("a", 4, "t"))


# --------------------------------------------------------------------------------------
# Comparison against the recorded answers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("transcript", SHARED, ids=lambda t: t.name)
def test_every_recorded_answer_matches_itself(transcript: Transcript):
    for step in transcript.steps:
        assert matches_self(step) == [], (transcript.name, step.index)
        # header names are case-insensitive; extra headers are fine
        lowered = {k.lower(): v for k, v in step.response_headers.items()}
        lowered.update({"Server": "x", "Date": "now", "Content-Length": "0"})
        assert matches_self(step, headers=lowered) == [], (transcript.name, step.index)
        if step.response_json is not ABSENT:
            # key order and whitespace do not matter
            pretty = json.dumps(_reverse_keys(step.response_json), indent=3).encode()
            assert matches_self(step, body=pretty) == [], (transcript.name, step.index)


def _reverse_keys(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _reverse_keys(v[k]) for k in reversed(list(v))}
    if isinstance(v, list):
        return [_reverse_keys(x) for x in v]
    return v


def _changed(v: Any) -> Any:
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 7
    if isinstance(v, str):
        return v + " (changed)"
    if v is None:
        return 0
    if isinstance(v, list):
        return v + ["extra"]
    return {**v, "extra": 1}


IGNORE_STEPS = [s for _, s in ALL_STEPS if s.ignore]
INFORMATIVE_STEPS = [s for _, s in ALL_STEPS if s.informative]
UNORDERED_STEPS = [s for _, s in ALL_STEPS if s.unordered]


def test_changed_values_at_ignore_paths_still_match():
    assert len(IGNORE_STEPS) == 18
    for step in IGNORE_STEPS:
        for p in step.ignore_paths:
            for other in (_changed, lambda v: None, lambda v: "2024-01-01"):
                body = h.replace_at(step.response_json, p, other)
                assert body != step.response_json
                assert matches_self(step, json_body(body)) == [], (step.path, format_path(p))


def test_dropped_ignored_members_are_mismatches():
    for step in IGNORE_STEPS:
        for p in step.ignore_paths:
            body = h.delete_at(step.response_json, p)
            mismatches = matches_self(step, json_body(body))
            located = h.resolve(step.response_json, p)
            assert len(mismatches) == len(located)
            for (where, _), message in zip(located, mismatches):
                assert message.startswith(f"body at {format_path(where)}: missing member"), message


def _leaves(v: Any, here: tuple = ()) -> list[tuple[tuple, Any]]:
    if isinstance(v, dict):
        return [leaf for k, x in v.items() for leaf in _leaves(x, here + (k,))]
    if isinstance(v, list):
        return [leaf for n, x in enumerate(v) for leaf in _leaves(x, here + (n,))]
    return [(here, v)]


def _under(patterns, where) -> bool:
    return any(h.path_matches(p, where[: len(p)]) for p in patterns)


def test_changed_values_elsewhere_are_mismatches_naming_the_path():
    checked = 0
    for _, step in ALL_STEPS:
        if step.response_json is ABSENT:
            continue
        special = step.ignore_paths + step.unordered_paths + step.informative_paths
        for where, value in _leaves(step.response_json):
            if _under(special, where) or not where:
                continue
            body = h.replace_at(step.response_json, where, _changed)
            mismatches = matches_self(step, json_body(body))
            assert len(mismatches) == 1 and mismatches[0].startswith(f"body at {format_path(where)}: expected "), \
                mismatches
            assert h.short(value) in mismatches[0]
            checked += 1
    assert checked > 3000


def test_scalar_bodies_and_json_kinds():
    step = shared_step("rules-crud", 3)  # POST /rules answers the bare rule id
    assert step.response_json == 1
    assert matches_self(step, b"1") == [] and matches_self(step, b" 1\n") == []
    for other in (b"true", b"1.0", b'"1"', b"2", b"[1]", b"null"):
        [message] = matches_self(step, other)
        assert message.startswith("body at <root>: expected 1"), message
    assert "(integer)" in matches_self(step, b"true")[0] and "(boolean)" in matches_self(step, b"true")[0]
    assert compare_json({"a": 1}, {"a": True}) == ["body at a: expected 1 (integer), got true (boolean)"]
    assert compare_json({"a": True}, {"a": 1}) != []
    assert compare_json({"a": 1}, {"a": 1.0}) == ["body at a: expected 1 (integer), got 1.0 (float)"]
    assert compare_json({"a": 0}, {"a": False}) != []
    assert compare_json({"a": None}, {}) == ["body at a: missing member (expected null)"]
    assert compare_json({}, {"a": None}) == ["body at a: unexpected member (got null)"]
    assert compare_json({"a": "x", "b": 2}, {"b": 2, "a": "x"}) == []
    assert compare_json([1, 2], [1, 2, 3]) == ["body at <root>: expected 2 element(s), got 3"]


def test_unparsable_bodies_are_mismatches():
    step = shared_step("rules-crud", 3)
    for body in (b"", b"Excellent!", b"{", b"NaN", b"\xff\xfe\xfd"):
        [message] = matches_self(step, body)
        assert message.startswith("body: expected JSON 1, but the body is not JSON"), message
    # JSON is parsed whatever the content type says (here text/html)
    assert step.response_headers["Content-Type"] == "text/html; charset=utf-8"


def test_text_bodies_compare_exactly():
    ok = shared_step("misc-service-endpoints", 1)
    assert ok.response_text == "OK!"
    assert matches_self(ok, b"OK!") == []
    for other in (b"OK!\n", b"ok!", b"", b'"OK!"'):
        [message] = matches_self(ok, other)
        assert message.startswith("body text: expected 'OK!', got "), message
    head = shared_step("rules-crud", 5)
    assert head.method == "HEAD" and head.response_text == ""
    assert matches_self(head, b"x") == ["body text: expected '', got 'x'"]


def test_unordered_lists_compare_as_multisets():
    assert len(UNORDERED_STEPS) == 2
    for step in UNORDERED_STEPS:
        for p in step.unordered_paths:
            [(where, value)] = h.resolve(step.response_json, p)
            assert len(value) >= 2
            body = h.replace_at(step.response_json, p, lambda v: list(reversed(v)))
            assert matches_self(step, json_body(body)) == []
            body = h.replace_at(step.response_json, p, lambda v: v[:-1] + [v[0]])
            [message] = matches_self(step, json_body(body))
            assert message.startswith(f"body at {format_path(where)} (unordered): ")
            assert "not found" in message and "unexpected element" in message
            body = h.replace_at(step.response_json, p, lambda v: v[1:])
            [message] = matches_self(step, json_body(body))
            assert f"expected {len(value)} element(s), got {len(value) - 1}" in message
    # multisets, not sets; ignore paths apply inside unordered elements
    rules = dict(unordered=["items"], ignore=["items[*].ts"])
    assert compare_json({"items": ["a", "a", "b"]}, {"items": ["a", "b", "b"]}, **rules) != []
    assert compare_json({"items": ["a", "a", "b"]}, {"items": ["a", "b", "a"]}, **rules) == []
    exp = {"items": [{"id": 1, "ts": 10}, {"id": 2, "ts": 20}, {"id": 1, "ts": 30}]}
    act = {"items": [{"id": 1, "ts": 99}, {"id": 2, "ts": 98}, {"id": 1, "ts": 97}]}
    assert compare_json(exp, {"items": list(reversed(act["items"]))}, **rules) == []
    assert compare_json(exp, {"items": [{"id": 1, "ts": 1}, {"id": 2, "ts": 2}, {"id": 2, "ts": 3}]}, **rules) != []
    assert compare_json(exp, {"items": [{"id": 1}, {"id": 2, "ts": 2}, {"id": 1, "ts": 3}]}, **rules) != []
    # matching needs backtracking: a greedy first fit would fail here
    assert compare_json({"l": [{"a": 1, "b": 1}, {"a": 1, "b": 2}]}, {"l": [{"a": 1, "b": 2}, {"a": 1, "b": 9}]},
                        unordered=["l"], ignore=["l[*].b"]) == []


def test_reordered_ordinary_lists_are_mismatches():
    reordered = 0
    for _, step in ALL_STEPS:
        if step.response_json is ABSENT:
            continue
        special = step.ignore_paths + step.unordered_paths + step.informative_paths
        lists = _lists(step.response_json)
        for where, value in lists:
            if _under(special, where):
                continue
            masked = value
            for p in step.ignore_paths:
                if len(p) > len(where) and h.path_matches(p[: len(where)], where):
                    masked = h.replace_at(masked, p[len(where):], lambda _: None)
            if len({json.dumps(x, sort_keys=True) for x in masked}) < 2:
                continue
            body = h.replace_at(step.response_json, where, lambda v: list(reversed(v)))
            assert matches_self(step, json_body(body)) != [], (step.path, format_path(where))
            reordered += 1
    assert reordered > 30


def _lists(v: Any, here: tuple = ()) -> list[tuple[tuple, list]]:
    out: list[tuple[tuple, list]] = []
    if isinstance(v, list):
        out.append((here, v))
        for n, x in enumerate(v):
            out += _lists(x, here + (n,))
    elif isinstance(v, dict):
        for k, x in v.items():
            out += _lists(x, here + (k,))
    return out


def test_informative_members_compare_by_presence_and_type():
    assert len(INFORMATIVE_STEPS) == 58
    for step in INFORMATIVE_STEPS:
        for p in step.informative_paths:
            [(where, value)] = h.resolve(step.response_json, p)
            other_text = "a different wording" if isinstance(value, str) else ["another", "wording"]
            body = h.replace_at(step.response_json, p, lambda _: other_text)
            assert matches_self(step, json_body(body)) == []
            body = h.replace_at(step.response_json, p, lambda _: 42)
            [message] = matches_self(step, json_body(body))
            assert message.startswith(f"body at {format_path(where)} (informative, type only): ")
            kind = "string" if isinstance(value, str) else "array"
            assert f"expected a {kind}, got a number 42" in message
            [message] = matches_self(step, json_body(h.delete_at(step.response_json, p)))
            assert message == f"body at {format_path(where)}: missing member (expected {h.short(value)})"
    # the other members of an informative error body are still compared exactly
    step = shared_step("auth-basics", 13)
    assert step.informative == ("exception",)
    body = dict(step.response_json, detail="Something else", exception="anything")
    assert matches_self(step, json_body(body)) == [
        "body at detail: expected \"PermissionDeniedError\", got \"Something else\""]


def test_status_and_header_mismatches():
    versioned = [s for _, s in ALL_STEPS if "X-Data-Version" in s.response_headers]
    assert len(versioned) == 49
    for step in versioned:
        version = step.response_headers["X-Data-Version"]
        headers = dict(step.response_headers, **{"X-Data-Version": str(int(version) + 1)})
        assert matches_self(step, headers=headers) == [
            f"header X-Data-Version: expected {version!r}, got {str(int(version) + 1)!r}"]
        headers = {k: v for k, v in step.response_headers.items() if k != "X-Data-Version"}
        assert matches_self(step, headers=headers) == [f"header X-Data-Version: expected {version!r}, got (absent)"]
    for _, step in ALL_STEPS:
        assert matches_self(step, status=step.status + 1) == [f"status: expected {step.status}, got {step.status + 1}"]
        ct = step.response_headers["Content-Type"]
        other = "application/json" if ct != "application/json" else "application/problem+json"
        [message] = matches_self(step, headers=dict(step.response_headers, **{"Content-Type": other}))
        assert message == f"header Content-Type: expected {ct!r}, got {other!r}"
    # exact values: no parameter normalisation
    step = shared_step("rules-crud", 3)
    assert matches_self(step, headers={"content-type": "text/html;charset=utf-8"}) != []
    # everything at once
    assert len(compare(step, 500, {}, b"nope")) == 3


# --------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------

TOKENS = {"admin@example.com": "tok-admin", "alice@example.com": "tok-alice", "bob@example.com": "tok-bob",
          "balrogagent": "tok-agent", "carol@example.com": "tok-carol"}


def test_request_for_raw_step():
    step = shared_step("releases-v1-validation", 0)
    assert step.raw is not ABSENT and step.json is ABSENT
    method, path, headers, body = request_for(step, TOKENS)
    assert (method, path) == ("PUT", "/releases/Firefox-62.0-build1")
    assert body == step.raw.encode("utf-8") == b'{"name": "Firefox-62.0-build1",'
    assert headers == {"Content-Type": "application/json", "Authorization": "Bearer tok-alice"}


def test_request_for_json_step_uses_plain_json_dumps():
    step = shared_step("rules-crud", 3)
    method, path, headers, body = request_for(step, TOKENS)
    assert json.loads(body) == step.json and body == json.dumps(step.json).encode()
    assert headers["Content-Type"] == "application/json"


def test_request_for_token_placeholder_and_header_override():
    step = make_step(user="alice@example.com", json={"a": 1},
                     headers={"authorization": "bearer {token}", "X-Extra": "{token}-{other}"})
    _, _, headers, body = request_for(step, TOKENS)
    assert headers == {"Content-Type": "application/json", "authorization": "bearer tok-alice",
                       "X-Extra": "tok-alice-{other}"}
    step = make_step(user="alice@example.com", json={}, headers={"Content-Type": "text/plain"})
    assert request_for(step, TOKENS)[2] == {"Authorization": "Bearer tok-alice", "Content-Type": "text/plain"}
    with pytest.raises(KeyError, match="no token for user 'alice@example.com'"):
        request_for(step, {})


def test_request_for_anonymous_steps():
    step = shared_step("auth-basics", 9)  # user null, explicit Basic header
    assert step.user is None
    assert request_for(step, {}) == ("POST", "/rules", {"Content-Type": "application/json",
                                                        "Authorization": "Basic YWRtaW46YWRtaW4="},
                                     json.dumps(step.json).encode())
    anonymous = [s for _, s in ALL_STEPS if s.user is None and not s.headers]
    assert anonymous
    for step in anonymous:
        assert all(k.lower() != "authorization" for k in request_for(step, {})[2])


def test_request_for_agent_style_get_with_empty_object():
    step = shared_step("misc-service-endpoints", 15)
    assert step.method == "GET" and step.json == {}
    assert step.user == "balrogagent"
    assert request_for(step, TOKENS) == ("GET", "/scheduled_changes/rules",
                                         {"Content-Type": "application/json", "Authorization": "Bearer tok-agent"},
                                         b"{}")


def test_request_for_keeps_the_path_verbatim():
    step = make_step(path="/users/alice%40example.com/permissions/rule?x=a%20b&y=@")
    assert request_for(step, TOKENS)[1] == "/users/alice%40example.com/permissions/rule?x=a%20b&y=@"
    for t, s in ALL_STEPS:
        assert request_for(s, h.make_tokens(t.users))[1] == s.path


# --------------------------------------------------------------------------------------
# Replay over HTTP against fake servers
# --------------------------------------------------------------------------------------


class FakeServer:
    """A threading HTTP server on 127.0.0.1 answering through ``responder``; records every request."""

    def __init__(self, responder):
        self.responder = responder
        self.received: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = (self.command, self.path, list(self.headers.items()), body)
                fake.received.append(request)
                status, headers, answer = fake.responder(*request)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_one

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def header(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]


FAKE = parse_transcript(minimal(
    name="fake",
    steps=[
        {"method": "PUT", "path": "/users/alice%40example.com/permissions/rule", "user": "admin@example.com",
         "json": {"options": None}, "status": 201,
         "response_headers": {"Content-Type": "application/json"}, "response_json": {"new_data_version": 1}},
        {"method": "GET", "path": "/rules/1?x=%20", "user": "alice@example.com", "status": 200,
         "response_headers": {"Content-Type": "application/json", "X-Data-Version": "2"},
         "response_json": {"rule_id": 1, "priority": 100, "timestamp": 5, "channel": "release"},
         "ignore": ["timestamp"]},
        {"method": "HEAD", "path": "/rules/1", "user": None, "status": 200,
         "response_headers": {"X-Data-Version": "2"}, "response_text": ""},
    ],
))

CANNED = {
    ("PUT", "/users/alice%40example.com/permissions/rule"):
        (201, [("Content-Type", "application/json")], b'{"new_data_version": 1}'),
    ("GET", "/rules/1?x=%20"):
        (200, [("Content-Type", "application/json"), ("X-Data-Version", "2")],
         b'{"rule_id": 1, "priority": 90, "timestamp": 6, "channel": "release"}'),
    ("HEAD", "/rules/1"): (200, [("X-Data-Version", "2"), ("Content-Type", "application/json")], b""),
}


def canned(method, path, headers, body):
    return CANNED.get((method, path), (404, [("Content-Type", "text/plain")], b"not canned"))


def test_replay_against_a_fake_server():
    with FakeServer(canned) as server:
        result = replay(FAKE, server.url, TOKENS)
    # the request targets went out verbatim, one connection each, with the right credentials
    assert [(m, p) for m, p, _, _ in server.received] == [
        ("PUT", "/users/alice%40example.com/permissions/rule"), ("GET", "/rules/1?x=%20"), ("HEAD", "/rules/1")]
    put, get, head = server.received
    assert header(put[2], "Authorization") == ["Bearer tok-admin"]
    assert header(put[2], "Content-Type") == ["application/json"] and json.loads(put[3]) == {"options": None}
    assert header(get[2], "Authorization") == ["Bearer tok-alice"] and get[3] == b""
    assert header(head[2], "Authorization") == []

    assert [s.outcome for s in result.steps] == ["matched", "mismatched", "matched"]
    assert result.matched == 2 and not result.passed
    first = result.first_mismatch
    assert first is result.steps[1] and first.first_mismatch
    assert first.mismatches == ["body at priority: expected 100, got 90"]  # the timestamp is ignored
    assert first.request == ("GET", "/rules/1?x=%20", {"Authorization": "Bearer tok-alice"}, None)
    assert first.headers["x-data-version"] == "2"
    assert '-  "priority": 100,' in first.diff and '+  "priority": 90,' in first.diff
    assert '"timestamp": "<ignored>"' in first.diff
    assert '"timestamp": 5' not in first.diff and '"timestamp": 6' not in first.diff

    report = format_report([result], {})
    lines = report.splitlines()
    assert lines[0] == "FAIL fake: 2/3 steps match, first mismatch at step 1"
    assert "  step 1: GET /rules/1?x=%20 (alice@example.com)  <- first mismatch" in lines
    assert "      GET /rules/1?x=%20" in lines and "      Authorization: Bearer tok-alice" in lines
    assert "    body at priority: expected 100, got 90" in lines
    assert "    diff:" in lines and "      --- expected" in lines and "      +++ actual" in lines
    assert lines[-1] == "admin conformance: 2/3 steps match"
    assert "intended divergences" not in report


def test_replay_reports_every_mismatch_after_the_first():
    def wrong(method, path, headers, body):
        return 500, [("Content-Type", "text/html")], b"<h1>boom</h1>"

    with FakeServer(wrong) as server:
        result = replay(FAKE, server.url + "/api/", TOKENS)
    assert [p for _, p, _, _ in server.received] == [
        "/api/users/alice%40example.com/permissions/rule", "/api/rules/1?x=%20", "/api/rules/1"]
    assert [s.first_mismatch for s in result.steps] == [True, False, False]
    assert all(s.outcome == "mismatched" for s in result.steps)
    assert "status: expected 201, got 500" in result.steps[0].mismatches
    assert any("not JSON" in m for m in result.steps[0].mismatches)
    report = format_report([result])
    assert report.count("<- first mismatch") == 1
    assert "  step 2: HEAD /rules/1 (no user)" in report.splitlines()
    assert report.splitlines()[-1] == "admin conformance: 0/3 steps match"


def test_intended_divergences_count_apart():
    divergences = {("fake", 1): "we answer the priority Balrog should have stored"}
    with FakeServer(canned) as server:
        result = replay(FAKE, server.url, TOKENS, divergences=divergences)
    assert [s.outcome for s in result.steps] == ["matched", "divergent", "matched"]
    assert result.passed and result.first_mismatch is None
    lines = format_report([result], divergences).splitlines()
    assert lines[0] == "PASS fake: 2/3 steps match"
    assert lines[-3:] == ["intended divergences: 1", "fake#1: we answer the priority Balrog should have stored",
                          "admin conformance: 2/3 steps match"]
    # a listed divergence that now matches is counted as a match and pointed out
    lines = format_report([result], {("fake", 0): "old"}).splitlines()
    assert "divergences listed but now matching: 1" in lines and "  fake#0" in lines
    assert lines[-1] == "admin conformance: 2/3 steps match"


def test_unreachable_server_is_a_mismatch_not_a_crash():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = replay(FAKE, f"http://127.0.0.1:{port}", TOKENS)
    assert all(s.mismatches[0].startswith("request failed: ") for s in result.steps)
    assert result.steps[0].first_mismatch and result.steps[0].status is None
    assert format_report([result]).splitlines()[-1] == "admin conformance: 0/3 steps match"


def test_replaying_every_shared_transcript_against_its_own_recording():
    """An echo server answering each request with the recorded answer: every step matches over real
    HTTP (HEAD, empty bodies, X-Data-Version, JSON with text/html), and every request went out as built."""
    results = []
    for transcript in SHARED:
        tokens = h.make_tokens(transcript.users)
        steps = iter(transcript.steps)
        expected_requests = [request_for(s, tokens) for s in transcript.steps]

        def echo(method, path, headers, body):
            step = next(steps)
            return step.status, list(step.response_headers.items()), recorded_body(step)

        with FakeServer(echo) as server:
            result = replay(transcript, server.url, tokens)
        assert len(server.received) == len(transcript.steps)
        for (method, path, headers, body), (m, p, hs, b) in zip(expected_requests, server.received):
            assert (m, p, b) == (method, path, body or b"")
            for name, value in headers.items():
                assert header(hs, name) == [value]
            if "Authorization" not in headers and not any(k.lower() == "authorization" for k in headers):
                assert header(hs, "Authorization") == []
        assert [s.mismatches for s in result.steps] == [[]] * len(transcript.steps), transcript.name
        results.append(result)
    report = format_report(results, load_divergences())
    assert report.splitlines()[-1] == "admin conformance: 501/501 steps match"
    assert len(report.splitlines()) == 19


def test_make_tokens_are_distinct_and_header_safe():
    users = sorted({u for t in SHARED for u in t.users})
    tokens = h.make_tokens(users)
    assert len(set(tokens.values())) == len(users)
    assert all(re.fullmatch(r"[A-Za-z0-9-]+", t) for t in tokens.values())


# --------------------------------------------------------------------------------------
# Divergences file
# --------------------------------------------------------------------------------------


def test_divergences_file_is_valid():
    assert json.loads(h.DIVERGENCES_FILE.read_text()) == []
    divergences = load_divergences()
    assert divergences == {}
    assert h.check_divergences(divergences, SHARED) == []


def test_divergences_are_validated(tmp_path):
    f = tmp_path / "d.json"
    f.write_text(json.dumps([{"transcript": "rules-crud", "step": 3, "reason": "because"},
                             {"transcript": "nope", "step": 0, "reason": "x"},
                             {"transcript": "rules-crud", "step": 99, "reason": "x"}]))
    d = load_divergences(f)
    assert d[("rules-crud", 3)] == "because"
    assert h.check_divergences(d, SHARED) == ["nope#0: no such transcript", "rules-crud#99: the transcript has 35 steps"]
    for bad in ({"transcript": "a", "step": "1", "reason": "x"}, {"transcript": "a", "step": 1},
                {"transcript": "a", "step": 1, "reason": " "}, {"transcript": "a", "step": True, "reason": "x"}):
        f.write_text(json.dumps([bad]))
        with pytest.raises(TranscriptFormatError, match="entry 0"):
            load_divergences(f)
    f.write_text(json.dumps([{"transcript": "a", "step": 1, "reason": "x"}] * 2))
    with pytest.raises(TranscriptFormatError, match="repeats a#1"):
        load_divergences(f)
