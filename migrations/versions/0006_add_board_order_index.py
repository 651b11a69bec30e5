"""add the board order index on issues

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 23:58:00

A board reads the first cards of each column with one probe per (workflow, state, priority), in number
order: this index answers each probe with at most a page of entries, however large the column.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.create_index('ix_issues_board_order', ['project_id', 'workflow_id', 'state', 'priority', 'number'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.drop_index('ix_issues_board_order')
