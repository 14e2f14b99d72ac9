"""Rendering cost per request by blob size (issue: blob size must not drive per-request cost).

For every release of the benchmark dataset that some URL of ../shared/bench/urls.txt is
served, time the blob's serve check + render + document assembly for those queries, and
compare the largest served blob with the smallest. In-process, no HTTP: this isolates the
blob types' work from the server.

    .venv/bin/python bench/render_bench.py [--dataset PATH] [--urls PATH] [--repeat N]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

from balrog_engine import Engine
from balrog_engine.query import build_update_query, decode_path, match_update_path, parse_query_string
from balrog_engine.responses import xml_document

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "bench"


def queries_by_release(engine: Engine, urls: list[str]):
    grouped = defaultdict(list)
    for url in urls:
        path, _, qs = url.partition("?")
        protocol, fields = match_update_path(decode_path(path).split("/")[2:])
        query = build_update_query(protocol, fields, parse_query_string(qs), "")
        evaluation = engine.evaluate(query)
        if evaluation.release is not None:
            grouped[evaluation.release.name].append((query, evaluation))
    return grouped


def time_render(engine: Engine, pairs, repeat: int) -> float:
    snapshot = engine.snapshot
    start = time.perf_counter()
    for _ in range(repeat):
        for query, evaluation in pairs:
            blob = evaluation.release.blob
            blob.should_serve(query, snapshot)
            xml_document(blob.render_xml(query, evaluation.update_type, snapshot))
    return (time.perf_counter() - start) / (repeat * len(pairs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default=SHARED / "dataset.json")
    parser.add_argument("--urls", default=SHARED / "urls.txt")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--inflate", type=int, default=300, help="extra locales per platform for the size test")
    args = parser.parse_args()
    doc = json.loads(Path(args.dataset).read_text())
    sizes = {r["name"]: len(json.dumps(r["data"])) for r in doc["releases"]}
    engine = Engine.from_dataset(doc, roll=lambda: 0)
    urls = [line.strip() for line in Path(args.urls).read_text().splitlines() if line.strip()]
    grouped = queries_by_release(engine, urls)
    rows = []
    for name, pairs in grouped.items():
        rows.append((sizes[name], name, len(pairs), time_render(engine, pairs, args.repeat) * 1e6))
    rows.sort()
    print(f"{'blob bytes':>10}  {'requests':>8}  {'µs/request':>10}  release")
    for size, name, count, micros in rows:
        print(f"{size:>10}  {count:>8}  {micros:>10.1f}  {name}")
    app_rows = [r for r in rows if engine.snapshot.release(r[1]).blob.__class__.__module__.endswith("apprelease")]
    smallest, largest = app_rows[0], app_rows[-1]
    ratio = largest[3] / smallest[3]
    print(f"\nlargest app-release blob {largest[1]} ({largest[0]} B): {largest[3]:.1f} µs/request")
    print(f"smallest app-release blob {smallest[1]} ({smallest[0]} B): {smallest[3]:.1f} µs/request")
    print(f"ratio largest/smallest: {ratio:.2f} (target <= 2.0) -> {'OK' if ratio <= 2.0 else 'MISSED'}")
    print(f"median over all served blobs: {statistics.median(r[3] for r in rows):.1f} µs/request")

    # Same queries against the largest blob inflated with many more locales: only blob size changes.
    name = largest[1]
    inflated = json.loads(json.dumps(doc))
    release = next(r for r in inflated["releases"] if r["name"] == name)
    for platform in release["data"]["platforms"].values():
        locales = platform.get("locales") if isinstance(platform, dict) else None
        if locales:
            template = next(iter(locales.values()))
            for i in range(args.inflate):
                locales[f"zz-{i:04d}"] = template
    big_engine = Engine.from_dataset(inflated, roll=lambda: 0)
    big_size = len(json.dumps(release["data"]))
    pairs = queries_by_release(big_engine, urls)[name]
    big = time_render(big_engine, pairs, args.repeat) * 1e6
    base = time_render(engine, queries_by_release(engine, urls)[name], args.repeat) * 1e6
    print(f"\n{name} as stored ({sizes[name]} B): {base:.1f} µs/request; inflated with {args.inflate} locales per "
          f"platform ({big_size} B): {big:.1f} µs/request; ratio {big / base:.2f} (target <= 2.0) -> "
          f"{'OK' if big / base <= 2.0 else 'MISSED'}")


if __name__ == "__main__":
    main()
