"""training schedules: their table, and the schedule that started a run

Revision ID: 0002_training_schedules
Revises: 0001
Create Date: 2026-11-24 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = "0002_training_schedules"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_schedules",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("temporal_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("every_s", sa.Integer(), nullable=True),
        sa.Column("cron", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("jitter_s", sa.Integer(), nullable=True),
        sa.Column("overlap", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("run", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("temporal_id"),
    )
    with op.batch_alter_table("training_schedules", schema=None) as batch_op:
        batch_op.create_index("ix_training_schedules_created_at", ["created_at"], unique=False)
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("schedule_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_runs_schedule_id"), ["schedule_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_schedule_id"))
        batch_op.drop_column("schedule_id")
    with op.batch_alter_table("training_schedules", schema=None) as batch_op:
        batch_op.drop_index("ix_training_schedules_created_at")
    op.drop_table("training_schedules")
