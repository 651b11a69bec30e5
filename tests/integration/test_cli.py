import stat
from pathlib import Path

from sqlalchemy import select

from app.extensions import db
from app.models import Project, User


def test_user_create_prints_a_generated_password(app):
    result = app.test_cli_runner().invoke(args=["kiket", "user", "create", "ada@example.com", "--org-role", "admin"])
    assert result.exit_code == 0, result.output
    password = result.output.split("Password: ")[1].strip()
    user = db.session.scalar(select(User))
    assert user.check_password(password)
    # The first account of an empty installation owns the organization it creates.
    assert user.org_role == "owner"


def test_user_create_with_password_and_duplicate(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["kiket", "user", "create", "a@example.com", "--password", "long enough pw"]).exit_code == 0
    second = runner.invoke(args=["kiket", "user", "create", "b@example.com", "--password", "long enough pw"])
    assert "Password:" not in second.output
    assert db.session.scalar(select(User).where(User.email == "b@example.com")).org_role == "member"
    duplicate = runner.invoke(args=["kiket", "user", "create", "a@example.com", "--password", "long enough pw"])
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output


def test_user_password_resets_it_and_ends_the_sessions(app, owner, login, client):
    login()
    assert client.get("/projects").status_code == 200
    result = app.test_cli_runner().invoke(args=["kiket", "user", "password", "OWNER@example.com"])
    assert result.exit_code == 0, result.output
    password = result.output.split("New password for owner@example.com: ")[1].split()[0]
    db.session.expire_all()
    user = db.session.scalar(select(User))
    assert user.check_password(password) and not user.check_password("correct horse battery")
    assert client.get("/projects").status_code == 302
    login(password=password)
    assert client.get("/projects").status_code == 200


def test_user_password_of_an_unknown_email_changes_nothing(app, owner):
    result = app.test_cli_runner().invoke(args=["kiket", "user", "password", "nobody@example.com"])
    assert result.exit_code == 1 and "No account has the email nobody@example.com." in result.output
    assert db.session.scalar(select(User)).check_password("correct horse battery")


def test_demo_is_idempotent(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["kiket", "demo"])
    assert first.exit_code == 0, first.output
    assert "password saved to" in first.output and "DEMO (created)" in first.output
    credentials = Path(app.instance_path) / "demo-credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    password = credentials.read_text().split("password: ")[1].strip()
    assert db.session.scalar(select(User).where(User.email == "admin@example.com")).check_password(password)
    second = runner.invoke(args=["kiket", "demo"])
    assert "exists; password unchanged" in second.output and "DEMO (exists)" in second.output
    projects = db.session.scalars(select(Project)).all()
    assert [(p.key, p.template) for p in projects] == [("DEMO", "bug_tracking")]
    from app.models import Issue

    issues = db.session.scalars(select(Issue.key).order_by(Issue.number)).all()
    assert issues and issues[0] == "DEMO-1"
