"""env_steps as 64-bit integers: PostgreSQL's INTEGER stops at 2,147,483,647, which a
long run passes after about eight days at 3,000 env steps/s (SQLite's are 64-bit anyway).

Revision ID: 0004_bigint_env_steps
Revises: 0003_training_history
Create Date: 2026-11-24 23:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0004_bigint_env_steps"
down_revision = "0003_training_history"
branch_labels = None
depends_on = None

TABLES = ("rounds", "checkpoints")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "env_steps", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "env_steps", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False
            )
