"""registered clusters: their index rows and their decision history (one row per tick)

Revision ID: 0006_clusters
Revises: 0005_round_margin
Create Date: 2026-12-03 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006_clusters"
down_revision = "0005_round_margin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "clusters",
        sa.Column("name", text(length=63), nullable=False),
        sa.Column("workflow_id", text(length=200), nullable=False),
        sa.Column("kind", text(length=32), nullable=False),
        sa.Column("endpoint", text(length=1000), nullable=False),
        sa.Column("policy_class", text(length=200), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("mode", text(length=16), nullable=False),
        sa.Column("partition", text(length=200), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("status", text(length=16), nullable=False),
        sa.Column("ticks", sa.Integer(), nullable=False),
        sa.Column("failed_ticks", sa.Integer(), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=True),
        sa.Column("error", text(length=4000), nullable=True),
        sa.Column("created_at", when(), nullable=False),
        sa.Column("updated_at", when(), nullable=False),
        sa.Column("synced_at", when(), nullable=True),
        sa.Column("stopped_at", when(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("workflow_id"),
    )
    with op.batch_alter_table("clusters", schema=None) as batch_op:
        batch_op.create_index("ix_clusters_status", ["status"], unique=False)
    op.create_table(
        "cluster_ticks",
        sa.Column("cluster", text(length=63), nullable=False),
        sa.Column("tick", sa.Integer(), nullable=False),
        sa.Column("at", when(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["cluster"], ["clusters.name"]),
        sa.PrimaryKeyConstraint("cluster", "tick"),
    )


def downgrade() -> None:
    op.drop_table("cluster_ticks")
    with op.batch_alter_table("clusters", schema=None) as batch_op:
        batch_op.drop_index("ix_clusters_status")
    op.drop_table("clusters")
