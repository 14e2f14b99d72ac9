"""The public read path over v2 release storage (admin-api.md §2 intro, §3.1): ``releases()``
assembles ``releases_json`` + ``release_assets`` (and prefers them to the v1 table),
``release_summaries()`` lists v2-only releases, and the public snapshot serves them. On every
backend of the ``storage`` fixture."""
from __future__ import annotations

from balrog_engine import Dataset, StoredRelease, load_plugins
from balrog_engine.snapshot import build_snapshot

NAME = "Firefox-80.0-build1"


def _locale(n: int) -> dict:
    return {"buildID": "20190901000000", "appVersion": "80.0", "displayVersion": "80.0",
            "completes": [{"from": "*", "filesize": 50000000 + n, "hashValue": f"{n:064x}",
                           "fileUrl": f"https://archive.mozilla.org/pub/firefox/releases/80.0/{n}.mar"}]}


BASE = {"name": NAME, "schema_version": 9, "hashFunction": "sha512", "appVersion": "80.0",
        "displayVersion": "80.0", "updateLine": [{"for": {}, "fields": {"type": "minor"}}],
        "platforms": {"WINNT_x86_64-msvc": {"OS_FTP": "win64", "locales": {}},
                      "Linux_x86_64-gcc3": {"locales": {}}}}
ASSETS = {".platforms.WINNT_x86_64-msvc.locales.en-US": _locale(1),
          ".platforms.WINNT_x86_64-msvc.locales.de": _locale(2),
          ".platforms.Linux_x86_64-gcc3.locales.de": _locale(3)}


def _store_v2(storage, name=NAME, base=None, read_only=False):
    base = dict(base or BASE, name=name)
    with storage.session("tester") as s:
        s.insert("releases_json", {"name": name, "product": "Firefox", "read_only": read_only, "data": base})
        for path, data in ASSETS.items():
            s.insert("release_assets", {"name": name, "path": path, "data": data})


def test_v2_release_is_assembled(storage):
    _store_v2(storage)
    with storage.session("tester") as s:
        s.update("releases_json", {"name": NAME}, {"data": {**BASE, "displayVersion": "80.0 x64"}}, 1, merge=False)
    found = storage.releases([NAME, "unknown"])
    assert list(found) == [NAME]
    release = found[NAME]
    assert (release.name, release.product, release.data_version, release.read_only) == (NAME, "Firefox", 2, False)
    data = release.data
    assert list(data) == list(BASE)  # base key order
    assert data["displayVersion"] == "80.0 x64"
    assert data["platforms"]["WINNT_x86_64-msvc"] == {"OS_FTP": "win64", "locales": {"de": _locale(2),
                                                                                     "en-US": _locale(1)}}
    assert list(data["platforms"]["WINNT_x86_64-msvc"]["locales"]) == ["de", "en-US"]  # asset path order
    assert data["platforms"]["Linux_x86_64-gcc3"] == {"locales": {"de": _locale(3)}}


def test_v2_is_looked_up_before_v1_and_summaries_include_v2_only(storage):
    storage.replace_all(Dataset(releases=[
        StoredRelease("Firefox-79.0-build1", "Firefox", {"name": "Firefox-79.0-build1", "schema_version": 9}),
        StoredRelease(NAME, "Firefox", {"name": NAME, "schema_version": 9, "v1": True}, data_version=5),
    ]))
    _store_v2(storage)
    _store_v2(storage, "Firefox-81.0-build1", read_only=True)
    found = storage.releases([NAME, "Firefox-79.0-build1", "Firefox-81.0-build1"])
    assert found[NAME].data_version == 1 and "v1" not in found[NAME].data
    assert found["Firefox-79.0-build1"].data == {"name": "Firefox-79.0-build1", "schema_version": 9}
    assert found["Firefox-81.0-build1"].read_only is True
    summaries = storage.release_summaries()
    assert [(r["name"], r["data_version"], r["read_only"]) for r in summaries] == [
        ("Firefox-79.0-build1", 1, False), (NAME, 5, False), ("Firefox-81.0-build1", 1, True)]


def test_release_without_assets(storage):
    other = {"name": "GMP-1", "schema_version": 1000, "hashFunction": "sha512", "vendors": {}}
    with storage.session("tester") as s:
        s.insert("releases_json", {"name": "GMP-1", "product": "GMP", "read_only": False, "data": other})
    assert storage.releases(["GMP-1"])["GMP-1"].data == other
    assert storage.release_summaries() == [{"name": "GMP-1", "product": "GMP", "data_version": 1,
                                            "read_only": False}]


def test_public_snapshot_serves_a_v2_release(storage):
    _store_v2(storage)
    with storage.session("tester") as s:
        s.insert("rules", {"priority": 100, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
                           "channel": "release", "mapping": NAME})
    snapshot = build_snapshot(storage, load_plugins())
    release = snapshot.releases[NAME]
    assert (release.name, release.product, release.data_version) == (NAME, "Firefox", 1)
    assert release.blob is not None and not snapshot_errors(snapshot)


def snapshot_errors(snapshot):
    return getattr(snapshot, "errors", None)
