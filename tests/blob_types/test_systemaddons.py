"""SystemAddons blobs (schema 5000): blob-types.md §6 examples, schema refusals, corner cases."""
from __future__ import annotations

import copy

import pytest

from balrog_engine import BlobValidationError, Serve, UpdateQuery
from balrog_engine.responses import xml_document
from balrog_plugins.blob_types import systemaddons
from balrog_plugins.blob_types.systemaddons import SystemAddonsBlob

HOTFIX = {
    "name": "hotfix-1.1.4",
    "schema_version": 5000,
    "hashFunction": "sha512",
    "addons": {
        "hotfix@mozilla.org": {
            "version": "1.1.4",
            "platforms": {
                "WINNT_x86-msvc": {
                    "fileUrl": "https://ftp.mozilla.org/pub/system-addons/hotfix/hotfix-1.1.4-win.xpi",
                    "filesize": 11436,
                    "hashValue": "h1",
                },
                "WINNT_x86_64-msvc": {"alias": "WINNT_x86-msvc"},
            },
        }
    },
}

UNINSTALL = {"name": "SystemAddons-uninstall", "schema_version": 5000, "hashFunction": "sha512", "uninstall": True}

# Balrog's test_systemaddons.py blob (conformance blob-systemaddons-schema1-blob-1).
FIXTURE = {
    "name": "fake", "schema_version": 5000, "hashFunction": "SHA512",
    "addons": {
        "c": {"version": "1", "platforms": {
            "p": {"filesize": 2, "hashValue": "3", "fileUrl": "http://a.com/blah"},
            "q": {"filesize": 4, "hashValue": "5", "fileUrl": "http://boring.com/blah"},
            "q2": {"alias": "q"},
        }},
        "d": {"version": "5", "platforms": {
            "q": {"filesize": 10, "hashValue": "11", "fileUrl": "http://boring.com/foo"},
            "r": {"filesize": 666, "hashValue": "666", "fileUrl": "http://evil.com/fire"},
            "default": {"filesize": 20, "hashValue": "50", "fileUrl": "http://boring.com/bar"},
        }},
    },
}

ALLOWLIST = {"ftp.mozilla.org": ["SystemAddons"], "a.com": ["gg"], "boring.com": ["gg"]}


@pytest.fixture
def ctx(kit):
    return kit.AllowlistContext(ALLOWLIST)


def query(build_target, product="SystemAddons", version="59.0"):
    return UpdateQuery(product=product, version=version, buildTarget=build_target, channel="release",
                       buildID="20220502000000", locale="en-US", osVersion="Windows_NT 10.0", queryVersion=3)


def render(ctx, data, build_target, product="SystemAddons"):
    return xml_document(SystemAddonsBlob(data["name"], data).render_xml(query(build_target, product), "minor", ctx))


def test_s4_windows_via_alias(ctx):
    assert render(ctx, HOTFIX, "WINNT_x86_64-msvc") == (
        '<?xml version="1.0"?>\n<updates>\n    <addons>\n'
        '        <addon id="hotfix@mozilla.org" URL="https://ftp.mozilla.org/pub/system-addons/hotfix/'
        'hotfix-1.1.4-win.xpi" hashFunction="sha512" hashValue="h1" size="11436" version="1.1.4"/>\n'
        '    </addons>\n</updates>'
    )
    assert len(render(ctx, HOTFIX, "WINNT_x86_64-msvc")) == 252


def test_s3_nothing_for_platform_omits_addons_element(ctx):
    body = render(ctx, HOTFIX, "Linux_x86_64-gcc3")
    assert body == '<?xml version="1.0"?>\n<updates>\n\n\n</updates>' and len(body) == 44


def test_s5_uninstall_renders_empty_addons(ctx):
    body = render(ctx, UNINSTALL, "WINNT_x86_64-msvc")
    assert body == '<?xml version="1.0"?>\n<updates>\n    <addons>\n    </addons>\n</updates>' and len(body) == 69


def test_only_forbidden_addons_omit_addons_element(ctx):
    body = render(ctx, HOTFIX, "WINNT_x86-msvc", product="Firefox")
    assert body == '<?xml version="1.0"?>\n<updates>\n\n\n</updates>'


def test_uninstall_false_with_addons_behaves_as_false(ctx):
    data = dict(copy.deepcopy(HOTFIX), uninstall=False)
    SystemAddonsBlob.validate(data)
    assert render(ctx, data, "Linux_x86_64-gcc3") == '<?xml version="1.0"?>\n<updates>\n\n\n</updates>'


@pytest.mark.parametrize("target, ids_and_hashes", [
    ("p", [("c", "3"), ("d", "50")]),  # d falls back to default
    ("q", [("c", "5"), ("d", "11")]),
    ("q2", [("c", "5"), ("d", "50")]),  # alias for c only; d has no q2 -> default
    ("r", [("d", None)]),  # r's specific entry is forbidden: default is not used
    ("zz", [("d", "50")]),
])
def test_reference_fixture(target, ids_and_hashes, ctx):
    lines = SystemAddonsBlob("fake", FIXTURE).render_xml(query(target, "gg"), None, ctx).lines
    expected = [(i, h) for i, h in ids_and_hashes if h is not None]
    assert [(line.split('id="')[1].split('"')[0], line.split('hashValue="')[1].split('"')[0]) for line in lines] \
        == expected


def test_no_mirrors_for_system_addons():
    data = copy.deepcopy(HOTFIX)
    data["addons"]["hotfix@mozilla.org"]["platforms"]["WINNT_x86-msvc"]["mirrorUrls"] = ["https://ftp.mozilla.org/m"]
    with pytest.raises(BlobValidationError, match="mirrorUrls"):
        SystemAddonsBlob.validate(data)


def test_alias_to_missing_platform_is_skipped(ctx):
    data = copy.deepcopy(HOTFIX)
    data["addons"]["hotfix@mozilla.org"]["platforms"]["Linux"] = {"alias": "nowhere"}
    assert render(ctx, data, "Linux") == '<?xml version="1.0"?>\n<updates>\n\n\n</updates>'


def test_empty_addons(ctx):
    data = {"name": "x", "schema_version": 5000, "hashFunction": "SHA512", "addons": {}}
    SystemAddonsBlob.validate(data)
    assert render(ctx, data, "t") == '<?xml version="1.0"?>\n<updates>\n\n\n</updates>'


def test_missing_hash_function_prints_no_addon(ctx):
    data = copy.deepcopy(HOTFIX)
    del data["hashFunction"]
    SystemAddonsBlob.validate(data)  # optional in the reference's schema
    assert render(ctx, data, "WINNT_x86-msvc") == '<?xml version="1.0"?>\n<updates>\n\n\n</updates>'


def test_always_served(ctx):
    assert SystemAddonsBlob("x", HOTFIX).should_serve(query("nothing"), ctx) is Serve.YES
    assert systemaddons.balrog_blob_types() == [SystemAddonsBlob]


# --- schema ---------------------------------------------------------------------------------------

def test_worked_examples_validate():
    for data in (HOTFIX, UNINSTALL, FIXTURE):
        SystemAddonsBlob.validate(data)


def _platform(d, name="WINNT_x86-msvc"):
    return d["addons"]["hotfix@mozilla.org"]["platforms"][name]


@pytest.mark.parametrize("base, mutate, path", [
    (HOTFIX, lambda d: d["addons"]["hotfix@mozilla.org"].pop("version"), "addons.hotfix@mozilla.org.version"),
    (HOTFIX, lambda d: _platform(d).pop("fileUrl"), "addons.hotfix@mozilla.org.platforms.WINNT_x86-msvc.fileUrl"),
    (HOTFIX, lambda d: _platform(d).pop("filesize"), "addons.hotfix@mozilla.org.platforms.WINNT_x86-msvc.filesize"),
    (HOTFIX, lambda d: _platform(d).pop("hashValue"),
     "addons.hotfix@mozilla.org.platforms.WINNT_x86-msvc.hashValue"),
    (HOTFIX, lambda d: _platform(d, "WINNT_x86_64-msvc").update(x=1),
     "addons.hotfix@mozilla.org.platforms.WINNT_x86_64-msvc.x"),
    (HOTFIX, lambda d: d.update(uninstall=True), "uninstall"),
    (HOTFIX, lambda d: d.pop("addons"), "addons"),
    (HOTFIX, lambda d: d.update(vendors={}), "vendors"),
    (UNINSTALL, lambda d: d.update(uninstall="yes"), "uninstall"),
    (UNINSTALL, lambda d: d.update(schema_version=1000), "schema_version"),
])
def test_schema_refusals_name_the_field(kit, base, mutate, path):
    assert f"{path}:" in kit.refusal(SystemAddonsBlob, base, mutate)


# --- real data ----------------------------------------------------------------------------------

@pytest.mark.shared_blobs(5000)
def test_real_blobs_validate_and_render(data, ctx):
    SystemAddonsBlob.validate(data)
    blob = SystemAddonsBlob(data["name"], data)
    for target in ("WINNT_x86_64-msvc", "Linux_x86_64-gcc3", "unknown"):
        blob.render_xml(query(target), "minor", ctx)
