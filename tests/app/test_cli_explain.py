"""`balrog explain URL` and `balrog lint` as a user runs them, on a SQLite database loaded with
`balrog db load` (the shared bench dataset: a long rules table, many of whose rules never win)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from balrog_engine import Engine, ServerState, lint, load_plugins

BALROG = [sys.executable, "-m", "balrog_app.cli"]
BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "bench"


def balrog(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(BALROG + list(args), cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("BALROG_")},
                               "BALROG_LOG_FORMAT": "text"})


@pytest.fixture(scope="module")
def bench_db(tmp_path_factory):
    if not (BENCH / "dataset.json").is_file():
        pytest.skip("shared bench data not available")
    where = tmp_path_factory.mktemp("cli")
    db = f"sqlite:///{where}/bench.db"
    loaded = balrog("db", "load", str(BENCH / "dataset.json"), "--db", db, cwd=where)
    assert loaded.returncode == 0, loaded.stderr
    urls = (BENCH / "urls.txt").read_text().split()
    return db, where, urls


def test_explain_prints_a_readable_report(bench_db):
    db, where, urls = bench_db
    done = balrog("explain", urls[0], "--db", db, cwd=where)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"request: {urls[0]}\nquery:   kind='xml', protocol='6', product='Firefox'")
    assert "rules in evaluation order (priority descending, then rule_id):" in out
    assert " => rule " in out and "more rule(s) for other products or channels; --all lists them" in out
    assert "\ndecision: rule " in out and "\nanswer: HTTP 200 text/xml; charset=utf-8\nRule-ID: " in out
    everything = balrog("explain", urls[0], "--db", db, "--all", cwd=where).stdout
    assert everything.count("\n    rule ") > out.count("\n    rule ") and "--all lists them" not in everything


def test_explain_json_is_what_the_public_server_answers(bench_db):
    db, where, urls = bench_db
    engine = Engine.from_url(db, roll=lambda: 0)
    try:
        for url in urls[:40:4]:
            done = balrog("explain", "--json", "--db", db, url, cwd=where)
            assert done.returncode == 0, done.stderr
            explanation = json.loads(done.stdout)
            served = engine.get(url)
            first = explanation["answer"]["outcomes"][0]
            assert (first["status"], first["body"]) == (served.status, served.text)
            assert str(explanation["matched_rule"]) == served.header("Rule-ID")
            assert len(explanation["rules"]) == 1016
    finally:
        engine.close()


def test_explain_refuses_what_is_no_update_url(bench_db):
    db, where, _ = bench_db
    done = balrog("explain", "/update/6/Firefox/67.0/update.xml", "--db", db, cwd=where)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("balrog explain: url: /update/6/ takes 10 segments")


def test_lint_lists_the_shadowed_rules_and_exits_1(bench_db):
    db, where, _ = bench_db
    done = balrog("lint", "--db", db, cwd=where)
    assert done.returncode == 1, done.stderr
    registry = load_plugins()
    storage = registry.storage_for(db)
    try:
        expected = lint(ServerState.from_storage(storage, registry))
    finally:
        storage.close()
    assert expected and done.stdout.count(" can never match: rule ") == len(expected)
    assert done.stdout.rstrip().endswith(f"{len(expected)} rule(s) can never match")
    assert expected[0].text() in done.stdout
    as_json = json.loads(balrog("lint", "--json", "--db", db, cwd=where).stdout)
    assert as_json["count"] == len(expected)
    assert [(f["rule_id"], f["shadowed_by"]) for f in as_json["findings"]] == \
        [(f.rule_id, f.shadowed_by) for f in expected]


def test_lint_exits_0_when_every_rule_can_match(tmp_path):
    dataset = {"rules": [
        {"rule_id": 1, "priority": 100, "mapping": "r", "backgroundRate": 100, "update_type": "minor",
         "product": "Firefox", "channel": "release", "locale": "de"},
        {"rule_id": 2, "priority": 90, "mapping": "r", "backgroundRate": 100, "update_type": "minor",
         "product": "Firefox", "channel": "release*"},
    ], "releases": [{"name": "r", "product": "Firefox", "data": {
        "name": "r", "schema_version": 1, "appv": "2.0", "extv": "2.0", "hashFunction": "sha512",
        "platforms": {"p": {"buildID": "5", "locales": {"l": {"complete": {
            "filesize": "5", "from": "*", "hashValue": "5", "fileUrl": "http://a.com/r"}}}}}}}]}
    (tmp_path / "small.json").write_text(json.dumps(dataset))
    db = f"sqlite:///{tmp_path}/small.db"
    assert balrog("db", "load", "small.json", "--db", db, cwd=tmp_path).returncode == 0
    done = balrog("lint", "--db", db, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "no shadowed rules\n")
    assert json.loads(balrog("lint", "--json", "--db", db, cwd=tmp_path).stdout) == {"count": 0, "findings": []}
