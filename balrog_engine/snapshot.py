"""The immutable snapshot the public side answers from.

Built from storage in one go: the compiled rule index, the releases that can be
served (named by a rule, a pin, or referenced by another servable release) parsed
once by their blob types, shutoffs, pins and the URL allowlist. A snapshot is
never mutated; a newer one replaces it (see :class:`SnapshotHolder`).
"""
from __future__ import annotations

import gc
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from .allowlist import Allowlist
from .blobs import Evaluation, Release
from .evaluation import evaluate
from .plugins import PluginRegistry
from .query import UpdateQuery
from .rules import RuleIndex
from .storage import Storage, StoredRelease

log = logging.getLogger("balrog.snapshot")


@dataclass(frozen=True)
class DeploymentSettings:
    """The settings that change what the public side answers (public-api.md §11)."""

    allowlisted_domains: Mapping[str, Any] = field(default_factory=dict)
    special_force_hosts: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> "DeploymentSettings":
        return cls(
            allowlisted_domains=dict(config.get("allowlisted_domains") or {}),
            special_force_hosts=tuple(config.get("special_force_hosts") or ()),
        )


class Snapshot:
    """Everything needed to answer update requests, and the blobs' RenderContext."""

    def __init__(
        self,
        rules: Iterable[Mapping[str, Any]],
        releases: Mapping[str, Release],
        shutoffs: Iterable[tuple[str, str]],
        pins: Mapping[tuple[str, str, str], str],
        settings: DeploymentSettings,
        *,
        change_counter: int = 0,
        roll: Callable[[], int] | None = None,
        load_errors: Sequence[str] = (),
    ):
        self.index = RuleIndex(rules)
        self.releases = dict(releases)
        self.shutoffs = frozenset(shutoffs)
        self.pins = dict(pins)
        self.settings = settings
        self.allowlist = Allowlist(settings.allowlisted_domains)
        self.special_force_hosts = settings.special_force_hosts
        self.change_counter = change_counter
        self.built_at = time.time()
        self.load_errors = tuple(load_errors)
        self._roll = roll or (lambda: random.randrange(100))
        self._dice = threading.local()
        self.known_products = frozenset(p for p in self.index.products() if p is not None)
        self.known_channels = frozenset(c for c in self.index.channels() if c is not None and "*" not in c)

    def roll(self) -> int:
        """The backgroundRate dice. Remembered per thread so callers know an answer was random."""
        self._dice.rolled = True
        return self._roll()

    def take_rolled(self) -> bool:
        """True if the dice were rolled on this thread since the last call (and forget it)."""
        rolled = getattr(self._dice, "rolled", False)
        self._dice.rolled = False
        return rolled

    # --- RenderContext ---------------------------------------------------------------------
    def release(self, name: str) -> Release | None:
        return self.releases.get(name)

    def is_forbidden(self, url: str, product: str) -> bool:
        return self.allowlist.is_forbidden(url, product)

    def evaluate(self, query: UpdateQuery) -> Evaluation:
        return evaluate(self, query)

    # --- lookups ---------------------------------------------------------------------------
    def is_shut_off(self, product: str, channel: str, fallback: str) -> bool:
        return (product, channel) in self.shutoffs or (product, fallback) in self.shutoffs

    def pinned_release(self, product: str, fallback_channel: str, pin: str) -> str | None:
        return self.pins.get((product, fallback_channel, pin))

    def __len__(self) -> int:
        return len(self.index)


def parse_release(stored: StoredRelease, registry: PluginRegistry) -> Release:
    """Parse one stored release with its blob type; raises on unknown types or broken blobs."""
    data = stored.data
    schema_version = data.get("schema_version") if isinstance(data, Mapping) else None
    blob_type = registry.blob_type(schema_version)
    if blob_type is None:
        raise ValueError(f"release {stored.name!r}: no blob type for schema_version {schema_version!r}")
    blob = blob_type(stored.name, data)
    return Release(stored.name, stored.product, stored.data_version, blob, stored.read_only)


def reachable_release_names(rules: Iterable[Mapping[str, Any]], pins: Iterable[Mapping[str, Any]]) -> set[str]:
    names = set()
    for rule in rules:
        for column in ("mapping", "fallbackMapping"):
            if rule.get(column):
                names.add(rule[column])
    for pin in pins:
        if pin.get("mapping"):
            names.add(pin["mapping"])
    return names


def build_snapshot(
    storage: Storage,
    registry: PluginRegistry,
    overrides: Mapping[str, Any] | None = None,
    roll: Callable[[], int] | None = None,
) -> Snapshot:
    """Read storage once and build a snapshot.

    Only servable releases are loaded: those named by rules and pins, then, transitively,
    those their blobs reference (partial ``from`` releases, superblob members). A release
    that fails to parse is left out and reported in ``load_errors``; the rest still serve.
    """
    with storage.consistent_reads():
        counter = storage.change_counter()
        rules = storage.rules()
        pins = storage.pins()
        shutoffs = storage.shutoffs()
        config = dict(storage.settings())
        config.update({k: v for k, v in (overrides or {}).items() if v is not None})

        errors: list[str] = []
        releases = load_releases(storage, registry, reachable_release_names(rules, pins), errors=errors)

    return Snapshot(
        rules=rules,
        releases=releases,
        shutoffs=[(s["product"], s["channel"]) for s in shutoffs],
        pins={(p["product"], p["channel"], p["version"]): p["mapping"] for p in pins},
        settings=DeploymentSettings.from_mapping(config),
        change_counter=counter,
        roll=roll,
        load_errors=errors,
    )


def load_releases(storage: Storage, registry: PluginRegistry, names: Iterable[str],
                  known: Iterable[str] = (), errors: list[str] | None = None) -> dict[str, Release]:
    """``names`` and, transitively, the releases their blobs reference (superblobs), parsed;
    names in ``known`` are not loaded again. A release that does not parse is left out (a
    broken blob must not take the whole server down), logged, and described in ``errors``."""
    found: dict[str, Release] = {}
    wanted, seen = set(names), set(known)
    while wanted:
        batch = wanted - seen
        seen |= batch
        wanted = set()
        for name, stored in storage.releases(sorted(batch)).items():
            try:
                release = parse_release(stored, registry)
            except Exception as exc:
                log.error("cannot load release %s: %s", name, exc)
                if errors is not None:
                    errors.append(f"{name}: {exc}")
                continue
            found[name] = release
            wanted.update(n for n in release.blob.referenced_releases() if n not in seen)
    return found


class SnapshotHolder:
    """Holds the current snapshot and swaps in a new one when storage changes.

    Readers just read ``holder.current`` (an attribute read is atomic). A background
    thread polls ``storage.change_counter()``; a failed rebuild keeps the old snapshot
    and records the error for the heartbeat.
    """

    def __init__(self, build: Callable[[], Snapshot], counter: Callable[[], int], interval: float = 1.0,
                 freeze_gc: bool = False):
        self._build = build
        self.freeze_gc = freeze_gc
        self._counter = counter
        self.interval = interval
        self.current: Snapshot = self._build_frozen()
        self.last_error: str | None = None
        self.last_check = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _build_frozen(self) -> Snapshot:
        """Build; in a server process, then move the (long-lived) snapshot out of the cyclic GC's sight.

        A snapshot of 100k rules is millions of objects; without freezing, every full
        collection triggered by per-request garbage would walk all of them. Freezing is
        process-wide, so only servers ask for it (``freeze_gc``), not embedders.
        """
        if not self.freeze_gc:
            return self._build()
        gc.unfreeze()
        snapshot = self._build()
        gc.collect()
        gc.freeze()
        return snapshot

    def refresh(self, force: bool = False) -> bool:
        """Rebuild if storage changed; True when a new snapshot was swapped in."""
        try:
            counter = self._counter()
            self.last_check = time.time()
            if not force and counter == self.current.change_counter:
                self.last_error = None
                return False
            snapshot = self._build_frozen()
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("snapshot refresh failed, serving the previous one: %s", self.last_error)
            return False
        self.current = snapshot
        self.last_error = None
        return True

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="balrog-snapshot", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()
