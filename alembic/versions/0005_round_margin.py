"""A round's margin has one name: the `gain` columns of rounds and checkpoints become
`margin`, the name the API, the dashboard and deployments already use.

Revision ID: 0005_round_margin
Revises: 0004_bigint_env_steps
Create Date: 2026-12-03 22:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0005_round_margin"
down_revision = "0004_bigint_env_steps"
branch_labels = None
depends_on = None

TABLES = ("rounds", "checkpoints")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("gain", new_column_name="margin")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("margin", new_column_name="gain")
