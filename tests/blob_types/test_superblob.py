"""Superblobs (schema 4000): G-1…G-3 (products) and S1, S2 (blobs) of blob-types.md, plus corner cases."""
from __future__ import annotations

import pytest

from balrog_engine import Release, Serve, UpdateQuery
from balrog_engine.responses import xml_document
from balrog_plugins.blob_types import superblob
from balrog_plugins.blob_types.gmp import GMPBlob
from balrog_plugins.blob_types.guardian import GuardianBlob
from balrog_plugins.blob_types.superblob import SuperBlob
from balrog_plugins.blob_types.systemaddons import SystemAddonsBlob

TYPES = {1000: GMPBlob, 4000: SuperBlob, 5000: SystemAddonsBlob, 10000: GuardianBlob}


def release(data, product=None):
    return Release(data["name"], product, 1, TYPES[data["schema_version"]](data["name"], data))


def query(product, build_target, version="100.0", channel="release"):
    return UpdateQuery(product=product, version=version, buildTarget=build_target, channel=channel,
                       buildID="20220502000000", locale="en-US", osVersion="OS", queryVersion=3)


# --- products (GMP) ----------------------------------------------------------------------------

OPENH264 = {
    "name": "OpenH264-1.8.1.1", "schema_version": 1000, "hashFunction": "sha512",
    "vendors": {"gmp-gmpopenh264": {"version": "1.8.1.1", "platforms": {
        "WINNT_x86_64-msvc": {"fileUrl": "http://ciscobinary.openh264.org/openh264-win64.zip", "filesize": 484617,
                              "hashValue": "f1"},
        "WINNT_x86_64-msvc-x64": {"alias": "WINNT_x86_64-msvc"},
        "Linux_x86_64-gcc3": {"fileUrl": "http://ciscobinary.openh264.org/openh264-linux64.zip", "filesize": 515722,
                              "hashValue": "f2",
                              "mirrorUrls": ["https://good.com/openh264-linux64.zip",
                                             "https://evil.com/openh264-linux64.zip"]},
    }}},
}
WIDEVINE = {
    "name": "Widevine-4.10", "schema_version": 1000, "hashFunction": "sha512",
    "vendors": {"gmp-widevinecdm": {"version": "4.10.2557.0", "platforms": {
        "default": {"fileUrl": "https://good.com/widevine-default.zip", "filesize": 100, "hashValue": "w0"},
        "Linux_x86_64-gcc3": {"fileUrl": "https://evil.com/widevine-linux.zip", "filesize": 101, "hashValue": "w1"},
    }}},
}
GMP_SUPERBLOB = {"name": "GMP-Superblob", "schema_version": 4000, "products": ["OpenH264", "Widevine"]}
GMP_ALLOWLIST = {"ciscobinary.openh264.org": ["OpenH264"], "good.com": ["OpenH264", "Widevine"]}


@pytest.fixture
def gmp_ctx(kit):
    """Releases by name, the allowlist, and one rule per GMP product."""
    return kit.AllowlistContext(
        GMP_ALLOWLIST,
        [release(OPENH264, "OpenH264"), release(WIDEVINE, "Widevine"), release(GMP_SUPERBLOB, "GMP")],
        rules={"OpenH264": ("OpenH264-1.8.1.1", "minor"), "Widevine": ("Widevine-4.10", "minor")},
    )


def render_gmp(ctx, build_target):
    return xml_document(SuperBlob("GMP-Superblob", GMP_SUPERBLOB).render_xml(query("GMP", build_target), "minor", ctx))


def test_g1_windows_alias_and_default(gmp_ctx):
    body = render_gmp(gmp_ctx, "WINNT_x86_64-msvc-x64")
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n    <addons>\n'
        '        <addon id="gmp-gmpopenh264" URL="http://ciscobinary.openh264.org/openh264-win64.zip" '
        'hashFunction="sha512" hashValue="f1" size="484617" version="1.8.1.1"/>\n'
        '        <addon id="gmp-widevinecdm" URL="https://good.com/widevine-default.zip" hashFunction="sha512" '
        'hashValue="w0" size="100" version="4.10.2557.0"/>\n'
        '    </addons>\n</updates>'
    )
    assert len(body) == 385


def test_g2_linux_mirror_and_hidden_default(gmp_ctx):
    body = render_gmp(gmp_ctx, "Linux_x86_64-gcc3")
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n    <addons>\n'
        '        <addon id="gmp-gmpopenh264" URL="http://ciscobinary.openh264.org/openh264-linux64.zip" '
        'hashFunction="sha512" hashValue="f2" size="515722" version="1.8.1.1">\n'
        '            <mirror URL="https://good.com/openh264-linux64.zip"/>\n'
        '        </addon>\n    </addons>\n</updates>'
    )
    assert len(body) == 317


def test_g3_default_only(gmp_ctx):
    body = render_gmp(gmp_ctx, "Darwin_aarch64-gcc3")
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n    <addons>\n'
        '        <addon id="gmp-widevinecdm" URL="https://good.com/widevine-default.zip" hashFunction="sha512" '
        'hashValue="w0" size="100" version="4.10.2557.0"/>\n'
        '    </addons>\n</updates>'
    )
    assert len(body) == 221


def test_products_are_evaluated_with_per_product_query_in_list_order(gmp_ctx):
    render_gmp(gmp_ctx, "Darwin_aarch64-gcc3")
    assert [q.product for q in gmp_ctx.evaluated] == ["OpenH264", "Widevine"]
    assert all(q.buildTarget == "Darwin_aarch64-gcc3" and q.channel == "release" for q in gmp_ctx.evaluated)


def test_product_without_release_is_skipped(gmp_ctx):
    del gmp_ctx.rules["Widevine"]
    body = render_gmp(gmp_ctx, "Darwin_aarch64-gcc3")
    assert body == '<?xml version="1.0"?>\n<updates>\n    <addons>\n    </addons>\n</updates>'


def test_sub_product_update_type_is_passed_on(gmp_ctx):
    seen = []

    class Spy(GMPBlob):
        def render_xml(self, query, update_type, ctx):
            seen.append((query.product, update_type))
            return super().render_xml(query, update_type, ctx)

    gmp_ctx.releases["Widevine-4.10"] = Release("Widevine-4.10", "Widevine", 1, Spy("Widevine-4.10", WIDEVINE))
    gmp_ctx.rules["Widevine"] = ("Widevine-4.10", "major")
    SuperBlob("s", GMP_SUPERBLOB).render_xml(query("GMP", "x"), "minor", gmp_ctx)
    assert seen == [("Widevine", "major")]


# --- blobs (system add-ons) -------------------------------------------------------------------

HOTFIX = {
    "name": "hotfix-1.1.4", "schema_version": 5000, "hashFunction": "sha512",
    "addons": {"hotfix@mozilla.org": {"version": "1.1.4", "platforms": {
        "WINNT_x86-msvc": {"fileUrl": "https://ftp.mozilla.org/pub/system-addons/hotfix/hotfix-1.1.4-win.xpi",
                           "filesize": 11436, "hashValue": "h1"},
        "WINNT_x86_64-msvc": {"alias": "WINNT_x86-msvc"},
    }}},
}
TIMECOP = {
    "name": "timecop@mozilla.com-1.0", "schema_version": 5000, "hashFunction": "sha512",
    "addons": {"timecop@mozilla.com": {"version": "1.0", "platforms": {
        "default": {"fileUrl": "https://ftp.mozilla.org/pub/system-addons/timecop/timecop@mozilla.com-1.0-signed.xpi",
                    "filesize": 5129, "hashValue": "t1"},
    }}},
}
SA_SUPERBLOB = {"name": "SystemAddons-Superblob-1", "schema_version": 4000,
                "blobs": ["hotfix-1.1.4", "timecop@mozilla.com-1.0"]}


@pytest.fixture
def sa_context(kit):
    """Makes the S examples' context; ``hotfix_product`` is the product the hotfix release is stored under."""
    def make(hotfix_product="SystemAddons"):
        return kit.AllowlistContext({"ftp.mozilla.org": ["SystemAddons"]},
                                    [release(HOTFIX, hotfix_product), release(TIMECOP, "SystemAddons")], rules={})
    return make


@pytest.fixture
def sa_ctx(sa_context):
    return sa_context()


def render_sa(ctx, build_target, data=SA_SUPERBLOB, product="SystemAddons"):
    blob = SuperBlob(data["name"], data)
    return xml_document(blob.render_xml(query(product, build_target), "minor", ctx))


TIMECOP_LINE = ('        <addon id="timecop@mozilla.com" URL="https://ftp.mozilla.org/pub/system-addons/timecop/'
                'timecop@mozilla.com-1.0-signed.xpi" hashFunction="sha512" hashValue="t1" size="5129" version="1.0"/>')


def test_s1_windows_both_blobs(sa_ctx):
    body = render_sa(sa_ctx, "WINNT_x86_64-msvc")
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n    <addons>\n'
        '        <addon id="hotfix@mozilla.org" URL="https://ftp.mozilla.org/pub/system-addons/hotfix/'
        'hotfix-1.1.4-win.xpi" hashFunction="sha512" hashValue="h1" size="11436" version="1.1.4"/>\n'
        f'{TIMECOP_LINE}\n    </addons>\n</updates>'
    )
    assert len(body) == 448


def test_s2_linux_only_timecop(sa_ctx):
    body = render_sa(sa_ctx, "Linux_x86_64-gcc3")
    assert body == f'<?xml version="1.0"?>\n<updates>\n    <addons>\n{TIMECOP_LINE}\n    </addons>\n</updates>'
    assert len(body) == 265


def test_blobs_use_the_stored_product_for_the_allowlist(sa_ctx, sa_context):
    # The request's product is irrelevant; each release's product column decides.
    assert render_sa(sa_ctx, "Linux_x86_64-gcc3", product="Firefox") == render_sa(sa_ctx, "Linux_x86_64-gcc3")
    body = render_sa(sa_context(hotfix_product="Other"), "WINNT_x86_64-msvc")
    assert "hotfix" not in body and TIMECOP_LINE in body


def test_missing_member_is_skipped(sa_ctx):
    data = dict(SA_SUPERBLOB, blobs=["does-not-exist", "timecop@mozilla.com-1.0"])
    assert render_sa(sa_ctx, "Linux_x86_64-gcc3", data=data) == render_sa(sa_ctx, "Linux_x86_64-gcc3")


def test_referenced_releases():
    assert list(SuperBlob("s", SA_SUPERBLOB).referenced_releases()) == SA_SUPERBLOB["blobs"]
    assert list(SuperBlob("s", GMP_SUPERBLOB).referenced_releases()) == []


@pytest.mark.parametrize("data", [
    {"name": "e", "schema_version": 4000, "blobs": []},
    {"name": "e", "schema_version": 4000, "products": []},
])
def test_empty_superblob_renders_empty_addons(data, sa_ctx):
    SuperBlob.validate(data)
    body = render_sa(sa_ctx, "x", data=data)
    assert body == '<?xml version="1.0"?>\n<updates>\n    <addons>\n    </addons>\n</updates>'


def test_nested_superblobs_and_json_members_contribute_nothing(sa_ctx):
    guardian = {"name": "g", "product": "Guardian", "schema_version": 10000, "version": "2.0", "required": False,
                "hashFunction": "sha512", "platforms": {"x": {"fileUrl": "https://ftp.mozilla.org/g", "hashValue": "h"}}}
    selfref = {"name": "loop", "schema_version": 4000, "blobs": ["loop", "g", "timecop@mozilla.com-1.0"]}
    sa_ctx.releases.update({"loop": release(selfref, "SystemAddons"), "g": release(guardian, "SystemAddons")})
    assert render_sa(sa_ctx, "x", data=selfref) == (
        f'<?xml version="1.0"?>\n<updates>\n    <addons>\n{TIMECOP_LINE}\n    </addons>\n</updates>')


def test_always_served(sa_ctx):
    assert SuperBlob("s", SA_SUPERBLOB).should_serve(query("x", "y"), sa_ctx) is Serve.YES
    assert superblob.balrog_blob_types() == [SuperBlob]


# --- schema ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, path", [
    ({"name": "s", "schema_version": 4000}, "(blob)"),
    ({"name": "s", "schema_version": 4000, "products": ["a"], "blobs": ["b"]}, "(blob)"),
    ({"name": "s", "schema_version": 4000, "products": "a"}, "products"),
    ({"name": "s", "schema_version": 4000, "products": [""]}, "products[0]"),
    ({"name": "s", "schema_version": 4000, "blobs": [3]}, "blobs[0]"),
    ({"name": "s", "schema_version": 4000, "blobs": ["a"], "addons": {}}, "addons"),
    ({"schema_version": 4000, "blobs": ["a"]}, "name"),
])
def test_schema_refusals(kit, data, path):
    assert f"{path}:" in kit.refusal(SuperBlob, data)


# --- real data ----------------------------------------------------------------------------------

@pytest.mark.shared_blobs(4000)
def test_real_blobs_validate(data):
    SuperBlob.validate(data)
