"""History size and concurrent writers for releases, through the storage's write API
(``storage.session(user)``) on a real database: SQLite by default, or any SQL URL.

1. 100 successive single-locale changes to the largest release of ../shared/bench/dataset.json:
   bytes of history stored vs 100 full copies (target <= 2%), and the cost of reading back
   every version exactly (target <= 10 ms each).
2. 50 concurrent writers, each with its own storage object (as separate processes), each
   changing a different locale of one release from the same starting version: how many
   succeed first time (target: all); and two writers changing the same locale differently
   (target: exactly one refused).

    .venv/bin/python bench/history_bench.py [--db URL]

The database's tables are emptied first: do not point it at one you need.
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

from sqlalchemy import select

from balrog_engine import StaleVersion, release_conflict_rule
from balrog_plugins.blob_types.apprelease import AppReleaseBlob
from balrog_plugins.storage.sql import DATA_TABLES, SQLStorage
from balrog_plugins.storage.sql_schema import VERSIONED, releases_history

DATASET = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "dataset.json"
CONFLICTS = release_conflict_rule(AppReleaseBlob)


def largest_release() -> dict:
    doc = json.loads(DATASET.read_text())
    return max((r["data"] for r in doc["releases"]), key=lambda d: len(json.dumps(d)))


def locales_of(data: dict) -> list[tuple[str, str]]:
    return [(p, l) for p, platform in data["platforms"].items() if isinstance(platform, dict)
            for l in platform.get("locales", {})]


def history_size(storage: SQLStorage) -> None:
    data = largest_release()
    key = {"name": "largest"}
    with storage.session("bench") as s:
        s.insert("releases", {**key, "product": "Firefox", "read_only": False, "data": data})
    versions = [copy.deepcopy(data)]
    places = locales_of(data)
    for i in range(100):
        platform, locale = places[i % len(places)]
        data["platforms"][platform]["locales"][locale]["buildID"] = f"2031{i:010d}"
        with storage.session("bench") as s:
            s.update("releases", key, {"data": data}, i + 1, conflict=CONFLICTS)
        versions.append(copy.deepcopy(data))
    full = sum(len(json.dumps(v)) for v in versions[1:])
    with storage.engine.connect() as conn:
        payloads = conn.execute(select(releases_history.c.payload).where(releases_history.c.name == "largest")
                                .order_by(releases_history.c.change_id)).scalars().all()
    changes = sum(len(p) for p in payloads[1:])  # the first record is the release itself
    times, exact = [], True
    with storage.session() as s:
        for number in range(1, 102):
            start = time.perf_counter()
            doc = s.version("releases", key, number)["data"]
            times.append(time.perf_counter() - start)
            exact &= json.dumps(doc) == json.dumps(versions[number - 1])
    print(f"release {data['name']}: {len(json.dumps(versions[0]))} bytes")
    print(f"100 single-locale changes: {changes} bytes of history vs {full} for 100 full copies "
          f"= {changes / full:.2%} (target <= 2%)")
    print(f"read back 101 versions: exact={exact}, median {statistics.median(times) * 1000:.2f} ms, "
          f"max {max(times) * 1000:.2f} ms (target <= 10 ms)")


def race(url: str, shared: SQLStorage, name: str, base: dict, documents: list[dict]) -> list:
    with shared.session("bench") as s:
        s.insert("releases", {"name": name, "product": "Firefox", "read_only": False, "data": base})
    writers = [shared if url.startswith("memory:") else SQLStorage(url) for _ in documents]
    for writer in writers:
        writer.upgrade()  # connect before the start line
    barrier, outcomes = threading.Barrier(len(documents)), [None] * len(documents)

    def run(i):
        barrier.wait()
        try:
            with writers[i].session(f"w{i}") as s:
                outcomes[i] = s.update("releases", {"name": name}, {"data": documents[i]}, 1, conflict=CONFLICTS)
        except StaleVersion as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(documents))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"  ({len(documents)} writers in {time.perf_counter() - start:.2f} s)")
    for writer in writers:
        if writer is not shared:
            writer.close()
    return outcomes


def concurrent_writers(url: str, storage: SQLStorage) -> None:
    base = largest_release()
    platform = next(p for p, v in base["platforms"].items() if isinstance(v, dict) and v.get("locales"))
    template = next(iter(base["platforms"][platform]["locales"].values()))
    for i in range(50):
        base["platforms"][platform]["locales"].setdefault(f"x{i:02d}", copy.deepcopy(template))
    locales = sorted(base["platforms"][platform]["locales"])[:50]

    def changed(locale: str, build: str) -> dict:
        doc = copy.deepcopy(base)
        doc["platforms"][platform]["locales"][locale]["buildID"] = build
        return doc

    outcomes = race(url, storage, "concurrent", base, [changed(l, f"2032{i:010d}") for i, l in enumerate(locales)])
    ok = sum(not isinstance(o, StaleVersion) for o in outcomes)
    with storage.session() as s:
        final = s.get("releases", {"name": "concurrent"})
    kept = sum(final["data"]["platforms"][platform]["locales"][l]["buildID"] == f"2032{i:010d}"
               for i, l in enumerate(locales))
    print(f"50 writers, different locales, same starting version: {ok}/50 succeeded first time (target 50/50); "
          f"final data_version {final['data_version']}, {kept}/50 changes present")
    outcomes = race(url, storage, "same-locale", base,
                    [changed(locales[0], "20330000000001"), changed(locales[0], "20330000000002")])
    refused = [o for o in outcomes if isinstance(o, StaleVersion)]
    print(f"2 writers, same locale, different values: {len(refused)} refused (target exactly 1): "
          f"{refused[0] if refused else ''}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    url = args.db or f"sqlite:///{tempfile.mkdtemp(prefix='balrog-history-')}/history.db"
    storage = SQLStorage(url)
    storage.upgrade()
    with storage._write() as conn:  # start from empty tables
        for table in DATA_TABLES:
            conn.execute(table.delete())
    print(f"database: {storage.engine.dialect.name} ({len(VERSIONED)} versioned tables)")
    history_size(storage)
    concurrent_writers(url, storage)
    storage.close()


if __name__ == "__main__":
    main()
