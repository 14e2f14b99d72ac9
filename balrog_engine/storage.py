"""The storage contract that backends (``plugins/storage/``) implement.

The public server reads storage only to build snapshots, so the read side is
small: whole tables of rules, shutoffs and pins, releases by name, and a cheap
change counter that moves on every write. The write side here is the
first cut (datasets replace everything, single-row upserts); versioned writes
with history come later and extend this class.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

# Rule columns in the order the reference's read-only API prints them.
RULE_COLUMNS: tuple[str, ...] = (
    "rule_id", "alias", "priority", "mapping", "fallbackMapping", "backgroundRate", "update_type",
    "product", "version", "channel", "buildTarget", "buildID", "locale", "osVersion", "memory",
    "instructionSet", "jaws", "mig64", "distribution", "distVersion", "headerArchitecture",
    "comment", "data_version",
)


@dataclass(frozen=True)
class StoredRelease:
    name: str
    product: str | None
    data: Mapping[str, Any]
    data_version: int = 1
    read_only: bool = False


@dataclass
class Dataset:
    """Everything a server needs, in the scenario format of shared/conformance/README.md."""

    rules: list[dict] = field(default_factory=list)
    releases: list[StoredRelease] = field(default_factory=list)
    pins: list[dict] = field(default_factory=list)
    emergency_shutoffs: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)


class Storage:
    """Base class of storage backends. Rows are plain dicts keyed by the reference's column names."""

    url: str = ""

    # --- read side (snapshot building, read-only API) -----------------------------------
    def rules(self) -> list[dict]:
        """Every rule, each with all of :data:`RULE_COLUMNS` (None for NULL)."""
        raise NotImplementedError

    def releases(self, names: Iterable[str]) -> dict[str, StoredRelease]:
        """The named releases that exist (unknown names are simply absent)."""
        raise NotImplementedError

    def release_summaries(self) -> list[dict]:
        """``[{"name", "product", "data_version", "read_only"}]`` for every release, without blobs."""
        raise NotImplementedError

    def shutoffs(self) -> list[dict]:
        """``[{"product", "channel", "comment", "data_version"}]``."""
        raise NotImplementedError

    def pins(self) -> list[dict]:
        """``[{"product", "channel", "version", "mapping", "data_version"}]``."""
        raise NotImplementedError

    def rule_history(self, rule_id: int) -> list[dict]:
        """Past and present versions of a rule, newest first: rule columns plus
        ``change_id``, ``changed_by`` and ``timestamp`` (ms since epoch). Empty if unknown."""
        return []

    def settings(self) -> dict:
        """Deployment settings stored with the data (``allowlisted_domains``, ``special_force_hosts``)."""
        raise NotImplementedError

    def change_counter(self) -> int:
        """A number that changes whenever anything above changes. Must be cheap: it is polled."""
        raise NotImplementedError

    def ping(self) -> bool:
        """True when the backend is reachable."""
        return True

    # --- write side (first cut) ----------------------------------------------------------
    def replace_all(self, dataset: Dataset) -> None:
        """Replace every table with ``dataset`` in one transaction."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def normalise_rule(row: Mapping[str, Any]) -> dict:
    """A rule row with every column present (missing ones None) and no unknown keys."""
    rule = {column: row.get(column) for column in RULE_COLUMNS}
    if rule["data_version"] is None:
        rule["data_version"] = 1
    return rule
