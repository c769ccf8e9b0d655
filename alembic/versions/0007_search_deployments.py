"""search deployments: a row per search deployed by PUT /policy (measured, then deployed or refused)

Revision ID: 0007_search_deployments
Revises: 0006_clusters
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007_search_deployments"
down_revision = "0006_clusters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    when = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        "search_deployments",
        sa.Column("id", text(length=64), nullable=False),
        sa.Column("workflow_id", text(length=200), nullable=False),
        sa.Column("policy_class", text(length=200), nullable=False),
        sa.Column("policy", text(length=200), nullable=False),
        sa.Column("force", sa.Boolean(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("status", text(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", text(length=4000), nullable=True),
        sa.Column("created_at", when(), nullable=False),
        sa.Column("finished_at", when(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("search_deployments", schema=None) as batch_op:
        batch_op.create_index("ix_search_deployments_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_search_deployments_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("search_deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_search_deployments_status")
        batch_op.drop_index("ix_search_deployments_created_at")
    op.drop_table("search_deployments")
