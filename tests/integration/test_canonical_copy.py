"""The canonical copy and the source view hold the configuration files only (spec §2, §15): other files of the
configuration path are reported once and neither stored nor shown."""

from __future__ import annotations

import os

from tests.support.sync_repos import bare_remote, file_url, push_change, run_worker

KEPT = (".kiket/templates/welcome.md", "analytics/dbt/models/cycle_time.sql", ".kiket/notes.yaml")
LEFT_OUT = (".kiket/secrets.txt", ".kiket/tool.py", ".kiket/workflows/README.md", "src/app.py")


def test_only_configuration_files_are_stored_and_shown(app, client, owner, login, tmp_path):
    from app.extensions import db
    from app.models import SyncRun
    from app.services import projects
    from app.services.sync import repositories, runs, workflow_sources

    remote = bare_remote(tmp_path, "kanban")
    for path in KEPT + LEFT_OUT:
        head = push_change(remote, "main", path, f"text of {path}\n", f"Add {path}")
    project = projects.create_project(owner, "ENG", "Engineering", "", "kanban")
    repository, _ = repositories.add_repository(project, file_url(remote), actor=owner)
    run = runs.request_sync(repository.id, trigger="ui")
    run_worker(app)
    db.session.expire_all()
    run = db.session.get(SyncRun, run.id)
    assert run.status == "active", run.error

    stored = workflow_sources.read_revision(repository.id, head)
    assert set(KEPT) <= set(stored) and ".kiket/workflows/kanban.yaml" in stored
    assert not set(LEFT_OUT) & set(stored)
    infos = {d["file"] for d in run.diagnostics if d["code"] == "non_yaml_file"}
    assert infos == {p for p in LEFT_OUT if p.startswith(".kiket/")}

    login()
    page = client.get(f"/repositories/revisions/{run.revision_id}").get_data(as_text=True)
    run_page = client.get(f"/repositories/runs/{run.id}").get_data(as_text=True)
    for path in LEFT_OUT:
        assert path not in page
        assert client.get(f"/repositories/revisions/{run.revision_id}/source/{path}").status_code == 404
        assert client.get(f"/repositories/runs/{run.id}/source/{path}").status_code == 404
        assert f"source/{path}" not in run_page
    assert client.get(f"/repositories/revisions/{run.revision_id}/source/.kiket/templates/welcome.md").status_code == 200

    # A copy written before the rule (it holds a stray file) does not show it either.
    stray = workflow_sources.revision_dir(repository.id, head) / ".kiket" / "tool.py"
    os.chmod(stray.parent, 0o755)
    stray.write_text("print('from an old copy')\n")
    assert ".kiket/tool.py" not in client.get(f"/repositories/revisions/{run.revision_id}").get_data(as_text=True)
    assert client.get(f"/repositories/revisions/{run.revision_id}/source/.kiket/tool.py").status_code == 404
