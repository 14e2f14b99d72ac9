"""The :class:`Engine` façade: the update server's brain, embeddable in tests and programs.

An engine owns a storage backend, the plugin registry and a snapshot holder.
``evaluate(query)`` says which release a query gets; ``get(url)`` answers a
whole update URL exactly as the public server does (same code path).

    engine = Engine.from_dataset(json.load(open("scenario.json")))
    response = engine.get("/update/6/Firefox/99.0/…/update.xml")
    assert response.status == 200
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from .blobs import Evaluation
from .config import Settings
from .dataset import parse_dataset
from .plugins import PluginRegistry, load_plugins
from .query import UpdateQuery, decode_path
from .responses import HeaderPolicy, Protocol, Response
from .snapshot import Snapshot, SnapshotHolder, build_snapshot
from .storage import Dataset, Storage


class Engine:
    def __init__(
        self,
        storage: Storage,
        registry: PluginRegistry | None = None,
        settings: Settings | None = None,
        roll: Callable[[], int] | None = None,
        freeze_gc: bool = False,
    ):
        self.storage = storage
        self.settings = settings or Settings()
        self.registry = registry or load_plugins(blocked=self.settings.block_plugins)
        self._roll = roll
        self.holder = SnapshotHolder(self._build, storage.change_counter, self.settings.refresh_interval, freeze_gc)
        self.headers = HeaderPolicy(
            cache_control=self.settings.cache_control,
            strict_transport_security=self.settings.strict_transport_security,
            content_type_options=self.settings.content_type_options,
            content_security_policy=self.settings.content_security_policy,
        )
        self.protocol = Protocol(lambda: self.holder.current, self.registry.query_normalizers,
                                 self.registry.response_signers, cache_size=self.settings.response_cache_size)

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def from_url(cls, url: str, registry: PluginRegistry | None = None, **kwargs) -> "Engine":
        settings = kwargs.pop("settings", None) or Settings(db=url)
        registry = registry or load_plugins(blocked=settings.block_plugins)
        return cls(registry.storage_for(url), registry, settings, **kwargs)

    @classmethod
    def from_dataset(cls, dataset: Mapping[str, Any] | Dataset, registry: PluginRegistry | None = None,
                     url: str = "memory://", validate_blobs: bool = True, **kwargs) -> "Engine":
        """An engine on a fresh storage (in memory by default) holding ``dataset``."""
        settings = kwargs.pop("settings", None) or Settings(db=url)
        registry = registry or load_plugins(blocked=settings.block_plugins)
        if not isinstance(dataset, Dataset):
            dataset = parse_dataset(dataset, registry, validate_blobs=validate_blobs)
        storage = registry.storage_for(url)
        storage.replace_all(dataset)
        return cls(storage, registry, settings, **kwargs)

    def _build(self) -> Snapshot:
        return build_snapshot(self.storage, self.registry, self.settings.deployment_overrides(), self._roll)

    # --- answering -------------------------------------------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        return self.holder.current

    def evaluate(self, query: UpdateQuery) -> Evaluation:
        return self.snapshot.evaluate(query)

    def respond(self, raw_path: str, query_string: str = "", user_agent: str = "") -> Response:
        """An ``/update`` or ``/json`` request (path as sent on the wire), answered with every
        header the public server sends."""
        response = self.protocol.respond(decode_path(raw_path), query_string, user_agent)
        return dataclasses.replace(response, headers=self.headers.apply(response.headers))

    def get(self, url: str, user_agent: str = "") -> Response:
        path, _, query_string = url.partition("?")
        return self.respond(path, query_string, user_agent)

    def refresh(self, force: bool = False) -> bool:
        """Pick up storage changes now (the server also does this on a timer)."""
        return self.holder.refresh(force)

    def start(self) -> None:
        self.holder.start()

    def close(self) -> None:
        self.holder.stop()
        self.storage.close()
