"""The storage contract that backends (``plugins/storage/``) implement.

Two sides:

- The public server reads storage only to build snapshots, so that side is small: whole
  tables of rules, shutoffs and pins, releases by name, and a cheap change counter that
  moves on every write.
- Everything else (the admin API, the agent, dumps) works in a :class:`Session`: one
  transaction over the versioned tables, with the guarantees of
  :mod:`balrog_engine.versioned` — ``data_version`` checked in the write itself, history
  written in the same transaction, any past version readable and revertible, stale
  non-overlapping writes merged.

Tables are named as in the reference database (admin-api.md, Appendix A): ``rules``,
``releases``, ``permissions``, ``user_roles``, ``product_req_signoffs``,
``permissions_req_signoffs``, ``emergency_shutoffs``, ``pinnable_releases`` and, for each
schedulable table ``T``, ``T_scheduled_changes``, ``T_scheduled_changes_conditions`` and
``T_scheduled_changes_signoffs``. Rows are plain dicts keyed by column name; JSON columns
(``releases.data``, ``permissions.options``, their ``base_`` copies) hold parsed JSON.
"""
from __future__ import annotations

import json
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

from .versioned import Change, ConflictRule, within

#: ``changed_by`` of the history rows a dataset load (``replace_all``) writes.
LOAD_USER = "balrog-load"

# Rule columns in the order the reference's read-only API prints them.
RULE_COLUMNS: tuple[str, ...] = (
    "rule_id", "alias", "priority", "mapping", "fallbackMapping", "backgroundRate", "update_type",
    "product", "version", "channel", "buildTarget", "buildID", "locale", "osVersion", "memory",
    "instructionSet", "jaws", "mig64", "distribution", "distVersion", "headerArchitecture",
    "comment", "data_version",
)


#: Rule columns that are SQL booleans: they read back as ``True``/``False`` whatever was written.
BOOLEAN_RULE_COLUMNS: tuple[str, ...] = ("jaws", "mig64")


class DatasetRejected(ValueError):
    """Raised by :meth:`Storage.replace_all` when a dataset breaks a uniqueness rule (two
    rules with one id or alias, two releases with one name, two shutoffs or pins for one
    key, …). Nothing has been replaced when it is raised. A ``ValueError``, so callers that
    catch that keep working."""


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

    def consistent_reads(self) -> AbstractContextManager[None]:
        """Within the block, the read methods above (in this thread) see one state of the
        database, whatever commits meanwhile: a snapshot is built from one consistent read, never
        from half of a write. The default does nothing, for backends that cannot."""
        return nullcontext()

    def ping(self) -> bool:
        """True when the backend is reachable."""
        return True

    def heartbeat(self) -> int:
        """Increment the liveness counter shared by every server on this database and return its
        new value (1 on a new database): the admin ``/__heartbeat__`` proves the database takes
        writes with it. It is not a data change (the change counter does not move), and it is
        neither dumped nor restored."""
        raise NotImplementedError

    # --- write side --------------------------------------------------------------------------
    def session(self, changed_by: str | None = None) -> AbstractContextManager["Session"]:
        """A transaction: ``with storage.session("alice") as s: s.update(...)``. It commits when
        the block ends normally and rolls back, leaving nothing, when it raises. Without
        ``changed_by`` the session only reads. Writing sessions run one at a time."""
        raise NotImplementedError

    def replace_all(self, dataset: Dataset) -> None:
        """Replace the contents of the database — history included — with ``dataset`` in one
        transaction: a restore, not an edit. A dataset that breaks a uniqueness rule raises
        :class:`DatasetRejected` and leaves the old contents in place."""
        raise NotImplementedError

    def dump(self) -> dict:
        """Every table, history included, as JSON-ready data that :meth:`restore` takes back exactly."""
        raise NotImplementedError

    def restore(self, dump: Mapping[str, Any]) -> None:
        """Replace the whole database with a :meth:`dump`, in one transaction; nothing is
        written if any of it is refused (:class:`DatasetRejected`)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class Session:
    """One transaction over the versioned tables (see the module docstring).

    Writes raise the :mod:`balrog_engine.versioned` errors — :class:`~balrog_engine.versioned.NotFound`,
    :class:`~balrog_engine.versioned.AlreadyExists`, :class:`~balrog_engine.versioned.StaleVersion`,
    :class:`~balrog_engine.versioned.Invalid` — each with the HTTP ``status`` an API should answer.
    Raising out of the session's ``with`` block rolls everything back.
    """

    changed_by: str | None

    @contextmanager
    def acting_as(self, username: str) -> Iterator[None]:
        """Attribute the writes of the block to ``username`` (a scheduled change is enacted, and
        merged into, on behalf of whoever scheduled it), in the same transaction."""
        previous, self.changed_by = self.changed_by, username
        try:
            yield
        finally:
            self.changed_by = previous

    def get(self, table: str, key: Mapping[str, Any]) -> dict | None:
        """The current row (every column, ``data_version`` included), or None."""
        raise NotImplementedError

    def rows(self, table: str, where: Mapping[str, Any] | None = None, order_by: Sequence[str] = (),
             limit: int | None = None, offset: int = 0) -> list[dict]:
        """Current rows whose columns equal ``where``'s values (None matches NULL), ordered by
        ``order_by`` (a leading ``-`` sorts descending; the key breaks ties)."""
        raise NotImplementedError

    def count(self, table: str, where: Mapping[str, Any] | None = None) -> int:
        raise NotImplementedError

    def insert(self, table: str, values: Mapping[str, Any]) -> dict:
        """Insert a row at data_version 1 and return its key (an auto-increment id left out of
        ``values`` is generated)."""
        raise NotImplementedError

    def update(self, table: str, key: Mapping[str, Any], values: Mapping[str, Any], old_data_version: int, *,
               conflict: ConflictRule | None = None, merge: bool = True) -> int:
        """Change the columns in ``values`` of the version the caller read; return the new
        data_version. A stale ``old_data_version`` is merged with what changed since unless
        ``merge`` is false; ``conflict`` refines what counts as a conflict (for releases:
        :func:`release_conflict_rule`)."""
        raise NotImplementedError

    def delete(self, table: str, key: Mapping[str, Any], old_data_version: int) -> None:
        raise NotImplementedError

    def version(self, table: str, key: Mapping[str, Any], data_version: int) -> dict | None:
        """The row as it was at ``data_version`` (of its current life), or None."""
        raise NotImplementedError

    def changes(self, table: str, key: Mapping[str, Any]) -> list[Change]:
        """Every history entry of one object, newest first."""
        raise NotImplementedError

    def history(self, table: str, where: Mapping[str, Any] | None = None, since: int | None = None,
                until: int | None = None, limit: int | None = None, offset: int = 0,
                versions_only: bool = True) -> list[dict]:
        """History rows, newest first: the row's columns as recorded plus ``change_id``,
        ``changed_by`` and ``timestamp``; ``where`` filters on those columns, ``since`` /
        ``until`` bound the timestamp (inclusive). ``versions_only`` leaves out placeholders
        and tombstones (rows whose ``data_version`` is NULL)."""
        raise NotImplementedError

    def history_count(self, table: str, where: Mapping[str, Any] | None = None, since: int | None = None,
                      until: int | None = None, versions_only: bool = True) -> int:
        raise NotImplementedError

    def revert(self, table: str, key: Mapping[str, Any], change_id: int) -> int:
        """Write the values recorded by history entry ``change_id`` over the current row, as a
        new change; return the new data_version. :class:`~balrog_engine.versioned.NotFound` when
        the entry is not a version of that object."""
        raise NotImplementedError


def release_conflict_rule(blob_type: Any) -> ConflictRule:
    """The conflict rule for merging stale writes of a release whose blob is of ``blob_type``:
    its ``merge_conflict`` hook, applied to paths inside the blob."""
    return within("data", blob_type.merge_conflict)


def normalise_rule(row: Mapping[str, Any]) -> dict:
    """A rule row with every column present (missing ones None) and no unknown keys."""
    rule = {column: row.get(column) for column in RULE_COLUMNS}
    if rule["data_version"] is None:
        rule["data_version"] = 1
    return rule


# --- row helpers shared by backends ---------------------------------------------------------------
# Both built-in backends turn a Dataset into the same rows, so that they hand back identical
# values (the shared contract tests hold for both).

def normalise_rules(rows: Iterable[Mapping[str, Any]]) -> list[dict]:
    """:func:`normalise_rule` for every row; rules without a ``rule_id`` are numbered after the
    highest given one, in order. (Done before writing rather than left to a database
    sequence: PostgreSQL rejects an explicit NULL primary key in a batch.)"""
    rules = [normalise_rule(row) for row in rows]
    next_id = max((rule["rule_id"] for rule in rules if rule["rule_id"] is not None), default=0) + 1
    for rule in rules:
        if rule["rule_id"] is None:
            rule["rule_id"] = next_id
            next_id += 1
    return rules


def booleans_as_bool(rule: dict) -> dict:
    """``rule`` with its non-NULL :data:`BOOLEAN_RULE_COLUMNS` turned into bools, as SQL
    Boolean columns read back (changed in place and returned)."""
    for column in BOOLEAN_RULE_COLUMNS:
        if rule[column] is not None:
            rule[column] = bool(rule[column])
    return rule


def release_row(release: StoredRelease) -> dict:
    """The stored form of a release: its blob as compact JSON text (:func:`dump_json`)."""
    return {
        "name": release.name,
        "product": release.product,
        "data": dump_json(release.data),
        "data_version": release.data_version,
        "read_only": bool(release.read_only),
    }


def stored_release(row: Mapping[str, Any]) -> StoredRelease:
    """The inverse of :func:`release_row`."""
    return StoredRelease(
        name=row["name"],
        product=row["product"],
        data=json.loads(row["data"]),
        data_version=row["data_version"],
        read_only=bool(row["read_only"]),
    )


def shutoff_row(row: Mapping[str, Any]) -> dict:
    """An emergency-shutoff row with exactly its columns (``data_version`` defaults to 1)."""
    return {
        "product": row["product"],
        "channel": row["channel"],
        "comment": row.get("comment"),
        "data_version": row.get("data_version") or 1,
    }


def pin_row(row: Mapping[str, Any]) -> dict:
    """A pinnable-release row with exactly its columns (``data_version`` defaults to 1)."""
    return {
        "product": row["product"],
        "channel": row["channel"],
        "version": row["version"],
        "mapping": row["mapping"],
        "data_version": row.get("data_version") or 1,
    }


def dump_json(value: Any) -> str:
    """Compact JSON text, as blobs and settings are stored (key order preserved)."""
    return json.dumps(value, separators=(",", ":"))
