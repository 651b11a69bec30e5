import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Project, ProjectMembership
from tests.conftest import post_form


@pytest.fixture
def owner(make_user, login):
    user = make_user("ada@example.com", "owner")
    login("ada@example.com")
    return user


@pytest.mark.parametrize("template", ["kanban", "scrum", "bug_tracking"])
def test_create_project_from_each_template(client, owner, template):
    response = post_form(client, "/projects", {"key": "ENG", "name": "Engineering", "template": template})
    assert response.status_code == 303 and response.headers["Location"] == "/projects/ENG"
    project = db.session.scalar(select(Project))
    assert (project.key, project.template) == ("ENG", template)
    assert [(m.user_id, m.role) for m in project.memberships] == [(owner.id, "owner")]
    assert "Engineering" in client.get("/projects").get_data(as_text=True)
    assert client.get("/projects/ENG").status_code == 200


@pytest.mark.parametrize(
    ("key", "message"),
    [("E", "2 to 10"), ("TOOLONGKEY1", "2 to 10"), ("1AB", "starting with a letter"), ("EN-G", "2 to 10")],
)
def test_invalid_keys_return_the_form_with_the_rule(client, owner, key, message):
    response = post_form(client, "/projects", {"key": key, "name": "X", "template": "kanban"}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="project-form"' in html and "<html" not in html and message in html
    assert "HX-Request" in response.headers["Vary"]
    assert db.session.scalar(select(Project)) is None


def test_lowercase_key_is_uppercased_and_duplicates_refused(client, owner):
    assert post_form(client, "/projects", {"key": "ops", "name": "Ops", "template": "kanban"}).status_code == 303
    duplicate = post_form(client, "/projects", {"key": "OPS", "name": "Ops again", "template": "scrum"})
    assert duplicate.status_code == 422 and "already used" in duplicate.get_data(as_text=True)


def test_unknown_template_is_refused(client, owner):
    response = post_form(client, "/projects", {"key": "OPS", "name": "Ops", "template": "../etc"})
    assert response.status_code == 422
    assert db.session.scalar(select(Project)) is None


def test_members_see_only_their_projects(client, owner, make_user, login):
    post_form(client, "/projects", {"key": "SEC", "name": "Secret", "template": "kanban"})
    post_form(client, "/projects", {"key": "PUB", "name": "Public", "template": "kanban"})
    bob = make_user("bob@example.com", "member")
    public = db.session.scalar(select(Project).where(Project.key == "PUB"))
    db.session.add(ProjectMembership(project_id=public.id, user_id=bob.id, role="viewer"))
    db.session.commit()
    post_form(client, "/logout")
    login("bob@example.com")
    listing = client.get("/projects").get_data(as_text=True)
    assert "Public" in listing and "Secret" not in listing
    assert client.get("/projects/SEC").status_code == 404
    assert client.get("/projects/PUB").status_code == 200


def test_project_names_are_escaped(client, owner):
    post_form(client, "/projects", {"key": "XSS", "name": "<script>alert(1)</script>", "template": "kanban"})
    html = client.get("/projects").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_sample_issues_come_from_the_template_once(client, owner):
    from app.models import Issue
    from app.services.runtime import seeding
    from app.services.sync import configuration

    response = post_form(client, "/projects", {"key": "ENG", "name": "Eng", "template": "kanban", "sample_issues": "1"})
    assert response.status_code == 303
    project = db.session.scalar(select(Project))
    seeds = configuration.project_config(project).project.seed_issues
    titles = db.session.scalars(select(Issue.title).order_by(Issue.number)).all()
    assert seeds and titles == [seed.title for seed in seeds]
    assert not seeding.seed_issues_once(project, configuration.project_config(project))


def test_no_sample_issues_unless_asked(client, owner):
    from app.models import Issue

    post_form(client, "/projects", {"key": "ENG", "name": "Eng", "template": "kanban"})
    assert db.session.scalar(select(Issue)) is None
