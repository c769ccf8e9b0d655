"""rounds side by side: a round's bound and the search over its checkpoint; distilling
runs' learner metrics (imitation losses, labelled episodes and decisions) per iteration

Existing rounds take their bound from their league's `bound` row (the only place it was
kept); none has a search row yet.

Revision ID: 0008_round_search
Revises: 0007_search_deployments
Create Date: 2026-12-04 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_round_search"
down_revision = "0007_search_deployments"
branch_labels = None
depends_on = None

ROUND_COLUMNS = ("bound", "search_score")
ITERATION_COLUMNS = {
    "distill_cross_entropy": sa.Float(),
    "distill_value_loss": sa.Float(),
    "distill_agreement": sa.Float(),
    "distill_episodes": sa.Integer(),
    "distill_decisions": sa.Integer(),
}


def upgrade() -> None:
    with op.batch_alter_table("rounds", schema=None) as batch_op:
        for name in ROUND_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))
    op.execute(
        "UPDATE rounds SET bound = (SELECT league_entries.value FROM league_entries "
        "WHERE league_entries.run_id = rounds.run_id AND league_entries.round = rounds.round "
        "AND league_entries.kind = 'bound')"
    )
    with op.batch_alter_table("iteration_metrics", schema=None) as batch_op:
        for name, type_ in ITERATION_COLUMNS.items():
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("iteration_metrics", schema=None) as batch_op:
        for name in ITERATION_COLUMNS:
            batch_op.drop_column(name)
    with op.batch_alter_table("rounds", schema=None) as batch_op:
        for name in ROUND_COLUMNS:
            batch_op.drop_column(name)
