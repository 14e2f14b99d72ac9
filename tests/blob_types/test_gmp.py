"""GMP blobs (schema 1000): blob-types.md §5 worked examples, schema refusals, corner cases."""
from __future__ import annotations

import copy

import pytest

from balrog_engine import Serve, UpdateQuery
from balrog_engine.responses import xml_document
from balrog_plugins.blob_types import gmp
from balrog_plugins.blob_types.gmp import GMPBlob

OPENH264 = {
    "name": "OpenH264-1.8.1.1",
    "schema_version": 1000,
    "hashFunction": "sha512",
    "vendors": {
        "gmp-gmpopenh264": {
            "version": "1.8.1.1",
            "platforms": {
                "WINNT_x86_64-msvc": {
                    "fileUrl": "http://ciscobinary.openh264.org/openh264-win64.zip",
                    "filesize": 484617,
                    "hashValue": "f1",
                },
                "WINNT_x86_64-msvc-x64": {"alias": "WINNT_x86_64-msvc"},
                "Linux_x86_64-gcc3": {
                    "fileUrl": "http://ciscobinary.openh264.org/openh264-linux64.zip",
                    "filesize": 515722,
                    "hashValue": "f2",
                    "mirrorUrls": ["https://good.com/openh264-linux64.zip", "https://evil.com/openh264-linux64.zip"],
                },
            },
        }
    },
}

WIDEVINE = {
    "name": "Widevine-4.10",
    "schema_version": 1000,
    "hashFunction": "sha512",
    "vendors": {
        "gmp-widevinecdm": {
            "version": "4.10.2557.0",
            "platforms": {
                "default": {"fileUrl": "https://good.com/widevine-default.zip", "filesize": 100, "hashValue": "w0"},
                "Linux_x86_64-gcc3": {"fileUrl": "https://evil.com/widevine-linux.zip", "filesize": 101,
                                      "hashValue": "w1"},
            },
        }
    },
}

ALLOWLIST = {"ciscobinary.openh264.org": ["OpenH264"], "good.com": ["OpenH264", "Widevine", "GMP"]}


@pytest.fixture
def ctx(kit):
    """The slice of a snapshot a GMP blob consults: the allowlist."""
    return kit.AllowlistContext(ALLOWLIST)


def query(build_target, product="OpenH264", version="100.0"):
    return UpdateQuery(product=product, version=version, buildTarget=build_target, channel="release",
                       buildID="20220502000000", locale="en-US", queryVersion=3)


def render(ctx, data, build_target, product="OpenH264"):
    parts = GMPBlob(data["name"], data).render_xml(query(build_target, product), "minor", ctx)
    return xml_document(parts)


def test_g4_linux_with_one_allowed_mirror(ctx):
    assert render(ctx, OPENH264, "Linux_x86_64-gcc3") == (
        '<?xml version="1.0"?>\n<updates>\n    <addons>\n'
        '        <addon id="gmp-gmpopenh264" URL="http://ciscobinary.openh264.org/openh264-linux64.zip" '
        'hashFunction="sha512" hashValue="f2" size="515722" version="1.8.1.1">\n'
        '            <mirror URL="https://good.com/openh264-linux64.zip"/>\n'
        '        </addon>\n    </addons>\n</updates>'
    )


def test_alias_is_followed_one_hop(ctx):
    parts = GMPBlob("x", OPENH264).render_xml(query("WINNT_x86_64-msvc-x64"), "minor", ctx)
    assert parts.lines == (
        '        <addon id="gmp-gmpopenh264" URL="http://ciscobinary.openh264.org/openh264-win64.zip" '
        'hashFunction="sha512" hashValue="f1" size="484617" version="1.8.1.1"/>',
    )


def test_default_serves_unlisted_targets(ctx):
    parts = GMPBlob("x", WIDEVINE).render_xml(query("Darwin_aarch64-gcc3", "Widevine"), "minor", ctx)
    assert parts.lines == (
        '        <addon id="gmp-widevinecdm" URL="https://good.com/widevine-default.zip" hashFunction="sha512" '
        'hashValue="w0" size="100" version="4.10.2557.0"/>',
    )


def test_forbidden_specific_entry_hides_default(ctx):
    parts = GMPBlob("x", WIDEVINE).render_xml(query("Linux_x86_64-gcc3", "Widevine"), "minor", ctx)
    assert parts.lines == ()


def test_envelope_is_always_present(ctx):
    assert render(ctx, OPENH264, "Darwin_aarch64-gcc3") == (
        '<?xml version="1.0"?>\n<updates>\n    <addons>\n    </addons>\n</updates>'
    )


def test_allowlist_uses_query_product(ctx):
    assert GMPBlob("x", OPENH264).render_xml(query("WINNT_x86_64-msvc", "GMP"), None, ctx).lines == ()


def test_all_mirrors_forbidden_gives_self_closing_line(ctx):
    data = copy.deepcopy(OPENH264)
    data["vendors"]["gmp-gmpopenh264"]["platforms"]["Linux_x86_64-gcc3"]["mirrorUrls"] = ["https://evil.com/a"]
    lines = GMPBlob("x", data).render_xml(query("Linux_x86_64-gcc3"), None, ctx).lines
    assert len(lines) == 1 and lines[0].endswith('version="1.8.1.1"/>')


def test_vendors_in_code_point_order_and_ampersands_escaped_by_document(ctx):
    data = {
        "name": "multi", "schema_version": 1000, "hashFunction": "sha512",
        "vendors": {
            "b": {"version": "2", "platforms": {"default": {"fileUrl": "https://good.com/b?x=1&y=2", "filesize": 2,
                                                            "hashValue": "h"}}},
            "B": {"version": "1", "platforms": {"default": {"fileUrl": "https://good.com/B", "filesize": 1.0,
                                                            "hashValue": "h"}}},
        },
    }
    doc = render(ctx, data, "anything", "Widevine")
    assert doc.index('id="B"') < doc.index('id="b"')
    assert 'size="1.0"' in doc  # numbers print as the reference's %s does
    assert "b?x=1&amp;y=2" in doc


def test_alias_to_missing_platform_drops_vendor_without_default_fallback(ctx):
    data = copy.deepcopy(WIDEVINE)
    data["vendors"]["gmp-widevinecdm"]["platforms"]["Darwin"] = {"alias": "nowhere"}
    data["vendors"]["gmp-widevinecdm"]["platforms"]["Chain"] = {"alias": "Darwin"}
    blob = GMPBlob("x", data)
    for target in ("Darwin", "Chain"):
        assert blob.render_xml(query(target, "Widevine"), None, ctx).lines == ()


def test_vendor_without_platforms_is_skipped(ctx):
    data = copy.deepcopy(WIDEVINE)
    data["vendors"]["gmp-aaa"] = {"version": "1"}
    lines = GMPBlob("x", data).render_xml(query("Darwin", "Widevine"), None, ctx).lines
    assert len(lines) == 1 and 'id="gmp-widevinecdm"' in lines[0]


def test_always_served_and_not_json(ctx):
    blob = GMPBlob("x", OPENH264)
    assert blob.should_serve(query("anything"), ctx) is Serve.YES
    assert GMPBlob.content == "xml" and GMPBlob.schema_version == 1000


def test_hook_registers_the_class():
    assert gmp.balrog_blob_types() == [GMPBlob]


# --- schema ---------------------------------------------------------------------------------------

def test_worked_examples_validate():
    GMPBlob.validate(OPENH264)
    GMPBlob.validate(WIDEVINE)


def _platform(data, name="default"):
    return data["vendors"]["gmp-widevinecdm"]["platforms"][name]


@pytest.mark.parametrize("mutate, path", [
    (lambda d: d.pop("hashFunction"), "hashFunction"),
    (lambda d: d.pop("vendors"), "vendors"),
    (lambda d: d["vendors"]["gmp-widevinecdm"].pop("version"), "vendors.gmp-widevinecdm.version"),
    (lambda d: _platform(d).pop("fileUrl"), "vendors.gmp-widevinecdm.platforms.default.fileUrl"),
    (lambda d: _platform(d).pop("filesize"), "vendors.gmp-widevinecdm.platforms.default.filesize"),
    (lambda d: _platform(d).pop("hashValue"), "vendors.gmp-widevinecdm.platforms.default.hashValue"),
    (lambda d: _platform(d).update(filesize="100"), "vendors.gmp-widevinecdm.platforms.default.filesize"),
    (lambda d: _platform(d).update(filesize=True), "vendors.gmp-widevinecdm.platforms.default.filesize"),
    (lambda d: _platform(d).update(fileUrl="not a url"), "vendors.gmp-widevinecdm.platforms.default.fileUrl"),
    (lambda d: _platform(d).update(mirrorUrls="https://good.com/x"),
     "vendors.gmp-widevinecdm.platforms.default.mirrorUrls"),
    (lambda d: _platform(d).update(colour="red"), "vendors.gmp-widevinecdm.platforms.default.colour"),
    (lambda d: d["vendors"]["gmp-widevinecdm"]["platforms"].update(x={"alias": "default", "fileUrl": "https://a/b"}),
     "vendors.gmp-widevinecdm.platforms.x.fileUrl"),
    (lambda d: d["vendors"]["gmp-widevinecdm"].update(extra=1), "vendors.gmp-widevinecdm.extra"),
    (lambda d: d.update(fileUrls={}), "fileUrls"),
    (lambda d: d.update(schema_version=1001), "schema_version"),
    (lambda d: d.pop("name"), "name"),
    (lambda d: d.update(vendors=[]), "vendors"),
])
def test_schema_refusals_name_the_field(kit, mutate, path):
    assert f"{path}:" in kit.refusal(GMPBlob, WIDEVINE, mutate)


# --- real data ----------------------------------------------------------------------------------

@pytest.mark.shared_blobs(1000)
def test_real_blobs_validate_and_render(data, ctx):
    GMPBlob.validate(data)
    blob = GMPBlob(data["name"], data)
    for target in ("WINNT_x86_64-msvc", "Linux_x86_64-gcc3", "unknown"):
        blob.render_xml(query(target), "minor", ctx)
