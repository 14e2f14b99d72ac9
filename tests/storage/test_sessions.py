"""The storage's write API (``storage.session(user)``) on every backend: versioned writes with
history in the same transaction, exact past versions, revert, merges of stale writes, the
blob types' conflict rules, and nothing partial when a write fails."""
from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import pytest

from balrog_engine import AlreadyExists, Invalid, NotFound, StaleVersion, VersionedTable, release_conflict_rule
from balrog_plugins.blob_types.apprelease import AppReleaseBlob
from balrog_plugins.storage.sql_schema import VERSIONED

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "dataset.json"

RULE = {"priority": 100, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
        "channel": "release", "mapping": "Firefox-60.0-build1"}


def release_blob(extra_locales: int = 0) -> dict:
    """The largest app-release blob of the benchmark dataset, optionally with more locales."""
    doc = json.loads(BENCH.read_text())
    data = max((r["data"] for r in doc["releases"]), key=lambda d: len(json.dumps(d)))
    platform = locales_platform(data)
    locales = data["platforms"][platform]["locales"]
    template = next(iter(locales.values()))
    for i in range(extra_locales):
        locales.setdefault(f"x{i:02d}", copy.deepcopy(template))
    return data


def locales_platform(data: dict) -> str:
    return next(name for name, p in data["platforms"].items() if isinstance(p, dict) and p.get("locales"))


def with_build(data: dict, locale: str, build_id: str, field: str = "buildID") -> dict:
    changed = copy.deepcopy(data)
    changed["platforms"][locales_platform(data)]["locales"][locale][field] = build_id
    return changed


# --- rules: the reference's history layout ----------------------------------------------------------
def test_rule_lifecycle_and_its_history(storage):
    with storage.session("alice") as s:
        key = s.insert("rules", RULE)
    assert key == {"rule_id": 1}
    with storage.session("bob") as s:
        assert s.update("rules", key, {"priority": 90}, 1) == 2
    with storage.session() as s:
        rule = s.get("rules", key)
        assert rule["priority"] == 90 and rule["channel"] == "release" and rule["data_version"] == 2
        assert [(c.change_id, c.kind, c.data_version, c.changed_by) for c in s.changes("rules", key)] == [
            (3, "update", 2, "bob"), (2, "insert", 1, "alice"), (1, "placeholder", None, "alice")]
        assert s.version("rules", key, 1)["priority"] == 100
        rows = s.history("rules", {"rule_id": 1})
        assert [(r["change_id"], r["priority"], r["data_version"]) for r in rows] == [(3, 90, 2), (2, 100, 1)]
        assert s.history_count("rules", {"rule_id": 1}, versions_only=False) == 3
    assert storage.rules()[0]["priority"] == 90  # the snapshot side sees it
    with storage.session("carol") as s:
        s.delete("rules", key, 2)
    with storage.session() as s:
        assert s.get("rules", key) is None
        assert s.version("rules", key, 1) is None  # a deleted object has no current life
        tombstone = s.history("rules", versions_only=False)[0]
        assert (tombstone["change_id"], tombstone["data_version"], tombstone["priority"]) == (4, None, None)
        assert tombstone["changed_by"] == "carol"


def test_history_filters(storage):
    with storage.session("alice") as s:
        first = s.insert("rules", RULE)
        s.insert("rules", {**RULE, "product": "Thunderbird"})
    with storage.session("bob") as s:
        s.update("rules", first, {"comment": "x"}, 1)
    with storage.session() as s:
        assert [r["change_id"] for r in s.history("rules", {"changed_by": "alice"})] == [4, 2]
        assert [r["change_id"] for r in s.history("rules", {"product": "Firefox"})] == [5, 2]
        assert s.history_count("rules", {"product": "Firefox"}) == 2
        everything = s.history("rules")
        assert [r["change_id"] for r in s.history("rules", limit=1, offset=1)] == [everything[1]["change_id"]]
        last = everything[0]["timestamp"]
        assert {r["change_id"] for r in s.history("rules", since=last, until=last)} >= {5}


def test_stale_rule_writes_merge_or_conflict(storage):
    with storage.session("a") as s:
        key = s.insert("rules", RULE)
        s.update("rules", key, {"priority": 50}, 1)
    with storage.session("b") as s:  # read version 1, changes another column: merged
        assert s.update("rules", key, {"comment": "from b"}, 1) == 3
    with storage.session() as s:
        rule = s.get("rules", key)
        assert (rule["priority"], rule["comment"], rule["data_version"]) == (50, "from b", 3)
    with pytest.raises(StaleVersion) as refused, storage.session("c") as s:
        s.update("rules", key, {"priority": 60}, 1)  # the same column, changed differently since
    assert refused.value.conflicts == ["priority"] and refused.value.current == 3
    with pytest.raises(StaleVersion), storage.session("c") as s:
        s.update("rules", key, {"comment": "strict"}, 2, merge=False)
    with pytest.raises(StaleVersion), storage.session("c") as s:
        s.update("rules", key, {"comment": "future"}, 9)
    with storage.session() as s:
        assert s.get("rules", key)["data_version"] == 3


def test_revert_writes_a_new_version(storage):
    with storage.session("a") as s:
        key = s.insert("rules", RULE)
        other = s.insert("rules", {**RULE, "priority": 1})
        s.update("rules", key, {"priority": 5, "mapping": "b"}, 1)
    with storage.session() as s:
        first = next(c for c in s.changes("rules", key) if c.data_version == 1)
        foreign = next(c for c in s.changes("rules", other) if c.data_version == 1)
    with storage.session("reverter") as s:
        assert s.revert("rules", key, first.change_id) == 3
        with pytest.raises(NotFound):
            s.revert("rules", key, foreign.change_id)  # a change of another rule
    with storage.session() as s:
        rule = s.get("rules", key)
        assert (rule["priority"], rule["mapping"], rule["data_version"]) == (100, RULE["mapping"], 3)
        assert s.changes("rules", key)[0].changed_by == "reverter"


# --- releases: compact history, merges, the blob types' conflict rules -----------------------------
def test_release_versions_read_back_exactly(storage):
    blob = release_blob()
    locale = sorted(blob["platforms"][locales_platform(blob)]["locales"])[0]
    versions = [blob] + [with_build(blob, locale, f"2030000000000{i}") for i in range(1, 4)]
    with storage.session("a") as s:
        key = s.insert("releases", {"name": blob["name"], "product": "Firefox", "read_only": False, "data": blob})
        for number, version in enumerate(versions[1:], 1):
            s.update("releases", key, {"data": version}, number)
        s.update("releases", key, {"read_only": True}, 4)
    with storage.session() as s:
        for number, version in enumerate(versions, 1):
            assert json.dumps(s.version("releases", key, number)["data"]) == json.dumps(version)
        current = s.get("releases", key)
        assert current["read_only"] is True and current["data_version"] == 5 and current["data"] == versions[-1]
    assert storage.releases([blob["name"]])[blob["name"]].data == versions[-1]


def test_new_releases_are_listed_in_creation_order(storage):
    with storage.session("a") as s:
        for name in ("zz", "aa", "mm"):
            s.insert("releases", {"name": name, "product": "P", "read_only": False, "data": {"name": name}})
    assert [r["name"] for r in storage.release_summaries()] == ["zz", "aa", "mm"]


def test_blob_type_refines_what_conflicts(storage):
    """Two writers change different fields of one locale: the JSON paths differ, so the default
    rules merge them; the app-release type makes a locale atomic, so its rule refuses."""
    blob = release_blob()
    locale = sorted(blob["platforms"][locales_platform(blob)]["locales"])[0]
    ours = with_build(blob, locale, "20300000000001")  # one writer changes the locale's buildID
    theirs = with_build(blob, locale, "a build that never was", field="comment")  # another adds a field
    with storage.session("a") as s:
        for name in ("merged", "refused"):
            s.insert("releases", {"name": name, "product": "Firefox", "read_only": False, "data": blob})
            s.update("releases", {"name": name}, {"data": theirs}, 1)
    with storage.session("b") as s:
        assert s.update("releases", {"name": "merged"}, {"data": ours}, 1) == 3
    rule = release_conflict_rule(AppReleaseBlob)
    with pytest.raises(StaleVersion) as refused, storage.session("b") as s:
        s.update("releases", {"name": "refused"}, {"data": ours}, 1, conflict=rule)
    assert refused.value.conflicts == [f"data.platforms.{locales_platform(blob)}.locales.{locale}"]


# --- transactions ---------------------------------------------------------------------------------------
def test_a_failed_session_leaves_nothing(storage):
    with storage.session("a") as s:
        key = s.insert("rules", RULE)
    counter = storage.change_counter()
    with pytest.raises(RuntimeError), storage.session("b") as s:
        s.update("rules", key, {"priority": 1}, 1)
        s.insert("rules", RULE)
        raise RuntimeError("the request failed after two writes")
    with storage.session() as s:
        assert s.get("rules", key)["data_version"] == 1 and s.count("rules") == 1
        assert s.history_count("rules", versions_only=False) == 2
    assert storage.change_counter() == counter


def test_a_write_killed_inside_the_history_insert_leaves_nothing(storage, monkeypatch):
    with storage.session("a") as s:
        key = s.insert("releases", {"name": "r", "product": "P", "read_only": False, "data": {"a": 1}})

    def killed(*args, **kwargs):
        raise RuntimeError("killed between the row and its history record")

    monkeypatch.setattr(VersionedTable, "_record", killed)
    with pytest.raises(RuntimeError, match="killed"), storage.session("b") as s:
        s.update("releases", key, {"data": {"a": 2}}, 1)
    monkeypatch.undo()
    with storage.session() as s:
        assert s.get("releases", key)["data"] == {"a": 1}
        assert [c.data_version for c in s.changes("releases", key)] == [1]


def test_refused_writes_keep_the_session_usable(storage):
    with storage.session("a") as s:
        s.insert("rules", {**RULE, "alias": "fx"})
        with pytest.raises(AlreadyExists):
            s.insert("rules", {**RULE, "alias": "fx"})  # the unique alias
        s.insert("releases", {"name": "r", "product": "P", "read_only": False, "data": {}})
        with pytest.raises(AlreadyExists):
            s.insert("releases", {"name": "r", "product": "P", "read_only": False, "data": {}})
        with pytest.raises(Invalid):
            s.insert("rules", {**RULE, "channel": "x" * 76})
        with pytest.raises(NotFound):
            s.update("rules", {"rule_id": 99}, {"priority": 1}, 1)
        s.insert("rules", {**RULE, "alias": "after"})
    with storage.session() as s:
        assert [r["alias"] for r in s.rows("rules", order_by=["rule_id"])] == ["fx", "after"]
        assert s.count("releases") == 1


def test_reading_sessions_do_not_write(storage):
    with storage.session() as s, pytest.raises(RuntimeError, match="only reads"):
        s.insert("rules", RULE)


@pytest.mark.parametrize("table", sorted(VERSIONED))
def test_every_versioned_table_records_history(storage, table):
    """Insert, update, delete on every declared table: data_version 1, 2, then a tombstone."""
    versioned = VERSIONED[table]
    columns = {c.name: c for c in versioned.table.columns}
    row = {}
    for name in versioned.key + versioned.tracked:
        column = columns[name]
        if name in versioned.key and versioned.generated_key:
            continue
        python = column.type.python_type if not hasattr(column.type, "impl") else str
        row[name] = {int: 1, str: "v", bool: False}.get(python, "v")
    for name in versioned.json_columns:
        row[name] = {"k": [1, "x"]}
    change = {versioned.tracked[0]: row[versioned.tracked[0]] if versioned.tracked[0] in versioned.json_columns
              else {int: 2, str: "w", bool: True}.get(type(row[versioned.tracked[0]]), "w")} if versioned.tracked else {}
    with storage.session("a") as s:
        key = s.insert(table, row)
        if change:
            assert s.update(table, key, change, 1) == 2
        s.delete(table, key, 2 if change else 1)
    with storage.session() as s:
        kinds = [c.kind for c in s.changes(table, key)]
    expected = ["delete"] + (["update"] if change else []) + ["insert"]
    if not versioned.compact:
        expected.append("placeholder")
    assert kinds == expected


# --- concurrency ---------------------------------------------------------------------------------------
def race(open_storage, name: str, documents: list[dict]) -> list:
    """Every document written as an update of version 1 of release ``name``, all at once, each
    writer with its own storage object (as separate processes would)."""
    writers = [open_storage() for _ in documents]
    barrier = threading.Barrier(len(documents))
    outcomes: list = [None] * len(documents)

    def run(i: int) -> None:
        barrier.wait()
        try:
            with writers[i].session(f"writer{i}") as s:
                outcomes[i] = s.update("releases", {"name": name}, {"data": documents[i]}, 1,
                                       conflict=release_conflict_rule(AppReleaseBlob))
        except StaleVersion as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(documents))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def test_fifty_concurrent_locale_writers_all_succeed_first_time(storage, open_storage):
    base = release_blob(extra_locales=50)
    locales = sorted(base["platforms"][locales_platform(base)]["locales"])[:50]
    with storage.session("automation") as s:
        s.insert("releases", {"name": "r", "product": "Firefox", "read_only": False, "data": base})
    if storage.url.startswith("memory:"):  # one in-memory database: every writer must share it
        open_storage = lambda: storage  # noqa: E731
    outcomes = race(open_storage, "r", [with_build(base, locale, f"2030{i:010d}") for i, locale in enumerate(locales)])
    assert sorted(outcomes) == list(range(2, 52)), outcomes
    with storage.session() as s:
        final = s.get("releases", {"name": "r"})
    assert final["data_version"] == 51
    for i, locale in enumerate(locales):
        assert final["data"]["platforms"][locales_platform(base)]["locales"][locale]["buildID"] == f"2030{i:010d}"


def test_two_writers_on_one_locale_exactly_one_is_refused(storage, open_storage):
    base = release_blob()
    locale = sorted(base["platforms"][locales_platform(base)]["locales"])[0]
    with storage.session("automation") as s:
        s.insert("releases", {"name": "r", "product": "Firefox", "read_only": False, "data": base})
    if storage.url.startswith("memory:"):
        open_storage = lambda: storage  # noqa: E731
    outcomes = race(open_storage, "r", [with_build(base, locale, "20300000000001"),
                                        with_build(base, locale, "20300000000002")])
    refused = [o for o in outcomes if isinstance(o, StaleVersion)]
    assert len(refused) == 1 and 2 in outcomes
    assert refused[0].conflicts == [f"data.platforms.{locales_platform(base)}.locales.{locale}"]


def test_writes_can_be_attributed_to_another_user(storage):
    with storage.session("balrogagent") as s:
        key = s.insert("rules", RULE)
        with s.acting_as("scheduler@example.com"):
            s.update("rules", key, {"priority": 1}, 1)
        s.update("rules", key, {"priority": 2}, 2)
    with storage.session() as s:
        assert [c.changed_by for c in s.changes("rules", key)] == [
            "balrogagent", "scheduler@example.com", "balrogagent", "balrogagent"]
