"""Testing helpers for plugin authors and embedders, shipped as a pytest plugin.

Installed with balrog-engine (entry point ``pytest11``), so in any test suite:

    def test_my_blob_type(balrog):
        engine = balrog.engine(dataset, plugins=[my_plugin_module])
        response = engine.get(balrog.update_url(product="MyApp", version="1.0", channel="release"))
        assert response.status == 200

``balrog.engine`` builds an :class:`~balrog_engine.Engine` on in-memory storage from a
scenario-format dataset (validated like ``balrog db load`` does), with extra
plugin objects registered next to the installed ones. No server, no database.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping
from urllib.parse import quote

import pytest

from .engine import Engine
from .plugins import load_plugins


def make_engine(dataset: Mapping[str, Any] | None = None, *, plugins: Iterable[Any] = (), blocked: Iterable[str] = (),
                url: str = "memory://", roll=None, validate_blobs: bool = True) -> Engine:
    """An engine holding ``dataset`` (rules, releases, pins, emergency_shutoffs, config)."""
    registry = load_plugins(blocked=blocked, extra=plugins)
    return Engine.from_dataset(dataset or {}, registry=registry, url=url, roll=roll, validate_blobs=validate_blobs)


def update_url(product: str = "Firefox", version: str = "1.0", build_id: str = "20200101000000",
               build_target: str = "WINNT_x86_64-msvc", locale: str = "en-US", channel: str = "release",
               os_version: str = "Windows_NT 10.0", system_capabilities: str = "ISET:SSE4_2,MEM:16384",
               distribution: str = "default", dist_version: str = "default", **params: str) -> str:
    """A ``/update/6/…/update.xml`` URL, percent-encoded like a client sends it."""
    segments = [product, version, build_id, build_target, locale, channel, os_version, system_capabilities,
                distribution, dist_version]
    path = "/update/6/" + "/".join(quote(s, safe=",:()") for s in segments) + "/update.xml"
    if params:
        path += "?" + "&".join(f"{k}={quote(str(v))}" for k, v in params.items())
    return path


def json_url(product: str, version: str, build_target: str, channel: str, os_version: str | None = None,
             **params: str) -> str:
    """A ``/json/1`` (or ``/json/2`` when ``os_version`` is given) URL."""
    segments = [product, version, build_target, channel] + ([os_version] if os_version is not None else [])
    path = f"/json/{1 if os_version is None else 2}/" + "/".join(quote(s) for s in segments) + "/update.json"
    if params:
        path += "?" + "&".join(f"{k}={quote(str(v))}" for k, v in params.items())
    return path


class BalrogHelper:
    """What the ``balrog`` fixture hands to a test."""

    engine = staticmethod(make_engine)
    update_url = staticmethod(update_url)
    json_url = staticmethod(json_url)


@pytest.fixture
def balrog() -> BalrogHelper:
    return BalrogHelper()
