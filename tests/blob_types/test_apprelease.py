"""Application-release blobs (schema 1–6, 8, 9): schemas, serve checks and exact XML.

The worked examples are blob-types.md §3.7 (A–H), byte for byte; the rest are
corner cases around them. ``kit`` (conftest.py) provides a fake RenderContext and
document assembly identical to the core's.
"""
from __future__ import annotations

import copy

import pytest

from balrog_engine import BadRequest, BlobValidationError, Force, Serve
from balrog_plugins.blob_types.apprelease import APP_RELEASE_TYPES, balrog_blob_types

TYPES = {cls.schema_version: cls for cls in APP_RELEASE_TYPES}


def blob(data):
    return TYPES[data["schema_version"]](data["name"], data)


def head(body: str) -> str:
    """The <update …> line of a document."""
    return body.split("\n")[2]


# --- Example A: V9 ------------------------------------------------------------------------------

FX100 = {
    "name": "Firefox-100.0-build1", "schema_version": 9, "hashFunction": "sha512",
    "appVersion": "100.0", "displayVersion": "100.0",
    "updateLine": [
        {"for": {}, "fields": {"detailsURL": "https://www.mozilla.org/%LOCALE%/firefox/100.0/releasenotes/",
                               "type": "minor"}},
        {"for": {"versions": ["<100.0"], "locales": ["de"]},
         "fields": {"actions": "showURL", "openURL": "https://www.mozilla.org/%LOCALE%/firefox/100.0/whatsnew/",
                    "promptWaitTime": 3600}},
        {"for": {"channels": ["release-cck-*"]}, "fields": {"disableBITS": True}},
    ],
    "fileUrls": {"*": {
        "completes": {"*": "http://download.mozilla.org/?product=firefox-100.0-complete&os=%OS_BOUNCER%&lang=%LOCALE%"},
        "partials": {"Firefox-99.0-build1":
                     "http://download.mozilla.org/?product=firefox-100.0-partial-99.0&os=%OS_BOUNCER%&lang=%LOCALE%"},
    }},
    "platforms": {
        "WINNT_x86_64-msvc": {"OS_BOUNCER": "win64", "OS_FTP": "win64", "locales": {
            "de": {"buildID": "20220502000000",
                   "completes": [{"from": "*", "filesize": 60000000, "hashValue": "c0ffee01"}],
                   "partials": [{"from": "Firefox-99.0-build1", "filesize": 20000000, "hashValue": "beef0001"}]},
            "fr": {"buildID": "20220502000000",
                   "completes": [{"from": "*", "filesize": 60000001, "hashValue": "c0ffee02"}],
                   "partials": [{"from": "Firefox-99.0-build1", "filesize": 20000001, "hashValue": "beef0002"}]},
        }},
        "WINNT_x86_64-msvc-x64": {"alias": "WINNT_x86_64-msvc"},
    },
}
FX99 = {
    "name": "Firefox-99.0-build1", "schema_version": 9, "hashFunction": "sha512",
    "appVersion": "99.0", "displayVersion": "99.0",
    "platforms": {
        "WINNT_x86_64-msvc": {"locales": {"de": {"buildID": "20220401000000"}, "fr": {"buildID": "20220401000000"}}},
        "WINNT_x86_64-msvc-x64": {"alias": "WINNT_x86_64-msvc"},
    },
}


@pytest.fixture
def ctx_a(kit):
    return kit.FakeContext({b["name"]: blob(b) for b in (FX100, FX99)})


def win_query(kit, version, build_id, locale, channel="release", **kw):
    return kit.query(version=version, build_id=build_id, target="WINNT_x86_64-msvc-x64", locale=locale,
                     channel=channel, **kw)


def test_example_a1_partial_and_whats_new(kit, ctx_a):
    body = kit.answer(ctx_a, "Firefox-100.0-build1", win_query(kit, "99.0", "20220401000000", "de"))
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n'
        '    <update actions="showURL" appVersion="100.0" buildID="20220502000000" detailsURL="https://www.mozilla.org/de/firefox/100.0/releasenotes/" displayVersion="100.0" openURL="https://www.mozilla.org/de/firefox/100.0/whatsnew/" promptWaitTime="3600" type="minor">\n'
        '        <patch type="complete" URL="http://download.mozilla.org/?product=firefox-100.0-complete&amp;os=win64&amp;lang=de" hashFunction="sha512" hashValue="c0ffee01" size="60000000"/>\n'
        '        <patch type="partial" URL="http://download.mozilla.org/?product=firefox-100.0-partial-99.0&amp;os=win64&amp;lang=de" hashFunction="sha512" hashValue="beef0001" size="20000000"/>\n'
        '    </update>\n</updates>')
    assert len(body.encode()) == 687


def test_example_a2_no_partial_no_wnp(kit, ctx_a):
    body = kit.answer(ctx_a, "Firefox-100.0-build1", win_query(kit, "98.0", "20220301000000", "fr"))
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n'
        '    <update appVersion="100.0" buildID="20220502000000" detailsURL="https://www.mozilla.org/fr/firefox/100.0/releasenotes/" displayVersion="100.0" type="minor">\n'
        '        <patch type="complete" URL="http://download.mozilla.org/?product=firefox-100.0-complete&amp;os=win64&amp;lang=fr" hashFunction="sha512" hashValue="c0ffee02" size="60000001"/>\n'
        '    </update>\n</updates>')
    assert len(body.encode()) == 400


def test_example_a3_cck_channel_force(kit, ctx_a):
    q = win_query(kit, "99.0", "20220401000000", "fr", channel="release-cck-partner", force=Force.MAIN)
    body = kit.answer(ctx_a, "Firefox-100.0-build1", q)
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n'
        '    <update appVersion="100.0" buildID="20220502000000" detailsURL="https://www.mozilla.org/fr/firefox/100.0/releasenotes/" disableBITS="true" displayVersion="100.0" type="minor">\n'
        '        <patch type="complete" URL="http://download.mozilla.org/?product=firefox-100.0-complete&amp;os=win64&amp;lang=fr&amp;force=1" hashFunction="sha512" hashValue="c0ffee02" size="60000001"/>\n'
        '        <patch type="partial" URL="http://download.mozilla.org/?product=firefox-100.0-partial-99.0&amp;os=win64&amp;lang=fr&amp;force=1" hashFunction="sha512" hashValue="beef0002" size="20000001"/>\n'
        '    </update>\n</updates>')
    assert len(body.encode()) == 629


def test_example_a4_same_build_gets_nothing(kit, ctx_a):
    q = win_query(kit, "100.0", "20220502000000", "de")
    assert ctx_a.release("Firefox-100.0-build1").blob.should_serve(q, ctx_a) is Serve.NO


def test_v9_group_type_overrides_rule_and_later_groups_win(kit):
    data = copy.deepcopy(FX100)
    data["updateLine"] = [
        {"for": {}, "fields": {"type": "major", "actions": "first"}},
        {"for": {"buildIDs": ["<20220402000000"]}, "fields": {"actions": "second", "disableBackgroundUpdates": True}},
    ]
    ctx = kit.FakeContext({"Firefox-100.0-build1": blob(data), "Firefox-99.0-build1": blob(FX99)})
    line = head(kit.answer(ctx, "Firefox-100.0-build1", win_query(kit, "99.0", "20220401000000", "de")))
    assert line == ('    <update actions="second" appVersion="100.0" buildID="20220502000000" '
                    'disableBackgroundUpdates="true" displayVersion="100.0" type="major">')
    line = head(kit.answer(ctx, "Firefox-100.0-build1", win_query(kit, "99.0", "20220501000000", "de")))
    assert 'actions="first"' in line and "disableBackgroundUpdates" not in line


def test_v9_attributes_sort_by_code_point(kit):
    data = copy.deepcopy(FX100)
    data["updateLine"] = [{"for": {}, "fields": {"disableBackgroundUpdates": True, "disableBITS": True,
                                                 "showPrompt": False, "isOSUpdate": False}}]
    ctx = kit.FakeContext({"Firefox-100.0-build1": blob(data)})
    line = head(kit.answer(ctx, "Firefox-100.0-build1", win_query(kit, "98.0", "1", "fr")))
    assert line == ('    <update appVersion="100.0" buildID="20220502000000" disableBITS="true" '
                    'disableBackgroundUpdates="true" displayVersion="100.0" isOSUpdate="false" showPrompt="false" '
                    'type="minor">')


def test_v9_empty_condition_lists_never_match(kit):
    data = copy.deepcopy(FX100)
    data["updateLine"] = [{"for": {"locales": []}, "fields": {"actions": "x"}}]
    ctx = kit.FakeContext({"Firefox-100.0-build1": blob(data)})
    assert "actions" not in kit.answer(ctx, "Firefox-100.0-build1", win_query(kit, "98.0", "1", "fr"))


def test_v9_bad_version_expression_in_blob_never_matches(kit):
    data = copy.deepcopy(FX100)
    data["updateLine"] = [{"for": {"versions": ["<100.0b1"]}, "fields": {"actions": "x"}}]
    ctx = kit.FakeContext({"Firefox-100.0-build1": blob(data)})
    assert "actions" not in kit.answer(ctx, "Firefox-100.0-build1", win_query(kit, "98.0", "1", "fr"))


# --- Example B: V4 channel blocks ------------------------------------------------------------------

FX50 = {
    "name": "Firefox-50.0-build1", "schema_version": 4, "hashFunction": "sha512",
    "appVersion": "50.0", "displayVersion": "50.0", "platformVersion": "50.0",
    "fileUrls": {
        "beta": {"completes": {"*": "https://archive.mozilla.org/beta/%LOCALE%/%OS_FTP%/complete.mar"},
                 "partials": {"Firefox-49.0-build1": "https://archive.mozilla.org/beta/%LOCALE%/%OS_FTP%/partial-49.mar"}},
        "*": {"completes": {"*": "https://archive.mozilla.org/any/%LOCALE%/%os_ftp%/complete.mar"}},
    },
    "platforms": {"Linux_x86-gcc3": {"buildID": "20161101000000", "OS_FTP": "linux-i686", "OS_BOUNCER": "linux",
                                     "locales": {"en-US": {
                                         "completes": [{"from": "*", "filesize": 9, "hashValue": "c9"}],
                                         "partials": [
                                             {"from": "Firefox-48.0-build1", "filesize": 5, "hashValue": "p48"},
                                             {"from": "Firefox-49.0-build1", "filesize": 6, "hashValue": "p49"}]}}}},
}


def stub(name, version, build_id, schema_version=4, target="Linux_x86-gcc3", locale="en-US"):
    """A release that only exists as a partial's `from`."""
    return blob({"name": name, "schema_version": schema_version, "appVersion": version,
                 "platforms": {target: {"buildID": build_id, "locales": {locale: {}}}}})


@pytest.fixture
def ctx_b(kit):
    return kit.FakeContext({"Firefox-50.0-build1": blob(FX50),
                            "Firefox-49.0-build1": stub("Firefox-49.0-build1", "49.0", "20161001000000"),
                            "Firefox-48.0-build1": stub("Firefox-48.0-build1", "48.0", "20160901000000")})


B_BETA = ('<?xml version="1.0"?>\n<updates>\n'
          '    <update type="minor" displayVersion="50.0" appVersion="50.0" platformVersion="50.0" buildID="20161101000000">\n'
          '        <patch type="complete" URL="https://archive.mozilla.org/beta/en-US/linux-i686/complete.mar" hashFunction="sha512" hashValue="c9" size="9"/>\n'
          '        <patch type="partial" URL="https://archive.mozilla.org/beta/en-US/linux-i686/partial-49.mar" hashFunction="sha512" hashValue="p49" size="6"/>\n'
          '    </update>\n</updates>')


@pytest.mark.parametrize("channel", ["beta", "beta-cck-foo"])
def test_example_b1_b2_second_partial_through_channel_or_fallback(kit, ctx_b, channel):
    q = kit.query(version="49.0", build_id="20161001000000", target="Linux_x86-gcc3", locale="en-US", channel=channel)
    body = kit.answer(ctx_b, "Firefox-50.0-build1", q)
    assert body == B_BETA and len(body.encode()) == 468


def test_example_b3_catch_all_block_without_partials(kit, ctx_b):
    q = kit.query(version="48.0", build_id="20160901000000", target="Linux_x86-gcc3", locale="en-US",
                  channel="aurora")
    body = kit.answer(ctx_b, "Firefox-50.0-build1", q)
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n'
        '    <update type="minor" displayVersion="50.0" appVersion="50.0" platformVersion="50.0" buildID="20161101000000">\n'
        '        <patch type="complete" URL="https://archive.mozilla.org/any/en-US/linux-i686/complete.mar" hashFunction="sha512" hashValue="c9" size="9"/>\n'
        '    </update>\n</updates>')
    assert len(body.encode()) == 317


def test_v4_channel_block_is_final(kit):
    """A `beta` block lacking the partial does not fall through to `*`."""
    data = copy.deepcopy(FX50)
    data["fileUrls"]["*"]["partials"] = {"Firefox-48.0-build1": "https://archive.mozilla.org/any/p48.mar"}
    data["fileUrls"]["beta"]["partials"] = {}
    ctx = kit.FakeContext({"Firefox-50.0-build1": blob(data),
                           "Firefox-48.0-build1": stub("Firefox-48.0-build1", "48.0", "20160901000000")})
    q = kit.query(version="48.0", build_id="20160901000000", target="Linux_x86-gcc3", locale="en-US", channel="beta")
    assert 'type="partial"' not in kit.answer(ctx, "Firefox-50.0-build1", q)
    q = q.replace(channel="aurora")
    assert "https://archive.mozilla.org/any/p48.mar" in kit.answer(ctx, "Firefox-50.0-build1", q)


def test_partial_skipped_when_from_release_lacks_the_locale_or_is_unknown(kit):
    """The reference crashes (500) on a from-release without the client's locale; we skip the patch."""
    ctx = kit.FakeContext({"Firefox-50.0-build1": blob(FX50),
                           "Firefox-49.0-build1": stub("Firefox-49.0-build1", "49.0", "20161001000000", locale="de")})
    q = kit.query(version="49.0", build_id="20161001000000", target="Linux_x86-gcc3", locale="en-US", channel="beta")
    body = kit.answer(ctx, "Firefox-50.0-build1", q)
    assert 'type="complete"' in body and 'type="partial"' not in body


def test_numeric_from_build_id_never_matches(kit):
    from_blob = blob({"name": "Firefox-49.0-build1", "schema_version": 4,
                      "platforms": {"Linux_x86-gcc3": {"buildID": 20161001000000, "locales": {"en-US": {}}}}})
    ctx = kit.FakeContext({"Firefox-50.0-build1": blob(FX50), "Firefox-49.0-build1": from_blob})
    q = kit.query(version="49.0", build_id="20161001000000", target="Linux_x86-gcc3", locale="en-US", channel="beta")
    assert 'type="partial"' not in kit.answer(ctx, "Firefox-50.0-build1", q)
    assert from_blob.build_id("Linux_x86-gcc3", "en-US") is None


def test_missing_os_ftp_skips_templated_patches_only(kit):
    """The reference fails with 500 when a template is used without OS_FTP/OS_BOUNCER."""
    data = copy.deepcopy(FX50)
    del data["platforms"]["Linux_x86-gcc3"]["OS_BOUNCER"]
    data["platforms"]["Linux_x86-gcc3"]["locales"]["en-US"]["partials"][1]["fileUrl"] = \
        "https://archive.mozilla.org/explicit-%LOCALE%.mar"
    ctx = kit.FakeContext({"Firefox-50.0-build1": blob(data),
                           "Firefox-49.0-build1": stub("Firefox-49.0-build1", "49.0", "20161001000000")})
    q = kit.query(version="49.0", build_id="20161001000000", target="Linux_x86-gcc3", locale="en-US", channel="beta")
    body = kit.answer(ctx, "Firefox-50.0-build1", q)
    assert 'type="complete"' not in body
    # fileUrl is used verbatim: no placeholder substitution.
    assert 'URL="https://archive.mozilla.org/explicit-%LOCALE%.mar"' in body


# --- Example C: V6 and Example D: V8 -------------------------------------------------------------

TB60 = {
    "name": "Thunderbird-60.0-build1", "schema_version": 6, "hashFunction": "sha512",
    "appVersion": "60.0", "displayVersion": "60.0",
    "detailsUrl": "https://www.thunderbird.net/%LOCALE%/thunderbird/60.0/releasenotes/",
    "showPrompt": True, "promptWaitTime": 43200,
    "fileUrls": {
        "release": {"completes": {"*": "https://archive.mozilla.org/pub/thunderbird/60.0/%OS_FTP%/%LOCALE%.complete.mar"}},
        "beta": {"completes": {"*": "https://archive.mozilla.org/pub/thunderbird/beta/%OS_FTP%/%LOCALE%.complete.mar"}},
    },
    "platforms": {"Linux_x86_64-gcc3": {"buildID": "20180801000000", "OS_FTP": "linux-x86_64", "OS_BOUNCER": "linux64",
                                        "locales": {"en-US": {"completes": [
                                            {"from": "*", "filesize": 4500, "hashValue": "aa11"}]}}}},
}


def test_example_c_v6_prints_platform_version_none(kit):
    ctx = kit.FakeContext({"tb": blob(TB60)})
    q = kit.query(product="Thunderbird", version="52.9.1", build_id="20180701000000", target="Linux_x86_64-gcc3",
                  locale="en-US")
    body = kit.answer(ctx, "tb", q)
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n'
        '    <update type="minor" displayVersion="60.0" appVersion="60.0" platformVersion="None" buildID="20180801000000" detailsURL="https://www.thunderbird.net/en-US/thunderbird/60.0/releasenotes/" showPrompt="true" promptWaitTime="43200">\n'
        '        <patch type="complete" URL="https://archive.mozilla.org/pub/thunderbird/60.0/linux-x86_64/en-US.complete.mar" hashFunction="sha512" hashValue="aa11" size="4500"/>\n'
        '    </update>\n</updates>')
    assert len(body.encode()) == 460


FX56 = {
    "name": "Firefox-56.0-build1", "schema_version": 8, "hashFunction": "sha512",
    "appVersion": "56.0", "displayVersion": "56.0",
    "detailsUrl": "https://www.mozilla.org/%LOCALE%/firefox/56.0/releasenotes/",
    "binTransMerkleRoot": "mroot", "binTransCertificate": "cert", "binTransSCTList": "sct",
    "fileUrls": {"*": {"completes": {"*": "https://archive.mozilla.org/c/%LOCALE%.mar"}}},
    "platforms": {"Darwin_x86_64-gcc3-u-i386-x86_64": {
        "buildID": "20170918210324", "OS_FTP": "mac", "OS_BOUNCER": "osx",
        "locales": {"en-US": {"completes": [{"from": "*", "filesize": 1, "hashValue": "h1",
                                             "binTransInclusionProof": "proof1"}]}}}},
}


def test_example_d_v8_binary_transparency(kit):
    ctx = kit.FakeContext({"fx56": blob(FX56)})
    q = kit.query(version="55.0", build_id="20170801000000", target="Darwin_x86_64-gcc3-u-i386-x86_64",
                  locale="en-US", channel="v8chan")
    body = kit.answer(ctx, "fx56", q)
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n'
        '    <update type="minor" displayVersion="56.0" appVersion="56.0" platformVersion="None" buildID="20170918210324" detailsURL="https://www.mozilla.org/en-US/firefox/56.0/releasenotes/" binTransMerkleRoot="mroot" binTransCertificate="cert" binTransSCTList="sct">\n'
        '        <patch type="complete" URL="https://archive.mozilla.org/c/en-US.mar" hashFunction="sha512" hashValue="h1" size="1" binTransInclusionProof="proof1"/>\n'
        '    </update>\n</updates>')
    assert len(body.encode()) == 473


# --- Example E: V5 -------------------------------------------------------------------------------

FX19 = {
    "name": "Firefox-19.0-build1", "schema_version": 5, "hashFunction": "sha512",
    "appVersion": "19.0", "displayVersion": "19.0", "platformVersion": "19.0",
    "detailsUrl": "https://www.mozilla.org/%LOCALE%/firefox/19.0/releasenotes/",
    "licenseUrl": "https://www.mozilla.org/%LOCALE%/license",
    "billboardURL": "https://www.mozilla.org/%LOCALE%/billboard",
    "showPrompt": False, "showNeverForVersion": False, "actions": "silent",
    "openURL": "https://o/%LOCALE%", "notificationURL": "https://n/%LOCALE%", "alertURL": "https://a/%LOCALE%",
    "promptWaitTime": 100,
    "fileUrls": {"*": {"completes": {"*": "https://archive.mozilla.org/19/%LOCALE%.mar"}}},
    "platforms": {"Linux_x86-gcc3": {"buildID": "20130215130331", "OS_FTP": "linux-i686", "OS_BOUNCER": "linux",
                                     "locales": {"en-GB": {"displayVersion": "19.0 (en-GB)", "completes": [
                                         {"from": "*", "filesize": "77", "hashValue": "c19"}]}}}},
}


def test_example_e_v5_every_optional_attribute(kit):
    ctx = kit.FakeContext({"fx19": blob(FX19)})
    q = kit.query(version="18.0", build_id="20130101000000", target="Linux_x86-gcc3", locale="en-GB",
                  channel="v5chan")
    body = kit.answer(ctx, "fx19", q)
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n'
        '    <update type="minor" displayVersion="19.0 (en-GB)" appVersion="19.0" platformVersion="19.0" buildID="20130215130331" detailsURL="https://www.mozilla.org/en-GB/firefox/19.0/releasenotes/" licenseURL="https://www.mozilla.org/en-GB/license" billboardURL="https://www.mozilla.org/en-GB/billboard" showPrompt="false" showNeverForVersion="false" actions="silent" openURL="https://o/en-GB" notificationURL="https://n/en-GB" alertURL="https://a/en-GB" promptWaitTime="100">\n'
        '        <patch type="complete" URL="https://archive.mozilla.org/19/en-GB.mar" hashFunction="sha512" hashValue="c19" size="77"/>\n'
        '    </update>\n</updates>')
    assert len(body.encode()) == 654


def test_float_prompt_wait_time_and_missing_versions_print_like_python(kit):
    data = copy.deepcopy(FX19)
    data["promptWaitTime"] = 12.0
    del data["displayVersion"], data["platformVersion"]
    data["platforms"]["Linux_x86-gcc3"]["locales"]["en-GB"].pop("displayVersion")
    ctx = kit.FakeContext({"fx19": blob(data)})
    line = head(kit.answer(ctx, "fx19", kit.query(version="18.0", target="Linux_x86-gcc3", locale="en-GB")))
    assert 'displayVersion="None"' in line and 'platformVersion="None"' in line
    assert line.endswith(' promptWaitTime="12.0">')


# --- Example F: V3 ----------------------------------------------------------------------------------

FX10 = {
    "name": "Firefox-10.0-build1", "schema_version": 3, "hashFunction": "sha512",
    "appVersion": "10.0", "displayVersion": "10.0", "platformVersion": "10.0",
    "fileUrls": {"release": "http://download.mozilla.org/?product=%PRODUCT%&os=%OS_BOUNCER%&lang=%LOCALE%",
                 "releasetest": "http://archive.mozilla.org/%OS_FTP%/%LOCALE%/%FILENAME%"},
    "bouncerProducts": {"completes": {"*": "firefox-10.0-complete"},
                        "partials": {"Firefox-9.0-build1": "firefox-10.0-partial-9.0"}},
    "ftpFilenames": {"completes": {"*": "firefox-10.0.complete.mar"},
                     "partials": {"Firefox-9.0-build1": "firefox-9.0-10.0.partial.mar"}},
    "platforms": {"WINNT_x86-msvc": {"buildID": "20120129021758", "OS_FTP": "win32", "OS_BOUNCER": "win",
                                     "locales": {"ja": {
                                         "completes": [{"from": "*", "filesize": 100, "hashValue": "c10"}],
                                         "partials": [{"from": "Firefox-9.0-build1", "filesize": 50,
                                                       "hashValue": "p9"}]}}}},
}


@pytest.fixture
def ctx_f(kit):
    return kit.FakeContext({"Firefox-10.0-build1": blob(FX10),
                            "Firefox-9.0-build1": stub("Firefox-9.0-build1", "9.0", "20111216140209", 3,
                                                       "WINNT_x86-msvc", "ja")})


def test_example_f1_bouncer_products(kit, ctx_f):
    q = kit.query(version="9.0", build_id="20111216140209", target="WINNT_x86-msvc", locale="ja")
    body = kit.answer(ctx_f, "Firefox-10.0-build1", q)
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n'
        '    <update type="minor" displayVersion="10.0" appVersion="10.0" platformVersion="10.0" buildID="20120129021758">\n'
        '        <patch type="complete" URL="http://download.mozilla.org/?product=firefox-10.0-complete&amp;os=win&amp;lang=ja" hashFunction="sha512" hashValue="c10" size="100"/>\n'
        '        <patch type="partial" URL="http://download.mozilla.org/?product=firefox-10.0-partial-9.0&amp;os=win&amp;lang=ja" hashFunction="sha512" hashValue="p9" size="50"/>\n'
        '    </update>\n</updates>')
    assert len(body.encode()) == 510


def test_example_f2_ftp_filenames_force_not_on_special_host(kit, ctx_f):
    q = kit.query(version="9.0", build_id="20111216140209", target="WINNT_x86-msvc", locale="ja",
                  channel="releasetest", force=Force.MAIN)
    body = kit.answer(ctx_f, "Firefox-10.0-build1", q)
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n'
        '    <update type="minor" displayVersion="10.0" appVersion="10.0" platformVersion="10.0" buildID="20120129021758">\n'
        '        <patch type="complete" URL="http://archive.mozilla.org/win32/ja/firefox-10.0.complete.mar" hashFunction="sha512" hashValue="c10" size="100"/>\n'
        '        <patch type="partial" URL="http://archive.mozilla.org/win32/ja/firefox-9.0-10.0.partial.mar" hashFunction="sha512" hashValue="p9" size="50"/>\n'
        '    </update>\n</updates>')
    assert len(body.encode()) == 470


def test_v3_channel_without_template_skips_patches(kit, ctx_f):
    """V1–V3 have no catch-all: the reference fails with 500, we leave the patches out."""
    q = kit.query(version="9.0", build_id="20111216140209", target="WINNT_x86-msvc", locale="ja", channel="aurora")
    body = kit.answer(ctx_f, "Firefox-10.0-build1", q)
    assert "<patch" not in body and body.endswith("    </update>\n</updates>")


def test_force_minus_one_on_special_host(kit, ctx_f):
    q = kit.query(version="9.0", build_id="20111216140209", target="WINNT_x86-msvc", locale="ja",
                  force=Force.FALLBACK)
    assert "lang=ja&amp;force=-1" in kit.answer(ctx_f, "Firefox-10.0-build1", q)


# --- Example G: V1 with oldVersionSpecialCases --------------------------------------------------

FX3628 = {
    "name": "Firefox-3.6.28-build1", "schema_version": 1, "hashFunction": "sha512",
    "appv": "3.6.28", "extv": "3.6.28",
    "detailsUrl": "https://www.mozilla.com/%LOCALE%/firefox/3.6.28/details/",
    "oldVersionSpecialCases": True,
    "fileUrls": {"release": "http://download.mozilla.org/?product=%PRODUCT%&os=%OS_BOUNCER%&lang=%LOCALE%"},
    "bouncerProducts": {"complete": "firefox-3.6.28-complete", "partial": "firefox-3.6.28-partial-3.6.27"},
    "ftpFilenames": {"complete": "firefox-3.6.28.complete.mar", "partial": "firefox-3.6.27-3.6.28.partial.mar"},
    "platforms": {"Darwin_Universal-gcc3": {"buildID": "20120306134411", "OS_BOUNCER": "osx", "OS_FTP": "mac",
                                            "locales": {"en-US": {
                                                "complete": {"from": "*", "filesize": 18000000, "hashValue": "c3628"},
                                                "partial": {"from": "Firefox-3.6.27-build1", "filesize": 900000,
                                                            "hashValue": "p3627"}}}}},
}
FX3627 = {"name": "Firefox-3.6.27-build1", "schema_version": 1, "extv": "3.6.27",
          "platforms": {"Darwin_Universal-gcc3": {"buildID": "20120208060813", "locales": {"en-US": {}}}}}
G_COMPLETE = ('        <patch type="complete" URL="http://download.mozilla.org/?product=firefox-3.6.28-complete&amp;'
              'os=osx&amp;lang=en-US{force}" hashFunction="sha512" hashValue="c3628" size="18000000"/>')
G_DETAILS = 'detailsURL="https://www.mozilla.com/en-US/firefox/3.6.28/details/"'


@pytest.fixture
def ctx_g(kit):
    return kit.FakeContext({b["name"]: blob(b) for b in (FX3628, FX3627)})


def g_answer(kit, ctx, version, build_id, **kw):
    q = kit.query(version=version, build_id=build_id, target="Darwin_Universal-gcc3", locale="en-US", **kw)
    return kit.answer(ctx, "Firefox-3.6.28-build1", q)


def test_example_g1_extension_version_becomes_query_version(kit, ctx_g):
    body = g_answer(kit, ctx_g, "3.6.27", "20120208060813")
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n'
        f'    <update type="minor" version="3.6.28" extensionVersion="3.6.27" buildID="20120306134411" {G_DETAILS}>\n'
        + G_COMPLETE.format(force="") + "\n"
        '        <patch type="partial" URL="http://download.mozilla.org/?product=firefox-3.6.28-partial-3.6.27&amp;os=osx&amp;lang=en-US" hashFunction="sha512" hashValue="p3627" size="900000"/>\n'
        '    </update>\n</updates>')
    assert len(body.encode()) == 584


@pytest.mark.parametrize("version,build_id,version_attr,force,size", [
    ("3.0.19", "20100101000000", "3.0.19", None, 373),  # G2: version replaced, extensionVersion removed
    ("3.5.19", "20100101000000", "3.6.28", None, 373),  # G3: extensionVersion removed only
    ("2.0.0.20", "2008121709", "2.0.0.20", Force.MAIN, 387),  # G4: four-part version, force=1
])
def test_example_g2_to_g4(kit, ctx_g, version, build_id, version_attr, force, size):
    body = g_answer(kit, ctx_g, version, build_id, force=force)
    assert body == (
        '<?xml version="1.0"?>\n<updates>\n'
        f'    <update type="minor" version="{version_attr}" buildID="20120306134411" {G_DETAILS}>\n'
        + G_COMPLETE.format(force="&amp;force=1" if force else "") + "\n    </update>\n</updates>")
    assert len(body.encode()) == size


def test_v1_without_special_cases_and_older_than_2(kit):
    data = dict(FX3628, oldVersionSpecialCases=False, licenseUrl="https://l/%locale%")
    ctx = kit.FakeContext({"fx": blob(data)})
    line = head(kit.answer(ctx, "fx", kit.query(version="3.0.19", build_id="1", target="Darwin_Universal-gcc3",
                                                  locale="en-US")))
    assert line == (f'    <update type="minor" version="3.6.28" extensionVersion="3.6.28" buildID="20120306134411" '
                    f'{G_DETAILS} licenseURL="https://l/en-US">')
    ctx = kit.FakeContext({"fx": blob(FX3628)})
    line = head(kit.answer(ctx, "fx", kit.query(version="1.5.0.12", build_id="1", target="Darwin_Universal-gcc3",
                                                  locale="en-US")))
    assert 'version="3.6.28" extensionVersion="3.6.28"' in line


def test_v1_v2_filename_and_product_fallback_to_empty(kit):
    data = copy.deepcopy(FX3628)
    data["fileUrls"]["release"] = "http://download.mozilla.org/%OS_FTP%/[%FILENAME%][%product%]/%locale%"
    del data["bouncerProducts"], data["ftpFilenames"]["complete"]
    ctx = kit.FakeContext({"fx": blob(data)})
    body = kit.answer(ctx, "fx", kit.query(version="3.6.20", build_id="1", target="Darwin_Universal-gcc3",
                                           locale="en-US", channel="release-cck-x"))
    assert 'URL="http://download.mozilla.org/mac/[][]/en-US"' in body


# --- Example H: every URL forbidden -----------------------------------------------------------------

def test_example_h_update_element_stays_when_all_patches_are_forbidden(kit):
    evil = {"name": "Evil-1.0", "schema_version": 9, "hashFunction": "sha512", "appVersion": "2.0",
            "displayVersion": "2.0", "updateLine": [],
            "platforms": {"p": {"buildID": "20", "locales": {"l": {"completes": [
                {"from": "*", "filesize": 1, "hashValue": "x", "fileUrl": "https://evil.com/x.mar"}]}}}}}
    ctx = kit.FakeContext({"Evil-1.0": blob(evil)})
    body = kit.answer(ctx, "Evil-1.0", kit.query(version="1.0", build_id="10", channel="evil"))
    assert body == ('<?xml version="1.0"?>\n<updates>\n'
                    '    <update appVersion="2.0" buildID="20" displayVersion="2.0" type="minor">\n'
                    '    </update>\n</updates>')
    assert len(body.encode()) == 133


def test_first_renderable_entry_of_each_kind_wins(kit):
    data = {"name": "r", "schema_version": 9, "hashFunction": "sha512", "appVersion": "2.0", "displayVersion": "2.0",
            "platforms": {"p": {"buildID": "20", "locales": {"l": {
                "completes": [{"from": "*", "filesize": 1, "hashValue": "bad", "fileUrl": "https://evil.com/c"},
                              {"from": "*", "filesize": 2, "hashValue": "good", "fileUrl": "https://good.com/c"},
                              {"from": "*", "filesize": 3, "hashValue": "late", "fileUrl": "https://good.com/d"}],
                "partials": [{"from": "nope", "filesize": 4, "hashValue": "p", "fileUrl": "https://good.com/p"}]}}}}}
    ctx = kit.FakeContext({"r": blob(data)})
    body = kit.answer(ctx, "r", kit.query(product="GMP", version="1.0", build_id="10"))
    assert body.count("<patch") == 1 and 'hashValue="good"' in body


# --- serve check (rule-matching.md §7.1, §8) ----------------------------------------------------------

SIMPLE = {"name": "r2", "schema_version": 9, "hashFunction": "sha512", "appVersion": "2.0", "displayVersion": "2.0",
          "platforms": {"p": {"buildID": "20", "locales": {"l": {}}}, "pa": {"alias": "p"},
                        "dangling": {"alias": "gone"}}}


@pytest.mark.parametrize("version,build_id,expected", [
    ("2.0", "10", Serve.YES),  # same version, newer build
    ("2.0", "20", Serve.NO),
    ("2.0", "30", Serve.NO),
    ("2.0", "9", Serve.NO),  # "9" >= "20" as strings
    ("3.0", "1", Serve.NO),
    ("2.0.0", "10", Serve.YES),
    ("1.0", "99", Serve.YES),
])
def test_serve_check_table(kit, version, build_id, expected):
    ctx = kit.FakeContext()
    assert blob(SIMPLE).should_serve(kit.query(version=version, build_id=build_id), ctx) is expected


def test_serve_check_errors_and_absent_platforms(kit):
    r, ctx = blob(SIMPLE), kit.FakeContext()
    assert r.should_serve(kit.query(version="1.0", target="q"), ctx) is Serve.NO
    with pytest.raises(BadRequest, match=r"^Can't find platform '%s' q$"):
        r.should_serve(kit.query(version="2.0", build_id="10", target="q"), ctx)
    with pytest.raises(BadRequest, match=r"^No such locale 'zz' in platform 'p'$"):
        r.should_serve(kit.query(version="2.0", build_id="10", target="pa", locale="zz"), ctx)
    # Older client, locale missing: served by the check, refused while rendering.
    q = kit.query(version="1.0", locale="zz")
    assert r.should_serve(q, ctx) is Serve.YES
    with pytest.raises(BadRequest, match=r"^No such locale 'zz' in platform 'p'$"):
        r.render_xml(q, "minor", ctx)
    # An alias to a missing platform names the alias target.
    q = kit.query(version="1.0", target="dangling")
    assert r.should_serve(q, ctx) is Serve.YES
    with pytest.raises(BadRequest, match=r"^No such locale 'l' in platform 'gone'$"):
        r.render_xml(q, "minor", ctx)
    with pytest.raises(BadRequest, match=r"^Version number 60\.0b1 is invalid\.$"):
        r.should_serve(kit.query(version="60.0b1"), ctx)
    for missing in ({"buildID": None}, {"locale": None}):
        assert r.should_serve(kit.query(version="1.0").replace(**missing), ctx) is Serve.NO


def test_serve_check_without_version_or_with_numeric_build_id(kit):
    ctx = kit.FakeContext()
    data = copy.deepcopy(SIMPLE)
    del data["appVersion"]
    assert blob(data).should_serve(kit.query(version="1.0"), ctx) is Serve.NO
    data["platforms"]["p"]["locales"]["l"]["appVersion"] = "2.0"  # the locale level overrides
    assert blob(data).should_serve(kit.query(version="1.0"), ctx) is Serve.YES
    data = copy.deepcopy(SIMPLE)
    data["platforms"]["p"]["buildID"] = 20
    assert blob(data).should_serve(kit.query(version="2.0", build_id="10"), ctx) is Serve.NO  # reference: 500
    line = head(kit.answer(kit.FakeContext({"r": blob(data)}), "r", kit.query(version="1.0")))
    assert 'buildID="20"' in line


def test_v1_serve_check_uses_extv(kit):
    ctx = kit.FakeContext()
    r = blob(FX3628)
    assert r.should_serve(kit.query(version="3.6.28", build_id="20120306134410", target="Darwin_Universal-gcc3",
                                    locale="en-US"), ctx) is Serve.YES
    assert blob(dict(FX3628, extv="3.0")).should_serve(
        kit.query(version="3.6", target="Darwin_Universal-gcc3", locale="en-US"), ctx) is Serve.NO


@pytest.mark.parametrize("pin,expected", [("1.", Serve.MAYBE), ("1.9.", Serve.MAYBE), ("2.", Serve.YES),
                                          ("2.0.", Serve.YES), ("3.", Serve.YES)])
def test_pins(kit, pin, expected):
    assert blob(SIMPLE).should_serve(kit.query(version="1.0", pin=pin), kit.FakeContext()) is expected


def test_invalid_pin_only_when_reached(kit):
    r, ctx = blob(SIMPLE), kit.FakeContext()
    with pytest.raises(BadRequest, match=r"^Version Pin String '2' is invalid\.$"):
        r.should_serve(kit.query(version="1.0", pin="2"), ctx)
    assert r.should_serve(kit.query(version="3.0", pin="2"), ctx) is Serve.NO
    assert r.should_serve(kit.query(version="1.0", target="q", pin="2"), ctx) is Serve.NO


# --- snapshot-building hooks --------------------------------------------------------------------------

def test_referenced_releases_build_ids_and_aliases():
    fx = blob(FX100)
    assert set(fx.referenced_releases()) == {"Firefox-99.0-build1"}
    assert set(blob(FX3628).referenced_releases()) == {"Firefox-3.6.27-build1"}
    assert fx.platform_aliases() == {"WINNT_x86_64-msvc-x64": "WINNT_x86_64-msvc"}
    assert fx.build_id("WINNT_x86_64-msvc-x64", "de") == "20220502000000"
    assert fx.build_id("WINNT_x86_64-msvc", "it") is None
    assert fx.build_id("Linux", "de") is None
    assert blob(FX50).build_id("Linux_x86-gcc3", "en-US") == "20161101000000"  # platform-level default


def test_hook_returns_every_version():
    assert sorted(cls.schema_version for cls in balrog_blob_types()) == [1, 2, 3, 4, 5, 6, 8, 9]
    assert all(cls.content == "xml" for cls in APP_RELEASE_TYPES)


def test_blob_from_alias_platform_uses_candidates(kit):
    """The from-release may know the build under the alias name only."""
    from_blob = blob({"name": "Firefox-99.0-build1", "schema_version": 9,
                      "platforms": {"WINNT_x86_64-msvc-x64": {"locales": {"de": {"buildID": "20220401000000"}}}}})
    ctx = kit.FakeContext({"Firefox-100.0-build1": blob(FX100), "Firefox-99.0-build1": from_blob})
    q = kit.query(version="99.0", build_id="20220401000000", target="WINNT_x86_64-msvc", locale="de")
    assert 'type="partial"' in kit.answer(ctx, "Firefox-100.0-build1", q)


# --- schemas ----------------------------------------------------------------------------------------

def refusal(data) -> dict:
    with pytest.raises(BlobValidationError) as info:
        TYPES[data["schema_version"]].validate(data)
    return {path: msg for path, msg in _flat(info.value.errors)}


def _flat(errors):
    from balrog_engine import flatten_errors
    return flatten_errors(errors)


EXAMPLES = {1: FX3628, 3: FX10, 4: FX50, 5: FX19, 6: TB60, 8: FX56, 9: FX100}


@pytest.mark.parametrize("version", sorted(EXAMPLES))
def test_examples_validate(version):
    TYPES[version].validate(EXAMPLES[version])


def _v2_example():
    data = copy.deepcopy(FX3628)
    for key in ("appv", "extv", "oldVersionSpecialCases"):
        del data[key]
    data.update(schema_version=2, appVersion="3.6.28", displayVersion="3.6.28", showPrompt=True, actions="silent")
    return data


def test_v2_example_validates():
    TYPES[2].validate(_v2_example())


@pytest.mark.parametrize("data", [FX3628, _v2_example(), FX10, FX50, FX19, TB60, FX56, FX100],
                         ids=lambda d: f"v{d['schema_version']}")
def test_missing_hash_function_and_unknown_field(data):
    bad = copy.deepcopy(data)
    del bad["hashFunction"]
    bad["extra"] = 1
    errors = refusal(bad)
    assert errors["hashFunction"] == "Missing data for required field."
    assert errors["extra"] == "Unknown field."


def test_hash_function_optional_for_from_only_stubs():
    for version in TYPES:
        TYPES[version].validate({"name": "s", "schema_version": version,
                                 "platforms": {"p": {"buildID": "5", "locales": {"l": {}}}}})


@pytest.mark.parametrize("version,field", [
    (1, "appVersion"), (1, "actions"), (2, "appv"), (2, "promptWaitTime"), (3, "oldVersionSpecialCases"),
    (4, "ftpFilenames"), (5, "binTransMerkleRoot"), (6, "billboardURL"), (6, "licenseUrl"), (8, "updateLine"),
    (9, "detailsUrl"), (9, "actions"), (9, "showPrompt"),
])
def test_fields_outside_their_versions(version, field):
    data = {"name": "x", "schema_version": version, "platforms": {}, field: "x"}
    assert refusal(data)[field] == "Unknown field."


def test_bad_partial_entries_name_their_path():
    bad = copy.deepcopy(FX10)
    bad["platforms"]["WINNT_x86-msvc"]["locales"]["ja"]["partials"][0] = {"from": "", "filesize": "5x",
                                                                          "hashValue": 3, "url": "u"}
    errors = refusal(bad)
    prefix = "platforms.WINNT_x86-msvc.locales.ja.partials[0]."
    assert set(errors) == {prefix + k for k in ("from", "filesize", "hashValue", "url")}


def test_v8_patches_and_bin_trans_fields():
    bad = copy.deepcopy(FX56)
    entry = bad["platforms"]["Darwin_x86_64-gcc3-u-i386-x86_64"]["locales"]["en-US"]["completes"][0]
    entry["binTransInclusionProof"] = 5
    bad["binTransSCTList"] = ["sct"]
    errors = refusal(bad)
    assert set(errors) == {"binTransSCTList",
                           "platforms.Darwin_x86_64-gcc3-u-i386-x86_64.locales.en-US.completes[0].binTransInclusionProof"}
    # Pre-V8 patches cannot carry a proof.
    bad = copy.deepcopy(FX19)
    bad["platforms"]["Linux_x86-gcc3"]["locales"]["en-GB"]["completes"][0]["binTransInclusionProof"] = "p"
    assert list(refusal(bad)) == ["platforms.Linux_x86-gcc3.locales.en-GB.completes[0].binTransInclusionProof"]


def test_v8_patch_without_inclusion_proof_is_accepted():
    """The spec calls the V8 proof required, but the reference's recorded V8 scenario
    (apprelease-every-schema-version, p4-2.0-v8 locale de) stores and serves a patch without one;
    recordings win over the spec, so the proof is optional."""
    data = copy.deepcopy(FX56)
    del data["platforms"]["Darwin_x86_64-gcc3-u-i386-x86_64"]["locales"]["en-US"]["completes"][0][
        "binTransInclusionProof"]
    TYPES[8].validate(data)


@pytest.mark.parametrize("mutate,path", [
    (lambda d: d.update(showPrompt="yes"), "showPrompt"),
    (lambda d: d.update(promptWaitTime="100"), "promptWaitTime"),
    (lambda d: d.update(schema_version=5, name=""), "name"),
    (lambda d: d["platforms"]["Linux_x86-gcc3"].update(buildID="2013-02-15"), "platforms.Linux_x86-gcc3.buildID"),
    (lambda d: d["platforms"]["Linux_x86-gcc3"]["locales"]["en-GB"].update(isOSUpdate=1),
     "platforms.Linux_x86-gcc3.locales.en-GB.isOSUpdate"),
    (lambda d: d["platforms"]["Linux_x86-gcc3"]["locales"]["en-GB"].update(completes={}),
     "platforms.Linux_x86-gcc3.locales.en-GB.completes"),
    (lambda d: d["platforms"].update(alias={"alias": "x", "buildID": "1"}), "platforms.alias.buildID"),
    (lambda d: d["fileUrls"].update(beta="https://x"), "fileUrls.beta"),
    (lambda d: d["fileUrls"]["*"].update(completes=["x"]), "fileUrls.*.completes"),
])
def test_wrong_types_v5(mutate, path):
    data = copy.deepcopy(FX19)
    mutate(data)
    assert path in refusal(data)


@pytest.mark.parametrize("mutate,path", [
    (lambda d: d["platforms"]["Darwin_Universal-gcc3"]["locales"]["en-US"]["complete"].update(from_="x"),
     "platforms.Darwin_Universal-gcc3.locales.en-US.complete.from_"),
    (lambda d: d["platforms"]["Darwin_Universal-gcc3"]["locales"]["en-US"]["complete"].update({"from": "x"}),
     "platforms.Darwin_Universal-gcc3.locales.en-US.complete.from"),
    (lambda d: d["platforms"]["Darwin_Universal-gcc3"]["locales"]["en-US"].update(partials=[]),
     "platforms.Darwin_Universal-gcc3.locales.en-US.partials"),
    (lambda d: d.update(fileUrls={"release": {"completes": {}}}), "fileUrls.release"),
    (lambda d: d.update(bouncerProducts={"completes": {}}), "bouncerProducts.completes"),
    (lambda d: d.update(fakePartials=2), "fakePartials"),
])
def test_v1_shapes(mutate, path):
    data = copy.deepcopy(FX3628)
    mutate(data)
    assert path in refusal(data)


def test_v1_fake_partials_may_be_stored_as_integers():
    TYPES[1].validate(dict(FX3628, fakePartials=0))
    TYPES[1].validate(dict(FX3628, fakePartials=True))


@pytest.mark.parametrize("line,path", [
    ({"for": {}, "fields": {"type": "huge"}}, "updateLine[0].fields.type"),
    ({"for": {}, "fields": {"disableBITS": False}}, "updateLine[0].fields.disableBITS"),
    ({"for": {"os": ["x"]}, "fields": {}}, "updateLine[0].for.os"),
    ({"for": {"locales": "de"}, "fields": {}}, "updateLine[0].for.locales"),
    ({"fields": {}}, "updateLine[0].for"),
    ({"for": {}, "fields": {"licenseURL": "x"}}, "updateLine[0].fields.licenseURL"),
])
def test_v9_update_line_refusals(line, path):
    data = copy.deepcopy(FX100)
    data["updateLine"] = [line]
    assert path in refusal(data)


def test_v9_update_line_as_empty_object_is_accepted():
    TYPES[9].validate({"name": "h1", "schema_version": 9, "updateLine": {}, "platforms": {}})
    assert "updateLine" in refusal({"name": "h1", "schema_version": 9, "updateLine": {"a": 1}, "platforms": {}})


def test_schema_version_must_match_the_type():
    for wrong in (5, 4.0, "4", True):
        with pytest.raises(BlobValidationError, match="schema_version"):
            TYPES[4].validate(dict(FX50, schema_version=wrong))


# --- every app-release blob in the shared data --------------------------------------------------------

@pytest.mark.shared_blobs(*TYPES)
def test_shared_blobs_validate_and_index(data):
    TYPES[data["schema_version"]].validate(data)
    TYPES[data["schema_version"]](data["name"], data)
