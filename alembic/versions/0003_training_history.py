"""training history: per-iteration learner metrics and per-round league rows

Revision ID: 0003_training_history
Revises: 0002_training_schedules
Create Date: 2026-11-24 22:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0003_training_history'
down_revision = '0002_training_schedules'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('iteration_metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('iteration', sa.Integer(), nullable=False),
    sa.Column('iterations_in_round', sa.Integer(), nullable=False),
    sa.Column('env_steps', sa.Integer(), nullable=False),
    sa.Column('env_steps_per_second', sa.Float(), nullable=True),
    sa.Column('episode_return_mean', sa.Float(), nullable=True),
    sa.Column('episode_score_mean', sa.Float(), nullable=True),
    sa.Column('policy_loss', sa.Float(), nullable=True),
    sa.Column('vf_loss', sa.Float(), nullable=True),
    sa.Column('entropy', sa.Float(), nullable=True),
    sa.Column('kl', sa.Float(), nullable=True),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'iteration', name='uq_iteration_metrics_run_iteration')
    )
    with op.batch_alter_table('iteration_metrics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_iteration_metrics_run_id'), ['run_id'], unique=False)

    op.create_table('league_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('workload', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('objective', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('policy', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('checkpoint_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'round', 'policy', name='uq_league_entries_run_round_policy')
    )
    with op.batch_alter_table('league_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_league_entries_run_id'), ['run_id'], unique=False)
        batch_op.create_index('ix_league_entries_workload', ['workload'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('league_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_league_entries_workload')
        batch_op.drop_index(batch_op.f('ix_league_entries_run_id'))

    op.drop_table('league_entries')
    with op.batch_alter_table('iteration_metrics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_iteration_metrics_run_id'))

    op.drop_table('iteration_metrics')
