"""Fixtures of the storage suites: ``storage`` / ``open_storage`` on every backend (see
:mod:`tests.storage.databases`)."""
from __future__ import annotations

import pytest

from balrog_engine import load_plugins
from balrog_plugins.storage import sql
from tests.storage.databases import backend_urls, empty


@pytest.fixture(scope="module")
def registry():
    """Only our two plugins, registered the way an installed third-party plugin would be."""
    return load_plugins(extra=[sql], entry_points=False)


@pytest.fixture(params=backend_urls())
def backend_url(request, tmp_path):
    return request.param.format(tmp=tmp_path)


@pytest.fixture
def open_storage(registry, backend_url):
    """``open_storage()`` opens (another) storage on the test's URL; all are closed afterwards."""
    opened = []

    def open_():
        storage = registry.storage_for(backend_url)
        opened.append(storage)
        return storage

    yield open_
    for storage in opened:
        storage.close()


@pytest.fixture
def storage(open_storage):
    storage = open_storage()
    if isinstance(storage, sql.SQLStorage) and storage.engine.dialect.name != "sqlite":
        empty(storage)  # a shared server database: start from nothing
    return storage
