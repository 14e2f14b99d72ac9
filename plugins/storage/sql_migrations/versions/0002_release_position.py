"""``releases.position``: releases keep their creation order.

Existing releases are numbered in name order, the order they were listed in before, so
listings do not change for them; releases loaded afterwards get their dataset order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NOT NULL needs a default for the existing rows (SQLite refuses ADD COLUMN … NOT NULL without one).
    op.add_column("releases", sa.Column("position", sa.Integer, nullable=False, server_default=sa.text("0")))
    Key = context.config.attributes["sql"].Key  # noqa: N806 (the storage's key type, see env.py)
    releases = sa.table("releases", sa.column("name", Key(100)), sa.column("position", sa.Integer))
    conn = op.get_bind()
    # ORDER BY on the key column: code point order on every dialect (its collation).
    names = conn.execute(sa.select(releases.c.name).order_by(releases.c.name)).scalars().all()
    if names:
        update = (sa.update(releases).where(releases.c.name == sa.bindparam("old_name"))
                  .values(position=sa.bindparam("new_position")))
        conn.execute(update, [{"old_name": name, "new_position": i} for i, name in enumerate(names)])
    # Writers always set the position, as with create_all's table. SQLite cannot drop a column
    # default without rebuilding the table, so there the (unused) default stays.
    if conn.dialect.name != "sqlite":
        op.alter_column("releases", "position", server_default=None, existing_type=sa.Integer,
                        existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("position")
