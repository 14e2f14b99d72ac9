"""Scheduled changes: plugin conditions, and ids that are never handed out twice on SQLite.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

1. ``conditions``: a nullable JSON text column, last, in every ``<T>_scheduled_changes_conditions``
   table and in its row-layout history: the condition plugins' ``{"<name>": {params}}`` beyond
   ``when`` (NULL when a change has none).

2. On SQLite only, ``<T>_scheduled_changes`` (and ``rules``) are rebuilt with ``sc_id`` /
   ``rule_id`` as ``INTEGER PRIMARY KEY AUTOINCREMENT``. Without AUTOINCREMENT SQLite hands out the
   highest id in use plus one, so the id of a deleted newest row went to the next one, which then
   showed the deleted row's history as its own. The rebuild (alembic's batch mode: copy, drop,
   rename) keeps every row; the counter starts past every id the history tables remember, so ids
   deleted before this revision are not reused either. PostgreSQL's sequences and MySQL's
   AUTO_INCREMENT never reuse ids: nothing to do there.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: The schedulable tables at this revision (each has ``<base>_scheduled_changes[_conditions|_signoffs]``).
BASES = ("rules", "releases", "permissions", "product_req_signoffs", "permissions_req_signoffs",
         "emergency_shutoffs", "pinnable_releases", "releases_json", "release_assets")

#: table -> (its auto-increment id, the tables recording that id: the table and its companions)
NEVER_REUSED = {
    **{f"{base}_scheduled_changes": ("sc_id", tuple(f"{base}_scheduled_changes{part}{history}"
                                                     for part in ("", "_conditions", "_signoffs")
                                                     for history in ("", "_history")))
       for base in BASES},
    "rules": ("rule_id", ("rules", "rules_history")),
}


def upgrade() -> None:
    for base in BASES:
        for table in (f"{base}_scheduled_changes_conditions", f"{base}_scheduled_changes_conditions_history"):
            op.add_column(table, sa.Column("conditions", sa.Text, nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        for table, (column, recording) in NEVER_REUSED.items():
            _rebuild(table, autoincrement=True)
            _start_counter_after(table, column, recording)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in NEVER_REUSED:
            _rebuild(table, autoincrement=False)
    for base in BASES:
        for table in (f"{base}_scheduled_changes_conditions", f"{base}_scheduled_changes_conditions_history"):
            with op.batch_alter_table(table) as batch:  # SQLite before 3.35 cannot drop a column in place
                batch.drop_column("conditions")


def _rebuild(table: str, autoincrement: bool) -> None:
    """Recreate a SQLite table as it is, with or without AUTOINCREMENT on its integer key."""
    with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass


def _start_counter_after(table: str, column: str, recording: tuple[str, ...]) -> None:
    """Make SQLite's AUTOINCREMENT counter of ``table`` (its row in ``sqlite_sequence``) the
    highest ``column`` any of ``recording`` holds: the next id is one no history knows."""
    bind = op.get_bind()
    highest = max(bind.execute(sa.text(f'SELECT MAX("{column}") FROM "{name}"')).scalar() or 0 for name in recording)
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :name"), {"name": table})
    if highest:
        bind.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"),
                     {"name": table, "seq": highest})
