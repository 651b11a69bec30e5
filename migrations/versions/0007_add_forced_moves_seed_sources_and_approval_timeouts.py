"""add forced moves to issue_transitions, a source per seed marker, and approval_timeouts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 08:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('issue_transitions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('forced', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('force_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('skipped_gates', sa.JSON(), nullable=True))

    with op.batch_alter_table('project_seed_markers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.JSON(), nullable=True))
    # Seeds were created once per project: by its first repository activation (the marker names that
    # revision) or, for a project created with sample issues, by its template.
    markers = sa.table('project_seed_markers', sa.column('source', sa.String), sa.column('revision_id', sa.Integer))
    revisions = sa.table('config_revisions', sa.column('id', sa.Integer), sa.column('repository_id', sa.Integer))
    repository = (sa.select(revisions.c.repository_id).where(revisions.c.id == markers.c.revision_id)
                  .scalar_subquery())
    op.execute(markers.update().where(markers.c.revision_id.is_not(None))
               .values(source=sa.func.coalesce(sa.literal('repository:') + sa.cast(repository, sa.String),
                                               'template')))
    op.execute(markers.update().where(markers.c.source.is_(None)).values(source='template'))
    with op.batch_alter_table('project_seed_markers', schema=None) as batch_op:
        batch_op.alter_column('source', existing_type=sa.String(length=100), nullable=False)
        batch_op.drop_constraint('uq_project_seed_markers_project_id', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_project_seed_markers_project_id'),
                                          ['project_id', 'source'])

    op.create_table('approval_timeouts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=64), nullable=False),
    sa.Column('state_entry', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], name=op.f('fk_approval_timeouts_issue_id_issues'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_timeouts')),
    sa.UniqueConstraint('issue_id', 'state', 'state_entry', 'level', name=op.f('uq_approval_timeouts_issue_id'))
    )


def downgrade():
    op.drop_table('approval_timeouts')
    with op.batch_alter_table('project_seed_markers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_project_seed_markers_project_id'), type_='unique')
        batch_op.drop_column('outcome')
        batch_op.drop_column('source')
        batch_op.create_unique_constraint('uq_project_seed_markers_project_id', ['project_id'])
    with op.batch_alter_table('issue_transitions', schema=None) as batch_op:
        batch_op.drop_column('skipped_gates')
        batch_op.drop_column('force_reason')
        batch_op.drop_column('forced')
