"""``Storage.dump`` / ``Storage.restore`` (``plugins/storage/sql_dump.py``) and ``balrog db dump`` /
``balrog db restore``: every table, history included, round-trips exactly; bad dumps are refused
with a message naming the table, row and column, and nothing is written.

Runs on ``memory://`` and SQLite and, when ``BALROG_TEST_POSTGRESQL_URL`` / ``BALROG_TEST_MYSQL_URL``
are set, on PostgreSQL and MySQL/MariaDB (shared databases the tests wipe, as the other storage suites do).
"""
from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from balrog_engine import Dataset, DatasetRejected, StoredRelease, load_plugins
from balrog_plugins.storage import sql, sql_dump
from tests.storage.databases import backend_urls, empty

SHARED = Path("/work/shared")
REAL_RELEASES = SHARED / "conformance" / "firefox-real-54-to-56-and-100.json"

FIREFOX = "Firefox-54.0.1-build1"
HOTFIX = "hotfix-bug-1548973@mozilla.org-1.1.4"
GONE = "Firefox-56.0-build1"
UPTAKE = {"product": "Firefox", "channel": "release", "target": 60}
HALT = {"metric": "crash_rate", "threshold": 0.05}
CONFIG = {"allowlisted_domains": {"download.mozilla.org": ["Firefox"]}, "special_force_hosts": ["http://a.example"]}


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def registry():
    return load_plugins(extra=[sql], entry_points=False)


class Databases:
    """Opens empty databases of one backend. ``memory://`` and SQLite give a new database per
    ``open()``; a server has one shared database, so opening another wipes it (a storage opened
    before must not be used afterwards)."""

    def __init__(self, url: str, registry, tmp_path: Path):
        self.url, self.registry, self.tmp_path = url, registry, tmp_path
        self.server = not url.startswith(("memory:", "sqlite:"))
        self.opened = []

    def open(self, name: str):
        url = self.url.format(tmp=self.tmp_path, name=name)
        if self.server:
            for storage in self.opened:
                storage.close()
        storage = self.registry.storage_for(url)
        if self.server:
            empty(storage)
        self.opened.append(storage)
        return storage

    def close(self) -> None:
        for storage in self.opened:
            storage.close()
        if self.server:
            with_storage = self.registry.storage_for(self.url)
            empty(with_storage)  # leave the shared database empty for the other suites
            with_storage.close()


@pytest.fixture(params=backend_urls(sqlite="sqlite:///{tmp}/{name}.db"))
def databases(request, registry, tmp_path):
    databases = Databases(request.param, registry, tmp_path)
    yield databases
    databases.close()


@pytest.fixture(scope="module")
def blobs() -> dict[str, dict]:
    if not REAL_RELEASES.exists():
        pytest.skip(f"{REAL_RELEASES} is not available")
    return {release["name"]: release["data"] for release in json.loads(REAL_RELEASES.read_text())["releases"]}


def changed(blob: dict) -> dict:
    """``blob`` with a new display version and one platform less."""
    blob = copy.deepcopy(blob)
    blob["displayVersion"] = "54.0.1 (changed)"
    del blob["platforms"][sorted(blob["platforms"])[-1]]
    return blob


def rule(**values) -> dict:
    return {"priority": 100, "backgroundRate": 100, "update_type": "minor", "product": "Firefox", **values}


def populate(storage, blobs: dict[str, dict]) -> None:
    """Real content in every kind of table, written through the storage's own API: a load, then
    edits with history (updates, deletions, placeholders, tombstones, JSON and binary columns)."""
    storage.replace_all(Dataset(
        rules=[rule(rule_id=1, alias="firefox-release", mapping=FIREFOX, channel="release", jaws=True, mig64=False,
                    comment="naïve — ✓ ünïcode", data_version=4),
               rule(rule_id=7, priority=50, update_type="major", channel="beta*")],
        releases=[StoredRelease(HOTFIX, "SystemAddons", blobs[HOTFIX])],
        pins=[{"product": "Firefox", "channel": "release", "version": "54.", "mapping": FIREFOX}],
        emergency_shutoffs=[{"product": "Firefox", "channel": "nightly", "comment": "broken build"}],
        config=CONFIG,
    ))
    with storage.session("alice") as s:
        key = s.insert("rules", rule(priority=90, mapping=FIREFOX, channel="esr", osVersion="Windows_NT 10.0"))
        assert key == {"rule_id": 8}
        s.update("rules", key, {"priority": 5}, 1)
        s.delete("rules", {"rule_id": 7}, 1)

        s.insert("releases", {"name": FIREFOX, "product": "Firefox", "read_only": False, "data": blobs[FIREFOX]})
        s.update("releases", {"name": FIREFOX}, {"data": changed(blobs[FIREFOX])}, 1)
        s.update("releases", {"name": FIREFOX}, {"read_only": True}, 2)
        s.insert("releases", {"name": GONE, "product": "Firefox", "read_only": False, "data": blobs[GONE]})
        s.delete("releases", {"name": GONE}, 1)

        s.insert("permissions", {"permission": "admin", "username": "a@x", "options": None})
        s.insert("permissions", {"permission": "release", "username": "b@x",
                                 "options": {"products": ["Firefox"], "actions": ["modify"]}})
        s.update("permissions", {"permission": "release", "username": "b@x"},
                 {"options": {"products": ["Firefox", "Thunderbird"]}}, 1)
        s.insert("user_roles", {"username": "b@x", "role": "relman"})
        s.insert("product_req_signoffs", {"product": "Firefox", "channel": "release", "role": "relman",
                                          "signoffs_required": 1})
        s.insert("emergency_shutoffs", {"product": "Thunderbird", "channel": "release", "comment": None})

        sc = s.insert("rules_scheduled_changes", {
            "scheduled_by": "alice", "complete": False, "change_type": "update", "base_rule_id": 1,
            "base_priority": 7, "base_backgroundRate": 100, "base_update_type": "minor", "base_product": "Firefox",
            "base_mapping": FIREFOX, "base_jaws": True, "base_data_version": 4})
        s.insert("rules_scheduled_changes_conditions", {"sc_id": sc["sc_id"], "when": 1893456000000,
                                                        "conditions": {"uptake": UPTAKE}})
        s.insert("rules_scheduled_changes_signoffs", {"sc_id": sc["sc_id"], "username": "b@x", "role": "relman"})
        s.update("rules_scheduled_changes", sc, {"base_priority": 8}, 1)
        s.update("rules_scheduled_changes_conditions", sc, {"conditions": {"uptake": UPTAKE, "error_rate": HALT}}, 1)
        # the newest change, cancelled: only its history remembers its id
        gone = s.insert("rules_scheduled_changes", {"scheduled_by": "alice", "complete": False,
                                                    "change_type": "delete", "base_rule_id": 8, "base_data_version": 2})
        s.insert("rules_scheduled_changes_conditions", {**gone, "conditions": {"error_rate": HALT}})
        s.delete("rules_scheduled_changes_conditions", gone, 1)
        s.delete("rules_scheduled_changes", gone, 1)
        s.insert("releases_scheduled_changes", {
            "scheduled_by": "alice", "complete": False, "change_type": "update", "base_name": FIREFOX,
            "base_product": "Firefox", "base_read_only": False, "base_data": blobs[FIREFOX], "base_data_version": 3})
        s.insert("permissions_scheduled_changes", {
            "scheduled_by": "alice", "complete": True, "change_type": "insert", "base_permission": "rule",
            "base_username": "c@x", "base_options": {"products": ["Firefox"]}})


def max_id(dump: dict, table: str, column: str) -> int:
    return max(row[column] for row in dump["tables"][table])


# --- round trip -------------------------------------------------------------------------------------
def test_dump_round_trips_exactly(databases, blobs):
    source = databases.open("source")
    populate(source, blobs)
    first = source.dump()
    assert source.dump() == first  # deterministic
    rule_history = source.rule_history(8)
    rules = source.rules()
    with source.session() as s:
        sc_before = s.get("rules_scheduled_changes", {"sc_id": 1})

    fresh = databases.open("fresh")
    fresh.restore(first)
    second = fresh.dump()
    assert second == first
    assert json.dumps(second) == json.dumps(first)  # key order too

    assert fresh.rules() == rules
    assert fresh.rule_history(8) == rule_history
    assert fresh.settings() == CONFIG
    with fresh.session() as s:
        assert s.version("releases", {"name": FIREFOX}, 1)["data"] == blobs[FIREFOX]
        assert json.dumps(s.version("releases", {"name": FIREFOX}, 2)["data"]) == json.dumps(changed(blobs[FIREFOX]))
        assert s.get("releases", {"name": FIREFOX})["read_only"] is True
        assert s.get("releases", {"name": GONE}) is None
        assert [change.kind for change in s.changes("releases", {"name": GONE})] == ["delete", "insert"]
        assert s.version("permissions", {"permission": "release", "username": "b@x"}, 1)["options"] == {
            "products": ["Firefox"], "actions": ["modify"]}
        assert s.get("rules_scheduled_changes", {"sc_id": 1}) == sc_before
        assert s.get("rules_scheduled_changes_conditions", {"sc_id": 1})["conditions"] == \
            {"uptake": UPTAKE, "error_rate": HALT}
        assert s.version("rules_scheduled_changes_conditions", {"sc_id": 1}, 1)["conditions"] == {"uptake": UPTAKE}
        assert s.get("releases_scheduled_changes", {"sc_id": 1})["base_data"] == blobs[FIREFOX]

    # Ids generated after a restore come after the restored ones, on every backend.
    with fresh.session("bob") as s:
        key = s.insert("rules", rule(priority=1, channel="aurora"))
        assert key["rule_id"] > max_id(first, "rules", "rule_id")
        assert s.changes("rules", key)[0].change_id > max_id(first, "rules_history", "change_id")
        s.insert("releases", {"name": "Firefox-100.0-build1", "product": "Firefox", "read_only": False,
                              "data": blobs["Firefox-100.0-build1"]})
        change = s.changes("releases", {"name": "Firefox-100.0-build1"})[0]
        assert change.change_id > max_id(first, "releases_history", "change_id")
        sc = s.insert("rules_scheduled_changes", {"scheduled_by": "bob", "complete": False, "change_type": "delete",
                                                  "base_rule_id": key["rule_id"], "base_data_version": 1})
        assert sc["sc_id"] > max_id(first, "rules_scheduled_changes", "sc_id")
        if fresh.engine.dialect.name in ("sqlite", "postgresql"):
            # not even the id of the cancelled newest change, which only its history remembers (MySQL's
            # AUTO_INCREMENT only moves past the ids restored into the table itself)
            assert sc["sc_id"] > max_id(first, "rules_scheduled_changes_history", "sc_id")
        sc_change = s.changes("rules_scheduled_changes", sc)[0]
        assert sc_change.change_id > max_id(first, "rules_scheduled_changes_history", "change_id")


def test_dump_format(databases, blobs):
    storage = databases.open("source")
    populate(storage, blobs)
    dump = storage.dump()
    assert list(dump) == ["format", "schema_revision", "tables"]
    assert dump["format"] == sql_dump.FORMAT == "balrog-dump/1"
    assert dump["schema_revision"] == sql.SQLStorage.head_revision()
    assert list(dump["tables"]) == [t.name for t in sql.metadata.sorted_tables if t not in sql.SERVICE_TABLES]
    for name, rows in dump["tables"].items():
        table = sql.metadata.tables[name]
        key = [column.name for column in table.primary_key.columns]
        assert all(list(row) == [column.name for column in table.columns] for row in rows), name
        assert [[row[k] for k in key] for row in rows] == sorted([row[k] for k in key] for row in rows), name
    tables = dump["tables"]
    assert [row["name"] for row in tables["releases"]] == [FIREFOX, HOTFIX]
    assert tables["releases"][0]["data"] == changed(blobs[FIREFOX])  # readable JSON, not text
    assert tables["releases"][0]["read_only"] is True
    payloads = [row["payload"] for row in tables["releases_history"] if row["kind"] != "delete"]
    assert payloads and all(base64.b64decode(payload, validate=True) for payload in payloads)
    assert [row["payload"] for row in tables["releases_history"] if row["kind"] == "delete"] == [None]
    assert tables["rules"][0]["jaws"] is True and tables["rules"][0]["mig64"] is False
    assert tables["rules"][0]["comment"] == "naïve — ✓ ünïcode"
    assert [row["options"] for row in tables["permissions_history"]] == [  # placeholder, version 1, ...
        None, None, None, {"products": ["Firefox"], "actions": ["modify"]}, {"products": ["Firefox", "Thunderbird"]}]
    assert tables["releases_scheduled_changes"][0]["base_data"] == blobs[FIREFOX]
    assert tables["permissions_scheduled_changes"][0]["base_options"] == {"products": ["Firefox"]}
    assert tables["rules_scheduled_changes_conditions"][0]["conditions"] == {"uptake": UPTAKE, "error_rate": HALT}
    assert [row["conditions"] for row in tables["rules_scheduled_changes_conditions_history"]] == [
        None, {"uptake": UPTAKE}, {"uptake": UPTAKE, "error_rate": HALT}, None, {"error_rate": HALT}, None]
    assert [row["conditions"] for row in tables["releases_scheduled_changes_conditions"]] == []
    assert {row["key"]: row["value"] for row in tables["settings"]} == CONFIG
    assert "change_counter" not in tables


def test_restore_replaces_everything(databases, blobs):
    storage = databases.open("source")
    populate(storage, blobs)
    dump = storage.dump()
    with storage.session("carol") as s:
        s.insert("rules", rule(priority=3))
        s.delete("releases", {"name": HOTFIX}, 1)
        s.insert("user_roles", {"username": "z@x", "role": "qa"})
    storage.replace_all(Dataset(rules=[rule(rule_id=99)]))
    counter = storage.change_counter()

    storage.restore(dump)
    assert storage.dump() == dump
    assert storage.change_counter() != counter  # servers notice the restore
    with storage.session("carol") as s:
        assert s.insert("rules", rule(priority=3))["rule_id"] > max_id(dump, "rules", "rule_id")


# --- refusals ---------------------------------------------------------------------------------------
def _set(path, value):
    def mutate(dump):
        *parents, last = path
        target = dump
        for step in parents:
            target = target[step]
        target[last] = value
    return mutate


def _delete(path):
    def mutate(dump):
        *parents, last = path
        target = dump
        for step in parents:
            target = target[step]
        del target[last]
    return mutate


def _duplicate_first_release(dump):
    dump["tables"]["releases"].append(dict(dump["tables"]["releases"][0]))


REFUSALS = [
    pytest.param(_set(["format"], "balrog-dump/2"), "format: expected 'balrog-dump/1', got 'balrog-dump/2'",
                 id="wrong-format"),
    pytest.param(_delete(["format"]), "format: expected 'balrog-dump/1', got missing", id="no-format"),
    pytest.param(_set(["schema_revision"], "0001"), "schema_revision: the dump is of schema revision '0001'",
                 id="old-revision"),
    pytest.param(_set(["tables", "rulez"], []), "tables: unknown table(s): rulez", id="unknown-table"),
    pytest.param(_delete(["tables", "settings"]), "tables: missing table(s): settings", id="missing-table"),
    pytest.param(_set(["tables", "rules", 0, "colour"], "red"), "rules[0] (rule_id=1): unknown column(s): colour",
                 id="unknown-column"),
    pytest.param(_delete(["tables", "releases", 1, "data_version"]),
                 f"releases[1] (name={HOTFIX!r}): data_version: missing", id="missing-column"),
    pytest.param(_set(["tables", "rules", 1, "priority"], "90"),
                 "rules[1] (rule_id=8): priority: expected an integer, got a string '90'", id="string-for-int"),
    pytest.param(_set(["tables", "rules", 0, "priority"], 2**31),
                 "rules[0] (rule_id=1): priority: 2147483648 is outside the column's range", id="int-range"),
    pytest.param(_set(["tables", "rules", 0, "jaws"], 1), "rules[0] (rule_id=1): jaws: expected true or false",
                 id="int-for-bool"),
    pytest.param(_set(["tables", "releases", 0, "product"], 5),
                 f"releases[0] (name={FIREFOX!r}): product: expected a string, got an integer 5", id="int-for-string"),
    pytest.param(_set(["tables", "emergency_shutoffs", 0, "comment"], "x" * 501),
                 "emergency_shutoffs[0] (product='Firefox', channel='nightly'): comment: 501 characters long, "
                 "more than the 500 the column holds", id="too-long"),
    pytest.param(_set(["tables", "releases", 0, "name"], "R" * 101),
                 f"releases[0] (name={'R' * 101!r}): name: 101 characters long", id="key-too-long"),
    pytest.param(_set(["tables", "releases_history", 0, "payload"], "not base64!"),
                 "releases_history[0] (change_id=1): payload: not valid base64", id="bad-base64"),
    pytest.param(_set(["tables", "releases_history", 0, "changed_by"], None),
                 "releases_history[0] (change_id=1): changed_by: null, but the column is not nullable",
                 id="null"),
    pytest.param(_duplicate_first_release, f"releases[2] (name={FIREFOX!r}): name: duplicate of releases[0]",
                 id="duplicate-key"),
    pytest.param(_set(["tables", "rules", 1, "alias"], "firefox-release"),
                 "rules[1] (rule_id=8): alias: duplicate of rules[0]", id="duplicate-alias"),
    pytest.param(_set(["tables", "rules", 0], [1, 2]), "rules[0]: expected an object (a row), got a list",
                 id="row-not-object"),
    pytest.param(_set(["tables"], []), "tables: expected an object of table name -> rows, got a list",
                 id="tables-not-object"),
]


@pytest.mark.parametrize("mutate, message", REFUSALS)
def test_bad_dumps_are_refused_and_nothing_is_written(databases, blobs, mutate, message):
    storage = databases.open("target")
    populate(storage, blobs)
    before = storage.dump()
    counter = storage.change_counter()

    bad = copy.deepcopy(before)
    mutate(bad)
    with pytest.raises(DatasetRejected) as refused:
        storage.restore(bad)
    assert str(refused.value).startswith("dump rejected: ")
    assert message in str(refused.value)
    assert storage.dump() == before
    assert storage.change_counter() == counter


def test_parse_returns_rows_as_stored(blobs):
    storage = load_plugins(extra=[sql], entry_points=False).storage_for("memory://")
    try:
        populate(storage, blobs)
        parsed = dict((table.name, rows) for table, rows in sql_dump.parse(storage.dump()))
    finally:
        storage.close()
    assert parsed["releases"][0]["data"] == json.dumps(changed(blobs[FIREFOX]), separators=(",", ":"))
    assert isinstance(parsed["releases_history"][0]["payload"], bytes)
    assert parsed["permissions"][0]["options"] is None
    assert parsed["settings"][0]["value"] == json.dumps(CONFIG["allowlisted_domains"], separators=(",", ":"))


# --- the CLI ------------------------------------------------------------------------------------------
def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "balrog_app.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_cli_dump_and_restore(tmp_path, registry, blobs):
    source_url, target_url = f"sqlite:///{tmp_path}/source.db", f"sqlite:///{tmp_path}/target.db"
    source = registry.storage_for(source_url)
    try:
        populate(source, blobs)
        expected = source.dump()
    finally:
        source.close()

    dump_file = tmp_path / "dump.json"
    dumped = run_cli("db", "dump", "--database", source_url, "-o", str(dump_file))
    assert dumped.returncode == 0, dumped.stderr
    assert json.loads(dump_file.read_text(encoding="utf-8")) == expected
    to_stdout = run_cli("db", "dump", "--db", source_url)
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout == dump_file.read_text(encoding="utf-8")  # deterministic

    # A first use migrates (and logs that); the dump on standard output stays clean JSON.
    empty = run_cli("db", "dump", "--db", f"sqlite:///{tmp_path}/empty.db")
    assert empty.returncode == 0, empty.stderr
    assert json.loads(empty.stdout)["tables"]["rules"] == []

    restored = run_cli("db", "restore", str(dump_file), "--database", target_url)
    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stdout
    target = registry.storage_for(target_url)
    try:
        assert target.dump() == expected
    finally:
        target.close()


def _write(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_cli_restore_refuses_bad_dumps_and_writes_nothing(tmp_path, registry, blobs):
    target_url = f"sqlite:///{tmp_path}/target.db"
    target = registry.storage_for(target_url)
    try:
        populate(target, blobs)
        before = target.dump()
    finally:
        target.close()

    bad_blob = copy.deepcopy(before)
    bad_blob["tables"]["releases"][0]["data"]["appVersion"] = 5
    bad_base = copy.deepcopy(before)
    bad_base["tables"]["releases_scheduled_changes"][0]["base_data"]["platforms"] = "none"
    unknown_type = copy.deepcopy(before)
    unknown_type["tables"]["releases"][1]["data"]["schema_version"] = 77
    bad_column = copy.deepcopy(before)
    bad_column["tables"]["rules"][0]["priority"] = "high"
    cases = [
        (_write(tmp_path / "bad-blob.json", bad_blob),
         f"refused {tmp_path / 'bad-blob.json'}: releases[0] (name={FIREFOX!r}): data.appVersion: Not a valid string."),
        (_write(tmp_path / "bad-base.json", bad_base),
         "releases_scheduled_changes[0] (sc_id=1): base_data.platforms:"),
        (_write(tmp_path / "unknown-type.json", unknown_type),
         f"releases[1] (name={HOTFIX!r}): data.schema_version: no blob type for 77"),
        (_write(tmp_path / "bad-column.json", bad_column),
         "dump rejected: rules[0] (rule_id=1): priority: expected an integer, got a string 'high'"),
    ]
    not_json = tmp_path / "not-json.json"
    not_json.write_text("{\"format\": ", encoding="utf-8")
    cases.append((not_json, f"refused {not_json}: cannot read JSON"))

    for path, message in cases:
        result = run_cli("db", "restore", str(path), "--db", target_url)
        assert result.returncode == 2, (path.name, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert message in result.stderr, result.stderr
        assert str(path) in result.stderr

    target = registry.storage_for(target_url)
    try:
        assert target.dump() == before
    finally:
        target.close()
