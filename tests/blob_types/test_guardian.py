"""Guardian blobs (schema 10000, JSON only): blob-types.md §8, loose versions, schema refusals."""
from __future__ import annotations

import copy
import json

import pytest

from balrog_engine import BadRequest, Serve, UpdateQuery
from balrog_plugins.blob_types import guardian
from balrog_plugins.blob_types.guardian import GuardianBlob

GUARDIAN = {
    "name": "Guardian-2.0.0.0",
    "product": "Guardian",
    "schema_version": 10000,
    "version": "2.0.0.0",
    "required": False,
    "hashFunction": "sha512",
    "platforms": {
        "WINNT_x86_64": {"fileUrl": "https://good.com/guardian-2.0.0.0.msi", "hashValue": "g1"},
        "Darwin_x86_64": {"fileUrl": "https://evil.com/guardian-2.0.0.0.pkg", "hashValue": "g2"},
    },
}


@pytest.fixture
def ctx(kit):
    return kit.AllowlistContext({"good.com": ["Guardian"]})


def query(version, build_target="WINNT_x86_64", product="Guardian", protocol=1):
    return UpdateQuery(product=product, version=version, buildTarget=build_target, channel="release",
                       buildID=None, locale=None, osVersion="" if protocol == 1 else "Windows 10",
                       distribution=None, instructionSet=None, queryVersion=protocol, kind="json")


BLOB = GuardianBlob("Guardian-2.0.0.0", GUARDIAN)
BODY = ('{"version": "2.0.0.0", "url": "https://good.com/guardian-2.0.0.0.msi", "required": false, '
        '"hashFunction": "sha512", "hashValue": "g1"}')


@pytest.mark.parametrize("protocol", [1, 2])
def test_worked_example(protocol, ctx):
    q = query("1.9.0.0", protocol=protocol)
    assert BLOB.should_serve(q, ctx) is Serve.YES
    assert BLOB.render_json(q, ctx) == BODY
    assert len(BODY) == 134


def test_forbidden_url_gives_empty_object(ctx):
    q = query("1.10.0.0", build_target="Darwin_x86_64")
    assert BLOB.should_serve(q, ctx) is Serve.YES
    assert BLOB.render_json(q, ctx) == "{}"


def test_allowlist_uses_query_product(ctx):
    assert BLOB.render_json(query("1.0", product="FirefoxVPN"), ctx) == "{}"


@pytest.mark.parametrize("version, serve", [
    ("2.0.0.0", Serve.NO),  # same version
    ("2.0.0.1", Serve.NO),
    ("10.0", Serve.NO),
    ("1.99.99.99", Serve.YES),
    ("2.0.0", Serve.YES),  # a shorter prefix is smaller for loose versions
    ("2.0.0.0a", Serve.NO),  # longer than the blob's version: newer
    ("2.0.a", Serve.NO),  # "a" vs 0: not comparable (the reference 500s)
    ("garbage", Serve.NO),
])
def test_loose_version_serve_check(version, serve, ctx):
    assert BLOB.should_serve(query(version), ctx) is serve


def test_unknown_platform_is_not_served(ctx):
    assert BLOB.should_serve(query("1.0", build_target="Linux_x86_64"), ctx) is Serve.NO


def test_loose_ordering_two_digit_components(ctx):
    data = dict(GUARDIAN, version="2.10.0")
    assert GuardianBlob("g", data).should_serve(query("2.9.10"), ctx) is Serve.YES


def test_unicode_is_escaped(ctx):
    data = copy.deepcopy(GUARDIAN)
    data["platforms"]["WINNT_x86_64"]["hashValue"] = "h\u00e9"
    body = GuardianBlob("g", data).render_json(query("1.0"), ctx)
    assert body.endswith('"hashValue": "h\\u00e9"}')


def test_missing_required_is_not_served(ctx):
    data = dict(GUARDIAN)
    del data["required"]
    GuardianBlob.validate(data)  # optional in the reference's schema, but it cannot render without it
    assert GuardianBlob("g", data).should_serve(query("1.0"), ctx) is Serve.NO


def test_xml_endpoint_is_a_bad_request(ctx):
    with pytest.raises(BadRequest, match="Wrong blob type"):
        BLOB.render_xml(query("1.0"), "minor", ctx)
    assert GuardianBlob.content == "json"
    assert guardian.balrog_blob_types() == [GuardianBlob]


# --- schema ---------------------------------------------------------------------------------------

def test_worked_example_validates():
    GuardianBlob.validate(GUARDIAN)


@pytest.mark.parametrize("mutate, path", [
    (lambda d: d.pop("product"), "product"),
    (lambda d: d.pop("version"), "version"),
    (lambda d: d.pop("hashFunction"), "hashFunction"),
    (lambda d: d.pop("platforms"), "platforms"),
    (lambda d: d.update(required="no"), "required"),
    (lambda d: d["platforms"]["WINNT_x86_64"].pop("fileUrl"), "platforms.WINNT_x86_64.fileUrl"),
    (lambda d: d["platforms"]["WINNT_x86_64"].pop("hashValue"), "platforms.WINNT_x86_64.hashValue"),
    (lambda d: d["platforms"].update(x={"alias": "WINNT_x86_64"}), "platforms.x.alias"),
    (lambda d: d["platforms"]["WINNT_x86_64"].update(filesize=3), "platforms.WINNT_x86_64.filesize"),
    (lambda d: d.update(schema_version=1000), "schema_version"),
    (lambda d: d.update(extra=1), "extra"),
])
def test_schema_refusals(kit, mutate, path):
    assert f"{path}:" in kit.refusal(GuardianBlob, GUARDIAN, mutate)


# --- real data ----------------------------------------------------------------------------------

@pytest.mark.shared_blobs(10000)
def test_real_blobs_validate_and_render(data, ctx):
    GuardianBlob.validate(data)
    blob = GuardianBlob(data["name"], data)
    for target in data["platforms"]:
        json.loads(blob.render_json(query("0.1", build_target=target), ctx))
