"""People and access of a project: the list with where each membership comes from, add, change the role, remove."""

from flask import render_template, request, url_for
from flask_login import current_user

from app.blueprints.forms import load_form
from app.blueprints.projects.schemas import AddPersonSchema, PersonRoleSchema, PersonSchema
from app.blueprints.projects.views import bp
from app.htmx import render_view
from app.services.errors import Invalid
from app.services.sync import configuration, people


def _page(project, status: int = 200, **context):
    context.setdefault("form", {})
    context.setdefault("problems", {})
    context.setdefault("message", None)
    context.setdefault("link", None)
    active = configuration.active_revision(project.id)
    return render_view("projects/people.html", "projects/_people.html", status=status, project=project,
                       overview=people.overview(project), revision_id=active.id if active else None, **context)


@bp.route("/projects/<key>/people", endpoint="people")
def people_page(key: str):
    return _page(people.managed_project(current_user, key))


@bp.route("/projects/<key>/people", methods=["POST"], endpoint="add_person")
def add_person(key: str):
    """Add an organization member, or invite an email, with a role: written to the overrides' team.yaml."""
    project = people.managed_project(current_user, key)
    try:
        data = load_form(AddPersonSchema(), request.form)
        added = people.add_person(current_user, project, data["email"], data["role"])
    except Invalid as error:
        return _page(project, 422, form=request.form, problems=error.problems)
    link = url_for("auth.join", token=added.invitation_token, _external=True) if added.invitation_token else None
    if added.user is not None:
        message = f"Added {added.user.display_name} as {data['role']}."
    elif link:
        message = f"Added {added.identity} as {data['role']} and invited them to the organization."
    else:
        message = (f"Added {added.identity} as {data['role']}. They have no account yet: an organization admin "
                   "sends their invitation link from the organization page.")
    return _page(project, message=message, link=link)


@bp.route("/projects/<key>/people/role", methods=["POST"], endpoint="person_role")
def change_role(key: str):
    project = people.managed_project(current_user, key)
    try:
        data = load_form(PersonRoleSchema(), request.form)
        person = people.change_role(current_user, project, data["identity"], data["role"])
    except Invalid as error:
        return _page(project, 422, problems=error.problems)
    name = person.user.display_name if person.user else person.identity
    return _page(project, message=f"{name} is now {data['role']}.")


@bp.route("/projects/<key>/people/remove", methods=["POST"], endpoint="remove_person")
def remove_person(key: str):
    project = people.managed_project(current_user, key)
    try:
        data = load_form(PersonSchema(), request.form)
        people.remove_person(current_user, project, data["identity"])
    except Invalid as error:
        return _page(project, 422, problems=error.problems)
    return _page(project, message=f"Removed {data['identity']} from {project.key}.")
