"""Repository management services: permissions, updates, secrets, lower layers."""

from __future__ import annotations

import pytest


@pytest.fixture
def setup(app, make_user):
    from app.services import projects
    from app.services.sync import repositories

    owner = make_user("owner@example.com", "owner")
    member = make_user("member@example.com", "member")
    project = projects.create_project(owner, "ENG", "Engineering", "", "kanban")
    repository, secret = repositories.add_repository(project, "https://example.com/acme/config.git", actor=owner)
    return owner, member, project, repository, secret


def test_only_project_owners_and_admins_manage_the_repository(app, setup):
    from app.extensions import db
    from app.models import ProjectMembership
    from app.services.errors import Forbidden, NotFound
    from app.services.sync import revisions, runs

    owner, member, project, repository, _ = setup
    with pytest.raises(NotFound):
        runs.request_sync(repository.id, actor=member)  # not even visible to a non-member
    project.memberships.append(ProjectMembership(user_id=member.id, role="member"))
    db.session.commit()
    with pytest.raises(Forbidden):
        runs.request_sync(repository.id, actor=member)
    with pytest.raises(Forbidden):
        revisions.rollback(project, 1, member)
    assert runs.request_sync(repository.id, actor=owner).status == "queued"


def test_second_repository_for_a_project_is_a_conflict(app, setup):
    from app.services.errors import Conflict
    from app.services.sync import repositories

    owner, _, project, _, _ = setup
    with pytest.raises(Conflict):
        repositories.add_repository(project, "https://example.com/acme/other.git", actor=owner)


def test_update_repository_and_webhook_secret(app, setup):
    from app.services.errors import Invalid
    from app.services.sync import git, repositories

    owner, _, _, repository, secret = setup
    assert repositories.webhook_secret(repository) == secret and secret not in repository.webhook_secret_encrypted
    updated = repositories.update_repository(repository.id, actor=owner, url="git@github.com:acme/config.git",
                                             branch="develop", config_path="config/.kiket", token="tok")
    assert (updated.github_owner, updated.github_name, updated.branch) == ("acme", "config", "develop")
    assert updated.config_path == "config/.kiket" and git.decrypt_token(updated.token_encrypted) == "tok"
    assert repositories.update_repository(repository.id, actor=owner, clear_token=True).token_encrypted is None
    with pytest.raises(Invalid):
        repositories.update_repository(repository.id, actor=owner, config_path="../etc")
    new_secret = repositories.rotate_webhook_secret(repository.id, owner)
    assert new_secret != secret and repositories.webhook_secret(repository) == new_secret


def test_organization_defaults_are_validated_and_feed_project_configs(app, setup):
    from app.services.errors import Forbidden
    from app.services.sync import configuration, layers

    owner, member, project, _, _ = setup
    organization_id = project.organization_id
    with pytest.raises(Forbidden):
        layers.save_layer_file(member, "project.yaml", "project: {}\n", organization_id=organization_id)
    bad = layers.save_layer_file(owner, "workflows/x.yaml", "workflow: [\n", organization_id=organization_id)
    assert not bad.saved and bad.diagnostics[0]["severity"] == "fatal"
    workflow = ("workflow: {id: triage, name: Triage}\nstates:\n  new: {type: initial}\n  closed: {type: final}\n"
                "transitions:\n  - {from: new, to: closed, name: Close}\n")
    good = layers.save_layer_file(owner, "workflows/triage.yaml", workflow, organization_id=organization_id)
    assert good.saved and good.layer.version == 1 and good.reload_revision_id is None
    config = configuration.project_config(project)
    assert config.workflows["triage"].prov.layer == "organization_default"
    again = layers.save_layer_file(owner, "workflows/triage.yaml", workflow.replace("Triage", "Sorting"),
                                   organization_id=organization_id)
    assert again.saved and again.layer.version == 2
    assert configuration.project_config(project).workflows["triage"].name == "Sorting"


def test_layer_paths_are_restricted(app, setup):
    from app.services.errors import Invalid
    from app.services.sync import layers

    owner, _, project, _, _ = setup
    for path in ("../x.yaml", "agents/a.yaml", "workflows/../../x.yaml", "notes.txt"):
        with pytest.raises(Invalid):
            layers.save_layer_file(owner, path, "x: 1\n", project=project)
