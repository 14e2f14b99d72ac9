"""In-process storage backend for tests, demos and single-process deployments.

Each :class:`MemoryStorage` is an independent database (two ``memory://`` URLs never
share data). It enforces the same uniqueness rules as the SQL schema and stores
release blobs and settings as compact JSON text, exactly like the SQL backend: that
is the cheapest deep copy in both directions (``json.loads`` beats ``copy.deepcopy``
on large blobs) and it makes both backends hand back identical values, so the shared
contract tests hold for both.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from balrog_engine import hookimpl
from balrog_engine.storage import (
    Dataset,
    DatasetRejected,
    LOAD_USER,
    Storage,
    StoredRelease,
    booleans_as_bool,
    dump_json,
    normalise_rules,
    pin_row,
    release_row,
    shutoff_row,
    stored_release,
)



@dataclass
class _Tables:
    """One consistent state of the database; replaced wholesale by each write."""

    rules: dict[int, dict] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    releases: dict[str, dict] = field(default_factory=dict)  # blob kept as JSON text under "data"
    shutoffs: dict[tuple, dict] = field(default_factory=dict)
    pins: dict[tuple, dict] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # JSON text


class MemoryStorage(Storage):
    """Plain dicts behind a lock. Rows are copied on the way in and out (row values are
    scalars, so ``dict(row)`` is a deep copy) so callers cannot mutate stored state."""

    def __init__(self, url: str = "memory://"):
        self.url = url
        self._lock = threading.Lock()
        self._tables = _Tables()
        self._counter = 0
        self._next_change_id = 1

    # --- read side -------------------------------------------------------------------------
    def rules(self) -> list[dict]:
        with self._lock:
            return [dict(self._tables.rules[rule_id]) for rule_id in sorted(self._tables.rules)]

    def releases(self, names: Iterable[str]) -> dict[str, StoredRelease]:
        with self._lock:
            stored = self._tables.releases
            rows = [stored[name] for name in set(names) if name in stored]
        return {row["name"]: stored_release(row) for row in rows}  # parse outside the lock

    def release_summaries(self) -> list[dict]:
        with self._lock:
            rows = list(self._tables.releases.values())  # creation order, as the reference lists them
            return [{k: row[k] for k in ("name", "product", "data_version", "read_only")} for row in rows]

    def shutoffs(self) -> list[dict]:
        with self._lock:
            return [dict(row) for _, row in sorted(self._tables.shutoffs.items())]

    def pins(self) -> list[dict]:
        with self._lock:
            return [dict(row) for _, row in sorted(self._tables.pins.items())]

    def rule_history(self, rule_id: int) -> list[dict]:
        with self._lock:
            rows = [dict(row) for row in self._tables.history if row["rule_id"] == rule_id]
        return sorted(rows, key=lambda row: row["change_id"], reverse=True)

    def settings(self) -> dict:
        with self._lock:
            stored = dict(self._tables.settings)
        return {key: json.loads(value) for key, value in stored.items()}

    def change_counter(self) -> int:
        return self._counter

    # --- write side ------------------------------------------------------------------------
    def replace_all(self, dataset: Dataset) -> None:
        """Build the new tables completely, then swap them in: a dataset that breaks a
        uniqueness rule raises :class:`DatasetRejected` before anything is replaced."""
        with self._lock:
            tables = self._build_tables(dataset)
            self._tables = tables
            self._counter += 1

    def _build_tables(self, dataset: Dataset) -> _Tables:
        tables = _Tables()
        for rule in normalise_rules(dataset.rules):
            _put(tables.rules, rule["rule_id"], booleans_as_bool(rule), "rule_id")
        _check_unique_aliases(tables.rules.values())
        for release in dataset.releases:
            _put(tables.releases, release.name, release_row(release), "release name")
        for row in dataset.emergency_shutoffs:
            shutoff = shutoff_row(row)
            _put(tables.shutoffs, (shutoff["product"], shutoff["channel"]), shutoff, "shutoff")
        for row in dataset.pins:
            pin = pin_row(row)
            _put(tables.pins, (pin["product"], pin["channel"], pin["version"]), pin, "pin")
        tables.settings = {key: dump_json(value) for key, value in dataset.config.items()}
        tables.history = self._load_history(tables.rules.values())
        return tables

    def _load_history(self, rules: Iterable[dict]) -> list[dict]:
        """One history row per loaded rule. Change ids keep counting across loads, like a
        database sequence, and are only consumed once the dataset has been validated."""
        timestamp = int(time.time() * 1000)
        history = []
        for rule in rules:
            history.append({**rule, "change_id": self._next_change_id, "changed_by": LOAD_USER, "timestamp": timestamp})
            self._next_change_id += 1
        return history


# --- rows ---------------------------------------------------------------------------------------
def _put(table: dict, key: Any, row: dict, what: str) -> None:
    if key in table:
        raise DatasetRejected(f"dataset rejected: duplicate {what} {key!r}")
    table[key] = row


def _check_unique_aliases(rules: Iterable[dict]) -> None:
    seen: set[str] = set()
    for rule in rules:
        alias = rule["alias"]
        if alias is not None and alias in seen:
            raise DatasetRejected(f"dataset rejected: duplicate rule alias {alias!r}")
        seen.add(alias)


@hookimpl
def balrog_storage_backends():
    return {"memory": MemoryStorage}
