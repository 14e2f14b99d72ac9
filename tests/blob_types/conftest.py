"""Shared helpers for blob-type unit tests: a tiny RenderContext and document assembly."""
from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any, Mapping
from urllib.parse import urlsplit

import pytest

from balrog_engine import Release, Serve, UpdateQuery, XmlParts

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


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above, for test modules (conftest modules are not importable by name)."""
    return SimpleNamespace(FakeContext=FakeContext, document=document, answer=answer, query=query, EMPTY=EMPTY)
