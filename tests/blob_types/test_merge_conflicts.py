"""The ``BlobType.merge_conflict`` hook: what each built-in blob type treats as a conflict
when a stale write is merged with ``jsondiff.merge3``."""
from __future__ import annotations

import copy

import pytest

from balrog_engine import BlobType
from balrog_engine.jsondiff import merge3
from balrog_plugins.blob_types.apprelease import APP_RELEASE_TYPES
from balrog_plugins.blob_types.gmp import GMPBlob
from balrog_plugins.blob_types.guardian import GuardianBlob
from balrog_plugins.blob_types.systemaddons import SystemAddonsBlob

APP = {cls.schema_version: cls for cls in APP_RELEASE_TYPES}
V9 = APP[9]
WIN = "WINNT_x86_64-msvc"


def locale(build_id: str, size: int, hash_value: str) -> dict:
    return {"buildID": build_id,
            "completes": [{"from": "*", "filesize": size, "hashValue": hash_value}],
            "partials": [{"from": "Firefox-99.0-build1", "filesize": size // 3, "hashValue": hash_value + "p"}]}


FX100 = {
    "name": "Firefox-100.0-build1", "schema_version": 9, "hashFunction": "sha512",
    "appVersion": "100.0", "displayVersion": "100.0",
    "fileUrls": {"*": {
        "completes": {"*": "http://download.mozilla.org/?product=firefox-100.0-complete&os=%OS_BOUNCER%&lang=%LOCALE%"},
    }},
    "platforms": {
        WIN: {"OS_BOUNCER": "win64", "OS_FTP": "win64", "locales": {
            "de": locale("20220502000000", 60000000, "c0ffee01"),
            "fr": locale("20220502000000", 60000001, "c0ffee02"),
        }},
        "WINNT_x86_64-msvc-x64": {"alias": WIN},
        "Linux_x86_64-gcc3": {"OS_BOUNCER": "linux64", "OS_FTP": "linux-x86_64", "locales": {
            "de": locale("20220502000000", 70000000, "d00d01"),
        }},
    },
}


def edit(doc: dict, change) -> dict:
    out = copy.deepcopy(doc)
    change(out)
    return out


def locales(doc: dict, platform: str = WIN) -> dict:
    return doc["platforms"][platform]["locales"]


def test_base_hook_exists_is_documented_and_defaults_to_none():
    assert BlobType.merge_conflict.__doc__ and "MISSING" in BlobType.merge_conflict.__doc__
    assert BlobType.merge_conflict(("platforms",), {}, {"a": 1}, {"b": 2}) is None


@pytest.mark.parametrize("hook", [None, BlobType.merge_conflict], ids=["no hook", "BlobType"])
def test_base_blob_type_keeps_the_default_rules(hook):
    ours = edit(FX100, lambda d: locales(d)["de"].update(buildID="20220503000000"))
    theirs = edit(FX100, lambda d: locales(d)["de"]["completes"][0].update(hashValue="c0ffee99"))
    merged, conflicts = merge3(FX100, ours, theirs, conflict=hook)
    assert conflicts == []
    assert locales(merged)["de"]["buildID"] == "20220503000000"
    assert locales(merged)["de"]["completes"][0]["hashValue"] == "c0ffee99"


def test_different_locales_changed_merge():
    ours = edit(FX100, lambda d: locales(d)["de"].update(buildID="20220503000000"))
    theirs = edit(FX100, lambda d: locales(d)["fr"]["completes"][0].update(hashValue="c0ffee99"))
    merged, conflicts = merge3(FX100, ours, theirs, conflict=V9.merge_conflict)
    assert conflicts == []
    assert locales(merged)["de"] == locales(ours)["de"]
    assert locales(merged)["fr"] == locales(theirs)["fr"]


def test_locales_added_on_each_side_merge():
    ours = edit(FX100, lambda d: locales(d).update(it=locale("20220502000000", 60000002, "c0ffee03")))
    theirs = edit(FX100, lambda d: locales(d).update(es=locale("20220502000000", 60000003, "c0ffee04")))
    merged, conflicts = merge3(FX100, ours, theirs, conflict=V9.merge_conflict)
    assert conflicts == []
    # Both appended after "fr": merge3 puts concurrent appends in sorted order.
    assert list(locales(merged)) == ["de", "fr", "es", "it"]
    assert locales(merged)["it"] == locales(ours)["it"] and locales(merged)["es"] == locales(theirs)["es"]


def test_same_locale_different_fields_is_a_conflict_at_the_locale():
    ours = edit(FX100, lambda d: locales(d)["de"].update(buildID="20220503000000"))
    theirs = edit(FX100, lambda d: locales(d)["de"]["completes"][0].update(hashValue="c0ffee99"))
    merged, conflicts = merge3(FX100, ours, theirs, conflict=V9.merge_conflict)
    assert conflicts == ["platforms.WINNT_x86_64-msvc.locales.de"]


def test_same_locale_on_another_platform_is_independent():
    ours = edit(FX100, lambda d: locales(d)["de"].update(buildID="20220503000000"))
    theirs = edit(FX100, lambda d: locales(d, "Linux_x86_64-gcc3")["de"].update(buildID="20220503000001"))
    merged, conflicts = merge3(FX100, ours, theirs, conflict=V9.merge_conflict)
    assert conflicts == []
    assert locales(merged, "Linux_x86_64-gcc3")["de"]["buildID"] == "20220503000001"


def test_same_locale_changed_identically_is_no_conflict():
    def change(d):
        locales(d)["de"] = locale("20220503000000", 60000010, "c0ffee10")
    ours = edit(FX100, change)
    theirs = edit(edit(FX100, change), lambda d: locales(d)["fr"].update(buildID="20220503000000"))
    merged, conflicts = merge3(FX100, ours, theirs, conflict=V9.merge_conflict)
    assert conflicts == []
    assert merged == theirs


@pytest.mark.parametrize("version", sorted(APP))
def test_every_app_release_version_has_the_rule(version):
    assert APP[version].merge_conflict(("platforms", WIN, "locales", "de"), {}, {"a": 1}, {"b": 1}) is True
    assert APP[version].merge_conflict(("platforms", WIN, "locales"), {}, {"a": 1}, {"b": 1}) is None
    assert APP[version].merge_conflict(("fileUrls", "*"), {}, {"a": 1}, {"b": 1}) is None


def test_alias_entry_is_atomic():
    # One writer re-points the alias, the other turns it into a real platform.
    ours = edit(FX100, lambda d: d["platforms"]["WINNT_x86_64-msvc-x64"].update(alias="Linux_x86_64-gcc3"))
    theirs = edit(FX100, lambda d: d["platforms"].update({"WINNT_x86_64-msvc-x64": {"OS_BOUNCER": "win64"}}))
    assert merge3(FX100, ours, theirs, conflict=V9.merge_conflict)[1] == ["platforms.WINNT_x86_64-msvc-x64"]
    # Without the rule, the alias removed on one side and changed on the other still conflicts, at the leaf.
    assert merge3(FX100, ours, theirs)[1] == ["platforms.WINNT_x86_64-msvc-x64.alias"]


def test_real_platform_turned_into_an_alias_does_not_absorb_the_other_side_fields():
    ours = edit(FX100, lambda d: d["platforms"].update({"Linux_x86_64-gcc3": {"alias": WIN}}))
    theirs = edit(FX100, lambda d: d["platforms"]["Linux_x86_64-gcc3"].update(buildID="20220502000000"))
    # The default rules would store {"alias": …, "buildID": …}, which is neither shape.
    assert merge3(FX100, ours, theirs)[0]["platforms"]["Linux_x86_64-gcc3"] == {
        "alias": WIN, "buildID": "20220502000000"}
    assert merge3(FX100, ours, theirs, conflict=V9.merge_conflict)[1] == ["platforms.Linux_x86_64-gcc3"]


# --- add-on lists and Guardian ------------------------------------------------------------------

OPENH264 = {
    "name": "OpenH264-1.8.1.1", "schema_version": 1000, "hashFunction": "sha512",
    "vendors": {"gmp-gmpopenh264": {"version": "1.8.1.1", "platforms": {
        "WINNT_x86_64-msvc": {"fileUrl": "http://ciscobinary.openh264.org/openh264-win64.zip",
                              "filesize": 484617, "hashValue": "f1"},
        "WINNT_x86_64-msvc-x64": {"alias": "WINNT_x86_64-msvc"},
        "Linux_x86_64-gcc3": {"fileUrl": "http://ciscobinary.openh264.org/openh264-linux64.zip",
                              "filesize": 515722, "hashValue": "f2"},
    }}},
}


def gmp_platform(doc, platform):
    return doc["vendors"]["gmp-gmpopenh264"]["platforms"][platform]


def test_gmp_download_entry_is_atomic():
    ours = edit(OPENH264, lambda d: gmp_platform(d, "WINNT_x86_64-msvc").update(
        fileUrl="http://ciscobinary.openh264.org/openh264-win64-v2.zip"))
    theirs = edit(OPENH264, lambda d: gmp_platform(d, "WINNT_x86_64-msvc").update(hashValue="f9"))
    assert merge3(OPENH264, ours, theirs)[1] == []
    assert merge3(OPENH264, ours, theirs, conflict=GMPBlob.merge_conflict)[1] == [
        "vendors.gmp-gmpopenh264.platforms.WINNT_x86_64-msvc"]


def test_gmp_different_download_entries_merge():
    ours = edit(OPENH264, lambda d: gmp_platform(d, "WINNT_x86_64-msvc").update(hashValue="f8"))
    theirs = edit(OPENH264, lambda d: gmp_platform(d, "Linux_x86_64-gcc3").update(hashValue="f9"))
    merged, conflicts = merge3(OPENH264, ours, theirs, conflict=GMPBlob.merge_conflict)
    assert conflicts == []
    assert gmp_platform(merged, "WINNT_x86_64-msvc")["hashValue"] == "f8"
    assert gmp_platform(merged, "Linux_x86_64-gcc3")["hashValue"] == "f9"


def test_system_addons_download_entry_is_atomic():
    base = {"name": "SystemAddons-1", "schema_version": 5000, "hashFunction": "sha512", "addons": {
        "webcompat@mozilla.org": {"version": "1.1", "platforms": {"default": {
            "fileUrl": "http://archive.mozilla.org/webcompat-1.1.xpi", "filesize": 7000, "hashValue": "aa"}}}}}
    entry = lambda d: d["addons"]["webcompat@mozilla.org"]["platforms"]["default"]  # noqa: E731
    ours = edit(base, lambda d: entry(d).update(filesize=7001))
    theirs = edit(base, lambda d: entry(d).update(hashValue="ab"))
    assert merge3(base, ours, theirs, conflict=SystemAddonsBlob.merge_conflict)[1] == [
        'addons["webcompat@mozilla.org"].platforms.default']


def test_guardian_platform_entry_is_atomic():
    base = {"name": "Guardian-2.0", "schema_version": 10000, "product": "Guardian", "version": "2.0",
            "required": False, "hashFunction": "sha512", "platforms": {
                "WINNT_x86_64": {"fileUrl": "https://good.com/vpn-2.0.msi", "hashValue": "aa"},
                "Darwin_x86_64": {"fileUrl": "https://good.com/vpn-2.0.pkg", "hashValue": "bb"}}}
    ours = edit(base, lambda d: d["platforms"]["WINNT_x86_64"].update(fileUrl="https://good.com/vpn-2.0.1.msi"))
    theirs = edit(base, lambda d: d["platforms"]["WINNT_x86_64"].update(hashValue="ac"))
    assert merge3(base, ours, theirs, conflict=GuardianBlob.merge_conflict)[1] == ["platforms.WINNT_x86_64"]
    theirs = edit(base, lambda d: d["platforms"]["Darwin_x86_64"].update(hashValue="bc"))
    assert merge3(base, ours, theirs, conflict=GuardianBlob.merge_conflict)[1] == []
