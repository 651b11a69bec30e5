"""Jobs of the `configuration` queue: sync a workflow repository, then load and activate its revision."""

from __future__ import annotations

from app.services.sync import activation, runs
from jobs import job_app_context


def sync_workflow_repository(sync_run_id: int) -> None:
    """Fetch, validate and store a repository's branch head, then enqueue the load (`SyncWorkflowRepositoryJob`)."""
    with job_app_context():
        runs.sync_repository(sync_run_id)


def load_project_configuration(revision_id: int) -> None:
    """Apply and activate a validated revision in one transaction (`LoadProjectConfigurationJob`)."""
    with job_app_context():
        activation.load_configuration(revision_id)
