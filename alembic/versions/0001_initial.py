"""initial tables: runs, rounds, checkpoints, schedule requests

Revision ID: 0001
Revises:
Create Date: 2026-11-23 23:25:05.749639
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('runs',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('request_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('rounds_done', sa.Integer(), nullable=False),
    sa.Column('current_round', sa.Integer(), nullable=True),
    sa.Column('live_progress', sa.JSON(), nullable=True),
    sa.Column('best_checkpoint_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('best_score', sa.Float(), nullable=True),
    sa.Column('latest_checkpoint_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('stop_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
    sa.Column('synced_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key'),
    sa.UniqueConstraint('workflow_id')
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index('ix_runs_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_runs_status', ['status'], unique=False)

    op.create_table('schedule_requests',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('workflow_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('requested_policy', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('policy', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('checkpoint_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('nodes', sa.Integer(), nullable=False),
    sa.Column('jobs', sa.Integer(), nullable=False),
    sa.Column('notes', sa.JSON(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
    sa.Column('elapsed_ms', sa.Float(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('schedule_requests', schema=None) as batch_op:
        batch_op.create_index('ix_schedule_requests_created_at', ['created_at'], unique=False)

    op.create_table('checkpoints',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('location', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('iteration', sa.Integer(), nullable=False),
    sa.Column('env_steps', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('best_heuristic', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('best_heuristic_score', sa.Float(), nullable=False),
    sa.Column('gain', sa.Float(), nullable=False),
    sa.Column('heuristic_scores', sa.JSON(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=True),
    sa.Column('heuristics', sa.JSON(), nullable=True),
    sa.Column('window', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.create_index('ix_checkpoints_created_at', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkpoints_run_id'), ['run_id'], unique=False)
        batch_op.create_index('ix_checkpoints_score', ['score'], unique=False)

    op.create_table('rounds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('checkpoint_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('iteration', sa.Integer(), nullable=False),
    sa.Column('env_steps', sa.Integer(), nullable=False),
    sa.Column('episode_return_mean', sa.Float(), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('best_heuristic', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('best_heuristic_score', sa.Float(), nullable=False),
    sa.Column('gain', sa.Float(), nullable=False),
    sa.Column('heuristic_scores', sa.JSON(), nullable=True),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'round', name='uq_rounds_run_round')
    )
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rounds_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('rounds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rounds_run_id'))

    op.drop_table('rounds')
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.drop_index('ix_checkpoints_score')
        batch_op.drop_index(batch_op.f('ix_checkpoints_run_id'))
        batch_op.drop_index('ix_checkpoints_created_at')

    op.drop_table('checkpoints')
    with op.batch_alter_table('schedule_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_schedule_requests_created_at')

    op.drop_table('schedule_requests')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_status')
        batch_op.drop_index('ix_runs_created_at')

    op.drop_table('runs')
