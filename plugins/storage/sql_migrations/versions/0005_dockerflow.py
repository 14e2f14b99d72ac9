"""The admin heartbeat's shared counter: ``dockerflow`` (one ``watchdog`` row), as the reference has.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    options = context.config.attributes["sql"].TABLE_OPTIONS
    op.create_table("dockerflow", sa.Column("watchdog", sa.Integer, primary_key=True, autoincrement=False),
                    **options)


def downgrade() -> None:
    op.drop_table("dockerflow")
