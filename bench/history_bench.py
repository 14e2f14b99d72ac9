"""History size and concurrent writers for versioned releases (SQLite by default, any SQL URL).

1. 100 successive single-locale changes to the largest release of ../shared/bench/dataset.json:
   bytes of history stored vs 100 full copies (target <= 2%), and the cost of reading back
   versions exactly (target <= 10 ms each).
2. 50 concurrent writers each changing a different locale of one release from the same
   starting version: how many succeed first time (target: all), and two writers changing
   the same locale differently (target: exactly one refused).

    .venv/bin/python bench/history_bench.py [--db URL]
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table

from balrog_engine.versioned import StaleVersion, VersionedTable, history_table_for, json_column_document
from balrog_plugins.storage.sql import BLOB_TEXT, _write_transaction, make_engine

DATASET = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "dataset.json"

metadata = MetaData()
releases = Table("bench_releases", metadata, Column("name", String(100), primary_key=True),
                 Column("data", BLOB_TEXT, nullable=False), Column("data_version", Integer, nullable=False))
RELEASES = VersionedTable(releases, history_table_for(releases, ("name",), metadata), ("name",),
                          *json_column_document("data"))


def largest_release() -> dict:
    doc = json.loads(DATASET.read_text())
    return max((r["data"] for r in doc["releases"]), key=lambda d: len(json.dumps(d)))


def locales_of(data: dict) -> list[tuple[str, str]]:
    return [(p, l) for p, platform in data["platforms"].items() if isinstance(platform, dict)
            for l in platform.get("locales", {})]


def history_size(engine) -> None:
    data = largest_release()
    key = {"name": "largest"}
    with _write_transaction(engine) as conn:
        RELEASES.insert(conn, key, data, "bench")
    versions = [copy.deepcopy(data)]
    places = locales_of(data)
    for i in range(100):
        platform, locale = places[i % len(places)]
        data["platforms"][platform]["locales"][locale]["buildID"] = f"2031{i:010d}"
        with _write_transaction(engine) as conn:
            RELEASES.update(conn, key, data, i + 1, "bench")
        versions.append(copy.deepcopy(data))
    changed = versions[1:]
    full = sum(len(json.dumps(v)) for v in changed)
    with engine.connect() as conn:
        stored = RELEASES.history_bytes(conn, key)
        first = len(RELEASES.codec.record(0, None, versions[0])[1])
        times, exact = [], True
        for number in range(1, 102):
            start = time.perf_counter()
            doc = RELEASES.read(conn, key, number)
            times.append(time.perf_counter() - start)
            exact &= json.dumps(doc) == json.dumps(versions[number - 1])
    change_bytes = stored - first
    print(f"release {data['name']}: {len(json.dumps(versions[0]))} bytes")
    print(f"100 single-locale changes: {change_bytes} bytes of history vs {full} for 100 full copies "
          f"= {change_bytes / full:.2%} (target <= 2%)")
    print(f"read back 101 versions: exact={exact}, median {statistics.median(times) * 1000:.2f} ms, "
          f"max {max(times) * 1000:.2f} ms (target <= 10 ms)")


def concurrent_writers(engine) -> None:
    base = largest_release()
    platform = next(p for p, v in base["platforms"].items() if isinstance(v, dict) and v.get("locales"))
    template = next(iter(base["platforms"][platform]["locales"].values()))
    for i in range(50):
        base["platforms"][platform]["locales"].setdefault(f"x{i:02d}", copy.deepcopy(template))
    locales = sorted(base["platforms"][platform]["locales"])[:50]

    def race(name: str, docs: list[dict]) -> list:
        with _write_transaction(engine) as conn:
            RELEASES.insert(conn, {"name": name}, base, "bench")
        barrier, outcomes = threading.Barrier(len(docs)), [None] * len(docs)

        def run(i):
            barrier.wait()
            try:
                with _write_transaction(engine) as conn:
                    outcomes[i] = RELEASES.update(conn, {"name": name}, docs[i], 1, f"w{i}")
            except StaleVersion as exc:
                outcomes[i] = exc
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(docs))]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"  ({len(docs)} writers in {time.perf_counter() - start:.2f} s)")
        return outcomes

    docs = []
    for i, locale in enumerate(locales):
        doc = copy.deepcopy(base)
        doc["platforms"][platform]["locales"][locale]["buildID"] = f"2032{i:010d}"
        docs.append(doc)
    outcomes = race("concurrent", docs)
    ok = sum(not isinstance(o, StaleVersion) for o in outcomes)
    print(f"50 writers, different locales, same starting version: {ok}/50 succeeded first time (target 50/50)")
    same = []
    for build in ("20330000000001", "20330000000002"):
        doc = copy.deepcopy(base)
        doc["platforms"][platform]["locales"][locales[0]]["buildID"] = build
        same.append(doc)
    outcomes = race("same-locale", same)
    refused = sum(isinstance(o, StaleVersion) for o in outcomes)
    print(f"2 writers, same locale, different values: {refused} refused (target exactly 1)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='balrog-history-')}/history.db"
    engine = make_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    print(f"database: {engine.dialect.name}")
    history_size(engine)
    concurrent_writers(engine)
    metadata.drop_all(engine)


if __name__ == "__main__":
    main()
