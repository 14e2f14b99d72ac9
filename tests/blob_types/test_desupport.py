"""The desupport blob (schema 50): always served, one `unsupported` line (blob-types.md §4)."""
from __future__ import annotations

import pytest

from balrog_engine import BlobValidationError, Force, Serve
from balrog_plugins.blob_types.desupport import DesupportBlob, balrog_blob_types

XP = {"name": "Firefox-desupport-winxp", "schema_version": 50,
      "detailsUrl": "https://support.mozilla.org/%LOCALE%/kb/xp?v=%VERSION%&os=%OS%", "displayVersion": "52.9.0esr"}


def test_spec_example(kit):
    ctx = kit.FakeContext({"xp": DesupportBlob("xp", XP)})
    q = kit.query(version="52.9.0", build_id="20180621121604", target="WINNT_x86-msvc", locale="en-US",
                  osVersion="Windows_NT 5.1.3.0 (x86)")
    body = kit.answer(ctx, "xp", q, update_type="major")
    assert body == ('<?xml version="1.0"?>\n<updates>\n\n'
                    '    <update type="major" unsupported="true" detailsURL="https://support.mozilla.org/en-US/kb/xp?'
                    'v=52.9.0&amp;os=WINNT" displayVersion="52.9.0esr">\n</update>\n</updates>')
    assert len(body.encode()) == 200


def test_always_served_pins_and_versions_ignored(kit):
    blob, ctx = DesupportBlob("xp", XP), kit.FakeContext()
    for q in (kit.query(version="999.0"), kit.query(version="not-a-version", pin="junk"),
              kit.query(version="1.0", build_id=None, locale=None)):
        assert blob.should_serve(q, ctx) is Serve.YES


def test_lower_case_placeholders_substitution_order_and_no_allowlist(kit):
    data = dict(XP, detailsUrl="https://evil.com/%locale%/%version%/%os%/%OS%%LOCALE%")
    ctx = kit.FakeContext({"d": DesupportBlob("d", data)}, allowlist={})
    q = kit.query(version="3.6.28", target="Darwin_Universal-gcc3", locale="de", force=Force.MAIN)
    parts = ctx.release("d").blob.render_xml(q, "minor", ctx)
    assert parts.header == "" and parts.footer == "</update>"
    assert parts.lines == ('    <update type="minor" unsupported="true" '
                           'detailsURL="https://evil.com/de/3.6.28/Darwin/Darwinde" displayVersion="52.9.0esr">',)


def test_build_target_without_underscore_is_the_os(kit):
    q = kit.query(target="Linux", locale="fr")
    line = DesupportBlob("d", dict(XP, detailsUrl="%OS%")).render_xml(q, "minor", kit.FakeContext()).lines[0]
    assert 'detailsURL="Linux"' in line


def test_hook_and_defaults():
    assert balrog_blob_types() == (DesupportBlob,)
    blob = DesupportBlob("d", XP)
    assert list(blob.referenced_releases()) == [] and blob.build_id("p", "l") is None


@pytest.mark.parametrize("data,path", [
    ({k: v for k, v in XP.items() if k != "detailsUrl"}, "detailsUrl"),
    ({k: v for k, v in XP.items() if k != "displayVersion"}, "displayVersion"),
    (dict(XP, displayVersion=52), "displayVersion"),
    (dict(XP, hashFunction="sha512"), "hashFunction"),
    (dict(XP, schema_version=9), "schema_version"),
    ({k: v for k, v in XP.items() if k != "name"}, "name"),
])
def test_schema_refusals(data, path):
    with pytest.raises(BlobValidationError) as info:
        DesupportBlob.validate(data)
    assert path in info.value.errors


@pytest.mark.shared_blobs(50)
def test_shared_desupport_blobs_validate(data):
    DesupportBlob.validate(data)
