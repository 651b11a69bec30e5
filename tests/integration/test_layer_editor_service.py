"""The lower-layer editor's services: list with contributions, check without saving, delete, what a save changed."""

from __future__ import annotations

import pytest

WORKFLOW = ("workflow: {id: triage, name: Triage}\nstates:\n  new: {type: initial}\n  closed: {type: final}\n"
            "transitions:\n  - {from: new, to: closed, name: Close}\n")


@pytest.fixture
def setup(app, make_user):
    from app.services import projects

    owner = make_user("owner@example.com", "owner")
    project = projects.create_project(owner, "ENG", "Engineering", "", "kanban")
    return owner, project


def test_listing_counts_the_elements_each_file_contributes(app, setup):
    from app.services.sync import layers

    owner, project = setup
    assert layers.save_layer_file(owner, "workflows/triage.yaml", WORKFLOW, project=project).saved
    team = ("team:\n  roles: [{name: triager, permissions: [issue.transition]}]\n"
            "  members: [{user: owner@example.com, roles: [triager]}]\n")
    assert layers.save_layer_file(owner, "team.yaml", team, project=project).saved
    infos = {info.path: info for info in layers.layer_file_infos(project=project)}
    assert set(infos) == {"team.yaml", "workflows/triage.yaml"}
    assert infos["workflows/triage.yaml"].elements == 1
    assert infos["team.yaml"].elements == 2  # one role, one member
    assert infos["workflows/triage.yaml"].size == len(WORKFLOW.encode())
    assert infos["workflows/triage.yaml"].updated_by.email == "owner@example.com"


def test_check_runs_the_save_validation_without_saving(app, setup):
    from app.services.sync import configuration, layers

    owner, project = setup
    broken = layers.check_layer_file(owner, "workflows/triage.yaml", "workflow: {id: triage}\nstates: {}\n",
                                     project=project)
    assert not broken.ok and broken.diagnostics[0]["severity"] == "fatal"
    fine = layers.check_layer_file(owner, "workflows/triage.yaml", WORKFLOW, project=project)
    assert fine.ok and "triage" in fine.revision.workflows
    assert layers.list_layer_files(project=project) == []
    assert "triage" not in configuration.project_config(project).workflows


def test_a_save_reports_what_changed_and_a_delete_takes_it_back(app, setup):
    from app.services.sync import configuration, layers

    owner, project = setup
    saved = layers.save_layer_file(owner, "workflows/triage.yaml", WORKFLOW, project=project)
    assert saved.saved and saved.changes.find("workflow", "triage").change == "added"
    renamed = layers.save_layer_file(owner, "workflows/triage.yaml", WORKFLOW.replace("Triage", "Sorting"),
                                     project=project)
    change = renamed.changes.find("workflow", "triage")
    assert change.change == "changed" and ("name", "Triage", "Sorting") in [(v.path, v.old, v.new) for v in change.values]
    deleted = layers.delete_layer_file(owner, "workflows/triage.yaml", project=project)
    assert deleted.saved and deleted.changes.find("workflow", "triage").change == "removed"
    assert layers.list_layer_files(project=project) == []
    from sqlalchemy import select

    from app.extensions import db
    from app.models import ConfigEvent

    events = [(e.kind, e.detail["version"]) for e in db.session.scalars(select(ConfigEvent).order_by(ConfigEvent.id))]
    assert events == [("override_saved", 1), ("override_saved", 2), ("override_deleted", 2)]
    assert "triage" not in configuration.project_config(project).workflows


def test_a_broken_save_keeps_the_working_file(app, setup):
    from app.services.sync import configuration, layers

    owner, project = setup
    layers.save_layer_file(owner, "workflows/triage.yaml", WORKFLOW, project=project)
    broken = layers.save_layer_file(owner, "workflows/triage.yaml", WORKFLOW.replace("to: closed", "to: nowhere"),
                                    project=project)
    assert not broken.saved and any(d["severity"] == "fatal" for d in broken.diagnostics)
    [row] = layers.list_layer_files(project=project)
    assert row.yaml_text == WORKFLOW and row.version == 1
    assert configuration.project_config(project).workflows["triage"].transitions[0].target == "closed"


def test_defaults_are_checked_together_and_listed(app, setup):
    from app.services.sync import layers

    owner, project = setup
    organization_id = project.organization_id
    assert layers.save_layer_file(owner, "workflows/triage.yaml", WORKFLOW, organization_id=organization_id).saved
    # A second file of the layer defining the same workflow id under another name: checked with the first one.
    clash = layers.check_layer_file(owner, "workflows/triage.yml", WORKFLOW, organization_id=organization_id)
    assert not clash.ok
    [info] = layers.layer_file_infos(organization_id=organization_id)
    assert (info.path, info.elements) == ("workflows/triage.yaml", 1)
    gone = layers.delete_layer_file(owner, "workflows/triage.yaml", organization_id=organization_id)
    assert gone.saved and layers.list_layer_files(organization_id=organization_id) == []


@pytest.mark.parametrize("path", ["../x.yaml", "/etc/passwd", "workflows/../../x.yaml", "workflows/a/b.yaml",
                                  "agents/a.yaml", "notes.txt", ".kiket/../project.yaml", "project.yaml/x",
                                  "boards/.yaml", "workflows/bug/automation_recipes/../x.yaml", ""])
def test_only_the_spec_file_names_are_accepted(app, setup, path):
    from app.services.errors import Invalid
    from app.services.sync import layers

    owner, project = setup
    with pytest.raises(Invalid):
        layers.check_layer_file(owner, path, "x: 1\n", project=project)


@pytest.mark.parametrize("path", ["project.yaml", "team.yml", "issue_types.yaml", "workflows/bug.yaml",
                                  "boards/main.yaml", "automations/notify.yaml",
                                  "workflows/bug/automation_recipes/alert.yaml", ".kiket/workflows/bug.yaml"])
def test_the_spec_file_names_are_accepted(app, setup, path):
    from app.services.sync import layers

    assert layers.normalize_path(path) == path.removeprefix(".kiket/")


def test_members_may_not_check_or_delete(app, setup, make_user):
    from app.extensions import db
    from app.models import ProjectMembership
    from app.services.errors import Forbidden
    from app.services.sync import layers

    owner, project = setup
    layers.save_layer_file(owner, "workflows/triage.yaml", WORKFLOW, project=project)
    member = make_user("member@example.com", "member")
    project.memberships.append(ProjectMembership(user_id=member.id, role="member"))
    db.session.commit()
    for call in (lambda: layers.check_layer_file(member, "project.yaml", "project: {}\n", project=project),
                 lambda: layers.delete_layer_file(member, "workflows/triage.yaml", project=project),
                 lambda: layers.get_layer_file(member, "workflows/triage.yaml", project=project),
                 lambda: layers.delete_layer_file(member, "workflows/triage.yaml",
                                                  organization_id=project.organization_id)):
        with pytest.raises(Forbidden):
            call()
    assert len(layers.list_layer_files(project=project)) == 1


def test_a_workflow_recipe_file_is_a_layer_file_too(app, setup):
    from app.services.sync import configuration, layers

    owner, project = setup
    layers.save_layer_file(owner, "workflows/triage.yaml", WORKFLOW, project=project)
    recipe = ("recipe:\n  key: closed_note\n  name: Closed note\n  trigger: issue.transitioned\n"
              "  actions:\n    - {type: comment, body: Closed}\n")
    saved = layers.save_layer_file(owner, "workflows/triage/automation_recipes/closed.yaml", recipe, project=project)
    assert saved.saved, saved.diagnostics
    automation = configuration.project_config(project).automations["closed_note"]
    assert automation.prov.layer == "project_override"
    infos = {info.path: info.elements for info in layers.layer_file_infos(project=project)}
    assert infos["workflows/triage/automation_recipes/closed.yaml"] == 1


def test_what_changed_covers_members_and_automations(app, setup):
    from app.services.sync import layers

    owner, project = setup
    team = "team:\n  members: [{user: owner@example.com, roles: [developer]}]\n"
    saved = layers.save_layer_file(owner, "team.yaml", team, project=project)
    assert saved.changes.find("member", "owner@example.com").change == "added"
    again = layers.save_layer_file(owner, "team.yaml", team.replace("developer", "reviewer"), project=project)
    [value] = again.changes.find("member", "owner@example.com").values
    assert (value.path, value.old, value.new) == ("roles", "developer", "reviewer")
    automation = ("automations:\n  - id: hello\n    name: Hello\n    trigger: issue.created\n"
                  "    actions:\n      - {type: add_label, label: new}\n")
    added = layers.save_layer_file(owner, "automations/hello.yaml", automation, project=project)
    assert added.saved and added.changes.find("automation", "hello").change == "added"


def test_a_file_made_again_after_a_delete_is_not_served_from_the_cache(app, setup):
    from app.services.sync import configuration, layers

    owner, project = setup
    for scope in ({"project": project}, {"organization_id": project.organization_id}):
        layers.save_layer_file(owner, "workflows/triage.yaml", WORKFLOW, **scope)
        assert configuration.project_config(project).workflows["triage"].name == "Triage"
        assert layers.delete_layer_file(owner, "workflows/triage.yaml", **scope).saved
        again = layers.save_layer_file(owner, "workflows/triage.yaml", WORKFLOW.replace("Triage", "Again"), **scope)
        assert again.saved and again.layer.version == 2  # numbering goes on from the deleted file's
        assert configuration.project_config(project).workflows["triage"].name == "Again"
        assert layers.delete_layer_file(owner, "workflows/triage.yaml", **scope).saved
