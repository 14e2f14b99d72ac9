"""Shared helpers for blob-type unit tests: tiny RenderContexts, document assembly, and the
blobs of the shared datasets.

``@pytest.mark.shared_blobs(*schema_versions)`` parametrizes a test's ``data`` argument with
every release blob of those schema versions in the shared datasets, the bench dataset and
the conformance scenarios (ids ``<file stem>:<release name>``).
"""
from __future__ import annotations

import copy
import glob
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

import pytest

from balrog_engine import BlobValidationError, Evaluation, Release, Serve, UpdateQuery, XmlParts
from balrog_engine.allowlist import Allowlist

SHARED = Path("/work/shared")

# The configuration of blob-types.md §3.7.
SPEC_ALLOWLIST = {
    "download.mozilla.org": ["Firefox"],
    "archive.mozilla.org": ["Firefox", "SystemAddons", "Thunderbird"],
    "ftp.mozilla.org": ["SystemAddons"],
    "ciscobinary.openh264.org": ["OpenH264"],
    "good.com": ["Guardian", "GMP", "OpenH264", "Widevine"],
}
SPEC_FORCE_HOSTS = ("http://download.mozilla.org",)
EMPTY = '<?xml version="1.0"?>\n<updates>\n</updates>'


class FakeContext:
    """Just enough of a snapshot: releases by name, a domain allowlist and special force hosts."""

    def __init__(self, blobs: Mapping[str, Any] = (), allowlist: Mapping[str, list] | None = None,
                 special_force_hosts=SPEC_FORCE_HOSTS):
        self.releases = {name: Release(name, None, 1, blob) for name, blob in dict(blobs).items()}
        self.allowlist = SPEC_ALLOWLIST if allowlist is None else allowlist
        self.special_force_hosts = tuple(special_force_hosts)

    def release(self, name: str):
        return self.releases.get(name)

    def is_forbidden(self, url: str, product: str) -> bool:
        return product not in self.allowlist.get(urlsplit(url).netloc, ())

    def evaluate(self, query):  # pragma: no cover - app releases never aggregate
        raise AssertionError("not used")


class AllowlistContext:
    """A RenderContext on the engine's real :class:`Allowlist`, with releases by name and,
    when ``rules`` is given, a one-rule-per-product ``evaluate``.

    ``rules`` maps a product to (release name, update_type); evaluation runs the release's
    serve check like the real one does, and records each query in ``evaluated``. Without
    ``rules`` (blob types that never evaluate rules) ``evaluate`` fails the test.
    """

    special_force_hosts = ()

    def __init__(self, allowlist: Mapping[str, Any], releases: Iterable[Release] = (),
                 rules: dict[str, tuple[str, str]] | None = None):
        self.allowlist = Allowlist(allowlist)
        self.releases = {r.name: r for r in releases}
        self.rules = rules
        self.evaluated: list[UpdateQuery] = []

    def release(self, name):
        return self.releases.get(name)

    def evaluate(self, query):
        if self.rules is None:
            raise AssertionError("this blob type never evaluates rules")
        self.evaluated.append(query)
        if query.product not in self.rules:
            return Evaluation(None)
        name, update_type = self.rules[query.product]
        release = self.releases.get(name)
        if release is None or release.blob.should_serve(query, self) is Serve.NO:
            return Evaluation(None, update_type, "1", "1")
        return Evaluation(release, update_type, "1", "1")

    def is_forbidden(self, url, product):
        return self.allowlist.is_forbidden(url, product)


def document(parts: XmlParts) -> str:
    text = "\n".join(('<?xml version="1.0"?>', "<updates>", parts.header, *parts.lines, parts.footer, "</updates>"))
    return re.sub(r"&(?!amp;)", "&amp;", text)


def answer(ctx: FakeContext, release: str, query: UpdateQuery, update_type: str = "minor") -> str:
    """What a client gets when a rule maps it to ``release`` (pins aside)."""
    blob = ctx.release(release).blob
    if blob.should_serve(query, ctx) is Serve.NO:
        return EMPTY
    return document(blob.render_xml(query, update_type, ctx))


def query(product="Firefox", version="1.0", build_id="1", target="p", locale="l", channel="release", **kw):
    return UpdateQuery(product=product, version=version, buildID=build_id, buildTarget=target, locale=locale,
                       channel=channel, **kw)


def refusal(blob_type, data: Mapping[str, Any], mutate=None) -> str:
    """The text of the :class:`BlobValidationError` that ``blob_type`` raises for a deep copy of
    ``data`` changed by ``mutate``; fails the test if the document is accepted."""
    data = copy.deepcopy(data)
    if mutate is not None:
        mutate(data)
    with pytest.raises(BlobValidationError) as info:
        blob_type.validate(data)
    return str(info.value)


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above, for test modules (conftest modules are not importable by name)."""
    return SimpleNamespace(FakeContext=FakeContext, AllowlistContext=AllowlistContext, document=document,
                           answer=answer, query=query, refusal=refusal, EMPTY=EMPTY)


# --- the shared datasets --------------------------------------------------------------------------

def shared_blobs(schema_versions: Iterable[int]) -> list:
    """``pytest.param(blob)`` for every release of ``schema_versions`` in the shared data."""
    wanted = set(schema_versions)
    files = sorted(glob.glob(str(SHARED / "datasets" / "*.json"))) + [str(SHARED / "bench" / "dataset.json")]
    files += sorted(glob.glob(str(SHARED / "conformance" / "*.json")))
    params = []
    for path in files:
        for release in json.loads(Path(path).read_text()).get("releases", []):
            if release["data"].get("schema_version") in wanted:
                params.append(pytest.param(release["data"], id=f"{Path(path).stem}:{release['name']}"))
    return params


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "shared_blobs(*schema_versions): parametrize `data` with those blobs of the shared data")


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("shared_blobs")
    if marker is not None:
        metafunc.parametrize("data", shared_blobs(marker.args))
