"""The admin API's list endpoints on a large database: how long the whole lists and their pages
(``?page=``/``?limit=``, app/admin/requests.py ``list_page``) take.

A SQLite database (a temporary file, or ``--db URL``) is loaded in one go, without the API:
5,000 v1 releases and 2,000 rules through ``storage.replace_all``, then 5,000 v2 releases
(``--v2``; a base row and two locales each), a few signoff requirements and pending scheduled changes through
``dump``/``restore``. Three quarters of the rules map v1 releases, the others v2 ones. Then each
request is sent ``--repeat`` times to the admin app in process (falcon's test client: no network)
and the median and best times are printed.

    .venv/bin/python bench/admin_list_bench.py [--db URL] [--repeat N] [--v2 N]

The database's contents are replaced: do not point ``--db`` at one you need.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from falcon import testing

from balrog_app.admin.app import AdminContext, create_admin_app
from balrog_app.admin.auth import StaticTokens
from balrog_engine import Dataset, StoredRelease, load_plugins

RELEASES = 5_000
V2_RELEASES = 5_000  # default of --v2
RULES = 2_000
ADMIN = "admin@example.com"
TOKEN = "t-admin"
REQUESTS = [
    "/releases", "/releases?names_only=1", "/releases?page=20&limit=100", "/releases?product=Thunderbird",
    "/rules", "/rules?page=5&limit=100",
    "/v2/releases", "/v2/releases?names_only=1", "/v2/releases?page=20&limit=100",
    "/users", "/emergency_shutoff", "/required_signoffs/product",
]


def v1_release(i: int) -> StoredRelease:
    name = f"Firefox-{i}.0-build1"
    locale = {"complete": {"filesize": 1000 + i, "from": "*", "hashValue": f"{i:040x}",
                           "fileUrl": f"http://download.mozilla.org/?product=firefox-{i}.0-complete&os=win&lang=de"}}
    data = {"name": name, "schema_version": 1, "hashFunction": "sha512", "appv": f"{i}.0", "extv": f"{i}.0",
            "platforms": {"WINNT_x86-msvc": {"buildID": f"2018{i:010d}", "locales": {"de": locale, "fr": locale}}}}
    return StoredRelease(name, "Thunderbird" if i % 10 == 0 else "Firefox", data)


def v2_rows(i: int) -> tuple[dict, list[dict]]:
    name = f"Firefox-{i}.0-v2-build1"
    base = {"name": name, "product": "Firefox", "read_only": False, "data_version": 1,
            "data": {"name": name, "schema_version": 9, "hashFunction": "sha512", "appVersion": f"{i}.0",
                     "displayVersion": f"{i}.0", "platforms": {"WINNT_x86_64-msvc": {"locales": {}}}}}
    assets = [{"name": name, "path": f".platforms.WINNT_x86_64-msvc.locales.{locale}", "data_version": 1,
               "data": {"buildID": f"2019{i:010d}", "appVersion": f"{i}.0", "displayVersion": f"{i}.0"}}
              for locale in ("de", "fr")]
    return base, assets


def rule(i: int, v2_releases: int) -> dict:
    v1 = i % 4 != 0 or not v2_releases
    mapping = v1_release(i % RELEASES).name if v1 else v2_rows(i % v2_releases)[0]["name"]
    return {"rule_id": i + 1, "priority": i, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
            "channel": ("release", "beta", "nightly", "release*")[i % 4], "mapping": mapping,
            "version": f"<{i % 100 + 1}.0", "data_version": 1}


def load(storage, v2_releases: int) -> None:
    started = time.perf_counter()
    storage.replace_all(Dataset(rules=[rule(i, v2_releases) for i in range(RULES)],
                                releases=[v1_release(i) for i in range(RELEASES)]))
    document = storage.dump()
    tables = document["tables"]
    for i in range(v2_releases):
        base, assets = v2_rows(i)
        tables["releases_json"].append(base)
        tables["release_assets"].extend(assets)
    tables["permissions"] = [{"permission": "admin", "username": ADMIN, "options": None, "data_version": 1}] + [
        {"permission": "release", "username": f"user{i}@example.com", "options": {"products": ["Firefox"]},
         "data_version": 1} for i in range(200)]
    tables["user_roles"] = [{"username": f"user{i}@example.com", "role": "relman", "data_version": 1}
                            for i in range(20)]
    tables["product_req_signoffs"] = [
        {"product": "Firefox", "channel": channel, "role": "relman", "signoffs_required": 1, "data_version": 1}
        for channel in ("release", "beta")]
    tables["emergency_shutoffs"] = [{"product": "Firefox", "channel": f"c{i}", "comment": None, "data_version": 1}
                                    for i in range(50)]
    storage.restore(document)
    print(f"loaded {RELEASES} v1 releases, {v2_releases} v2 releases (2 locales each), {RULES} rules "
          f"in {time.perf_counter() - started:.1f} s")


def time_requests(client: testing.TestClient, repeat: int) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    print(f"{'request':40} {'status':>6} {'bytes':>9} {'entries':>8} {'median ms':>10} {'best ms':>8}")
    for target in REQUESTS:
        path, _, query = target.partition("?")
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            answer = client.simulate_get(path, query_string=query or None, headers=headers)
            timings.append((time.perf_counter() - started) * 1000)
        body = answer.json
        entries = len(body) if isinstance(body, list) else \
            len(next((v for v in body.values() if isinstance(v, list)), body)) if isinstance(body, dict) else "-"
        total = answer.headers.get("X-Total-Count")
        shown = f"{entries}/{total}" if total else str(entries)
        print(f"{target:40} {answer.status_code:>6} {len(answer.content):>9} {shown:>8} "
              f"{statistics.median(timings):>10.1f} {min(timings):>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="storage URL (default: SQLite in a temporary directory)")
    parser.add_argument("--repeat", type=int, default=5, help="requests per endpoint (default 5)")
    parser.add_argument("--v2", type=int, default=V2_RELEASES, help=f"v2 releases (default {V2_RELEASES})")
    args = parser.parse_args()
    registry = load_plugins()
    with tempfile.TemporaryDirectory() as tmp:
        storage = registry.storage_for(args.db or f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            load(storage, args.v2)
            ctx = AdminContext(storage, registry, StaticTokens({TOKEN: ADMIN}))
            time_requests(testing.TestClient(create_admin_app(ctx)), args.repeat)
        finally:
            storage.close()


if __name__ == "__main__":
    main()
