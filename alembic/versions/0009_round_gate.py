"""rounds: a gated distilling run's validation score and whether its gate kept the round

Existing rounds have neither (no run was gated before).

Revision ID: 0009_round_gate
Revises: 0008_round_search
Create Date: 2026-12-04 08:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_round_gate"
down_revision = "0008_round_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rounds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("validation_score", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("accepted", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rounds", schema=None) as batch_op:
        batch_op.drop_column("accepted")
        batch_op.drop_column("validation_score")
