"""Releases v2 (balrog_app.admin.releases_v2): the recorded transcripts replayed in process with
every admin family mounted (the default of ``create_admin_app``), on memory:// and a SQLite file."""
from __future__ import annotations

import pytest
from falcon import testing

from balrog_app.admin.app import create_admin_app
from tests.app.admin.conftest import Replay


class FullReplay(Replay):
    """:class:`Replay` with every family (and the transcript's allowlisted domains)."""

    def __init__(self, name, url, tmp_path):
        super().__init__(name, url, tmp_path)
        self.ctx.allowlisted_domains = self.transcript.config.get("allowlisted_domains", {})
        self.client = testing.TestClient(create_admin_app(self.ctx))


@pytest.fixture(params=[pytest.param("memory://", id="memory"), pytest.param("sqlite:///{tmp}/admin.db", id="sqlite")])
def full(request, tmp_path):
    opened = []

    def open_(name):
        opened.append(FullReplay(name, request.param, tmp_path))
        return opened[-1]

    yield open_
    for r in opened:
        r.close()


@pytest.mark.parametrize("name", ["releases-v2-basic", "pins-v2"])
def test_transcript(full, name):
    r = full(name)
    assert len(r.run()) == len(r.transcript.steps)


# --- beyond the transcripts ------------------------------------------------------------------------------
NAME = "Firefox-80.0-build1"


def _call(r, method, path, user=None, json=None):
    token = r.tokens.get(user) if user else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return r.client.simulate_request(method, path, headers=headers, json=json)


def _created(full):
    """releases-v2-basic up to the creation of NAME (step 2)."""
    r = full("releases-v2-basic")
    r.run(range(3))
    return r


def test_scheduling_is_refused_not_written(full):
    r = _created(full)
    result = _call(r, "POST", f"/v2/releases/{NAME}", "alice@example.com",
                   {"blob": {"displayVersion": "x"}, "old_data_versions": {".": 1}, "when": 4102444800000})
    assert result.status_code == 400
    assert _call(r, "GET", f"/v2/releases/{NAME}").json["blob"]["displayVersion"] == "80.0"
    result = _call(r, "POST", f"/v2/releases/{NAME}", "alice@example.com",
                   {"blob": {"displayVersion": "x"}, "old_data_versions": {".": 1}, "when": None})
    assert result.status_code == 200 and result.json == {".": 2}


def test_put_replaces_and_reports_only_changed_parts(full):
    r = _created(full)
    blob = _call(r, "GET", f"/v2/releases/{NAME}").json["blob"]
    del blob["platforms"]["Linux_x86_64-gcc3"]["locales"]["de"]
    blob["platforms"]["WINNT_x86_64-msvc"]["locales"]["de"]["buildID"] = "20200101000000"
    result = _call(r, "PUT", f"/v2/releases/{NAME}", "alice@example.com", {
        "blob": blob, "old_data_versions": {"platforms": {"WINNT_x86_64-msvc": {"locales": {"de": 1}}}}})
    assert result.status_code == 200
    assert result.json == {"platforms": {"WINNT_x86_64-msvc": {"locales": {"de": 2}}}}
    versions = _call(r, "GET", f"/v2/releases/{NAME}/data_versions").json["data_versions"]
    assert versions == {".": 1, "platforms": {"Linux_x86_64-gcc3": {"locales": {"en-US": 1}},
                                              "WINNT_x86_64-msvc": {"locales": {"de": 2, "en-US": 1}}}}
    # the v1 reads see the v2 release, locale included
    locale = _call(r, "GET", f"/releases/{NAME}/builds/WINNT_x86_64-msvc/de")
    assert locale.status_code == 200 and locale.json["buildID"] == "20200101000000"
    assert _call(r, "GET", f"/releases/{NAME}/builds/Linux_x86_64-gcc3/de").status_code == 404


def test_signoff_required_when_a_mapped_rule_requires_it(full):
    r = _created(full)
    with r.storage.session("admin@example.com") as s:
        s.insert("rules", {"priority": 100, "backgroundRate": 100, "update_type": "minor", "product": "Firefox",
                           "channel": "release", "mapping": NAME})
        s.insert("product_req_signoffs", {"product": "Firefox", "channel": "release", "role": "relman",
                                          "signoffs_required": 1})
    result = _call(r, "POST", f"/v2/releases/{NAME}", "alice@example.com",
                   {"blob": {"displayVersion": "x"}, "old_data_versions": {".": 1}})
    assert result.status_code == 400 and result.json["detail"] == "Signoff Required"
    listed = _call(r, "GET", "/v2/releases").json["releases"][0]
    assert listed["rule_info"] == {"1": {"product": "Firefox", "channel": "release"}}
    assert listed["required_signoffs"] == {"relman": 1} and listed["product_required_signoffs"] == {"relman": 1}
    result = _call(r, "DELETE", f"/v2/releases/{NAME}", "alice@example.com")
    assert result.status_code == 400 and result.json["detail"] == "Unknown error"
