"""A worker keeps the blobs and parsed files of its syncs: a re-sync reads from git and parses only what changed."""

from __future__ import annotations

from pathlib import Path

from app.kiket.filecache import FileCache
from tests.support.sync_repos import bare_remote, file_url, push_change, run_worker, show


def test_the_blob_cache_reads_only_blobs_it_has_not_seen(tmp_path):
    from app.services.sync.config_sources import read_git_tree_files

    remote = bare_remote(tmp_path, "engineering")
    blobs = FileCache()
    first = read_git_tree_files(remote, "main", blobs=blobs)
    assert first.files == read_git_tree_files(remote, "main").files
    read_before = blobs.misses
    assert read_before == len(first.files)

    sha = push_change(remote, "main", ".kiket/workflows/bug.yaml",
                      show(remote, "main", ".kiket/workflows/bug.yaml").replace("Bug", "Defect", 1), "rename")
    second = read_git_tree_files(remote, sha, blobs=blobs)
    assert second.files == read_git_tree_files(remote, sha).files
    assert blobs.misses - read_before == 1
    assert second.files[".kiket/workflows/bug.yaml"] != first.files[".kiket/workflows/bug.yaml"]


def test_a_resync_parses_only_the_changed_file_and_activates_with_its_own_commit(app, owner, tmp_path):
    from app.extensions import db
    from app.kiket import model as km
    from app.models import SyncRun
    from app.services import projects
    from app.services.sync import configuration, repositories, runs

    remote = bare_remote(tmp_path, "engineering")
    project = projects.create_project(owner, "ENG", "Engineering", "", "kanban")
    repository, _ = repositories.add_repository(project, file_url(remote), branch="main", actor=owner)

    def sync() -> SyncRun:
        run = runs.request_sync(repository.id, trigger="ui")
        run_worker(app)
        db.session.expire_all()
        return db.session.get(SyncRun, run.id)

    assert sync().status == "active"
    parsed_before = runs._PARSED.misses
    text = show(remote, "main", ".kiket/workflows/bug.yaml")
    sha = push_change(remote, "main", ".kiket/workflows/bug.yaml", text + "# reviewed\n", "comment")
    again = sync()
    assert (again.status, again.commit_sha) == ("active", sha)
    assert runs._PARSED.misses - parsed_before == 2  # the changed file's parse and its normalization

    cold = configuration.load_files(project, read_tree(remote, sha), km.Source(
        repo=repository.remote_url, branch="main", commit_sha=sha), layers=configuration.lower_layers(project))
    assert again.diagnostics == [d.to_dict() for d in cold.diagnostics]
    active = configuration.project_config(project)
    assert {wf.prov.commit_sha for wf in active.workflows.values() if wf.prov.layer == "repository"} == {sha}


def read_tree(remote: Path, sha: str) -> dict[str, bytes]:
    from app.services.sync.config_sources import read_git_tree

    return read_git_tree(remote, sha)


def test_a_project_with_layers_reads_its_configuration_from_the_cache(app, owner, monkeypatch):
    from app.services import projects
    from app.services.sync import configuration, layers

    project = projects.create_project(owner, "ENG", "Engineering", "", "kanban")
    layers.save_layer_file(owner, "team.yaml", "team:\n  members: []\n", project=project)
    layers.save_layer_file(owner, "team.yaml", "team:\n  members: []\n", organization_id=project.organization_id)
    first = configuration.project_config(project)

    def unexpected(*args, **kwargs):
        raise AssertionError("the one-query marker should have found the cached configuration")

    # The marker (one query, no layer rows loaded) names the same state as the layer rows the first call read.
    monkeypatch.setattr(configuration, "lower_layers", unexpected)
    assert configuration.project_config(project) is first
