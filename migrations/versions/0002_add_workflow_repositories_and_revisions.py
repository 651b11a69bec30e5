"""add workflow repositories and revisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 17:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('config_layers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=40), nullable=False),
    sa.Column('layer', sa.String(length=24), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.Column('yaml_text', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_config_layers_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_config_layers_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_config_layers_updated_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_config_layers')),
    sa.UniqueConstraint('scope', 'path', name=op.f('uq_config_layers_scope'))
    )
    with op.batch_alter_table('config_layers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_config_layers_scope'), ['scope'], unique=False)

    op.create_table('workflow_repositories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('remote_url', sa.String(length=500), nullable=False),
    sa.Column('branch', sa.String(length=255), nullable=False),
    sa.Column('config_path', sa.String(length=255), nullable=False),
    sa.Column('token_encrypted', sa.Text(), nullable=True),
    sa.Column('webhook_secret_encrypted', sa.Text(), nullable=False),
    sa.Column('github_owner', sa.String(length=100), nullable=True),
    sa.Column('github_name', sa.String(length=100), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('active_revision_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_workflow_repositories_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_workflow_repositories_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_repositories')),
    sa.UniqueConstraint('project_id', name=op.f('uq_workflow_repositories_project_id'))
    )

    op.create_table('config_revisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=True),
    sa.Column('commit_sha', sa.String(length=40), nullable=False),
    sa.Column('branch', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('storage_path', sa.String(length=500), nullable=False),
    sa.Column('layers_version', sa.String(length=64), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('diagnostics', sa.JSON(), nullable=False),
    sa.Column('workflow_versions', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_config_revisions_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['repository_id'], ['workflow_repositories.id'], name=op.f('fk_config_revisions_repository_id_workflow_repositories'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_config_revisions'))
    )
    with op.batch_alter_table('config_revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_config_revisions_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_config_revisions_repository_id'), ['repository_id'], unique=False)

    op.create_table('config_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('revision_id', sa.Integer(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_config_events_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_config_events_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_config_events_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['revision_id'], ['config_revisions.id'], name=op.f('fk_config_events_revision_id_config_revisions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_config_events'))
    )
    with op.batch_alter_table('config_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_config_events_project_id'), ['project_id'], unique=False)

    op.create_table('project_seed_markers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('revision_id', sa.Integer(), nullable=True),
    sa.Column('seeded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_project_seed_markers_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['revision_id'], ['config_revisions.id'], name=op.f('fk_project_seed_markers_revision_id_config_revisions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_seed_markers')),
    sa.UniqueConstraint('project_id', name=op.f('uq_project_seed_markers_project_id'))
    )

    op.create_table('sync_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=False),
    sa.Column('branch', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('job_id', sa.String(length=100), nullable=True),
    sa.Column('load_job_id', sa.String(length=100), nullable=True),
    sa.Column('worker_name', sa.String(length=200), nullable=True),
    sa.Column('worker_host', sa.String(length=255), nullable=True),
    sa.Column('worker_pid', sa.Integer(), nullable=True),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('timings', sa.JSON(), nullable=False),
    sa.Column('commit_sha', sa.String(length=40), nullable=True),
    sa.Column('commit_author', sa.String(length=255), nullable=True),
    sa.Column('commit_message', sa.Text(), nullable=True),
    sa.Column('diagnostics', sa.JSON(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('revision_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['repository_id'], ['workflow_repositories.id'], name=op.f('fk_sync_runs_repository_id_workflow_repositories'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_sync_runs_requested_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['revision_id'], ['config_revisions.id'], name=op.f('fk_sync_runs_revision_id_config_revisions'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_runs'))
    )
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_runs_repository_id'), ['repository_id'], unique=False)

    op.create_table('github_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.String(length=100), nullable=True),
    sa.Column('event', sa.String(length=50), nullable=False),
    sa.Column('repository_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('sync_run_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.String(length=255), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['repository_id'], ['workflow_repositories.id'], name=op.f('fk_github_deliveries_repository_id_workflow_repositories'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sync_run_id'], ['sync_runs.id'], name=op.f('fk_github_deliveries_sync_run_id_sync_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_github_deliveries')),
    sa.UniqueConstraint('delivery_id', name=op.f('uq_github_deliveries_delivery_id'))
    )
    with op.batch_alter_table('github_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_github_deliveries_repository_id'), ['repository_id'], unique=False)


def downgrade():
    op.drop_table('github_deliveries')
    op.drop_table('sync_runs')
    op.drop_table('project_seed_markers')
    op.drop_table('config_events')
    op.drop_table('config_revisions')
    op.drop_table('workflow_repositories')
    op.drop_table('config_layers')
