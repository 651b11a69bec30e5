"""Issues, comments and transitions: every write goes through the runtime services (gates, audit, events)."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Comment, Issue, Project
from app.services.runtime import issue_page, issue_queries, issues, transitions
from app.services.runtime.fields import user_by_email
from app.services.sync import configuration
from app.services.errors import Invalid, NotFound
from app.services.gateway.credentials import Credential
from app.services.gateway.representations import issue_values, user_ref

from . import schemas as s
from .core import endpoint, page_of
from .paging import query_page
from .projects import project_for

ISSUES = "Issues"


def issue_id_for(cred: Credential, key: str) -> int:
    """The id of an issue by key in the credential's organization (and project), in one query; the service
    that acts on it checks the credential's access (strangers get NotFound from it)."""
    membership = cred.user.membership
    issue_id = issue_queries.issue_id_by_key(membership.organization_id if membership else None, key,
                                             project_id=cred.project_id)
    if issue_id is None:
        raise NotFound(f"No issue {key!r} that you can see.")
    return issue_id


def issue_for(cred: Credential, key: str) -> Issue:
    """An issue by key (`ENG-42`) the credential may read (NotFound otherwise)."""
    project_key, _, number = key.rpartition("-")
    if not project_key or not number.isdigit():
        raise NotFound(f"No issue {key!r} that you can see.")
    project = project_for(cred, project_key)
    return issue_queries.get_issue(cred.user, project.key, number)


def _user_id(project: Project, email: str | None, field: str = "assignee") -> int | None:
    if not email:
        return None
    user = user_by_email(email, project.organization_id)
    if user is None:
        raise Invalid({field: f"{email} is not an account of this organization."})
    return user.id


def _default_type(project: Project) -> str | None:
    config = configuration.project_config(project)
    types = issues.creatable_types(config)
    preferred = [t for t in types if config.workflow_for(t.key) is not None
                 and config.workflow_for(t.key).id == config.default_workflow]
    return (preferred or types)[0].key if types else None


@endpoint("/api/v1/issues", "GET", summary="List issues", tags=ISSUES, scope="issues:read",
          query=s.IssueListQuery, response=page_of(s.IssueSchema), errors=(400,))
def list_issues(cred: Credential, query: dict):
    """Issues the credential may read, newest first, filtered; `cursor` pages are stable under inserts."""
    project = project_for(cred, query["project_key"]) if query["project_key"] else None
    if project is None and cred.project_id is not None:
        project = db.session.get(Project, cred.project_id)
    statement = issue_queries.issue_query(cred.user, project, state=query["state"], assignee=query["assignee"],
                                   label=query["label"], text=query["q"])
    return query_page("issues", query, statement, Issue.id, issue_values)


@endpoint("/api/v1/issues", "POST", summary="Create an issue", tags=ISSUES, scope="issues:write",
          body=s.IssueCreateSchema, response=s.IssueSchema, status=201)
def create_issue(cred: Credential, data: dict):
    """An issue in its workflow's initial state; `issueType` defaults to the project's default type."""
    project = project_for(cred, data["project_key"])
    parent_id = None
    if data["parent_key"]:
        try:
            parent_id = issue_for(cred, data["parent_key"]).id
        except NotFound:
            raise Invalid({"parentKey": f"No issue {data['parent_key']} in {project.key}."}) from None
    issue = issues.create_issue(
        project, cred.user, issue_type=data["issue_type"] or _default_type(project) or "", title=data["title"],
        description=data["description"], priority=data["priority"],
        assignee_id=_user_id(project, data["assignee"]), labels=data["labels"], due_date=data["due_date"],
        custom_fields=data["fields_"], parent_id=parent_id)
    return issue_values(issue), 201, {"Location": f"/api/v1/issues/{issue.key}"}


@endpoint("/api/v1/issues/<key>", "GET", summary="One issue", tags=ISSUES, scope="issues:read",
          response=s.IssueSchema)
def get_issue(cred: Credential, key: str):
    return issue_values(issue_for(cred, key))


PATCHABLE = {"title": "title", "description": "description", "priority": "priority", "labels": "labels",
             "due_date": "due_date", "fields_": "custom_fields"}


@endpoint("/api/v1/issues/<key>", "PATCH", summary="Edit an issue", tags=ISSUES, scope="issues:write",
          body=s.IssuePatchSchema, response=s.IssueSchema, errors=(409,))
def update_issue(cred: Credential, data: dict, key: str):
    """Change fields; with `lockVersion` a concurrent change is a 409 instead of being overwritten."""
    issue = issue_for(cred, key)
    changes = {PATCHABLE[name]: value for name, value in data.items() if name in PATCHABLE}
    if "assignee" in data:
        changes["assignee_id"] = _user_id(issue.project, data["assignee"])
    lock_version = data["lock_version"] if data["lock_version"] is not None else issue.lock_version
    issue = issues.update_issue(issue.id, cred.user, lock_version, **changes)
    return issue_values(issue)


# Comments


def _comment(comment: Comment) -> dict:
    return {"id": comment.id, "body": comment.body, "author": user_ref(comment.author),
            "created_at": comment.created_at, "updated_at": comment.updated_at}


@endpoint("/api/v1/issues/<key>/comments", "GET", summary="Comments of an issue", tags=ISSUES,
          scope="comments:read", query=s.ProjectFilterQuery, response=page_of(s.CommentSchema), errors=(400,))
def list_comments(cred: Credential, query: dict, key: str):
    """Newest first."""
    issue = issue_for(cred, key)
    return query_page(f"comments:{issue.id}", query, select(Comment).where(Comment.issue_id == issue.id),
                      Comment.id, _comment)


@endpoint("/api/v1/issues/<key>/comments", "POST", summary="Comment on an issue", tags=ISSUES,
          scope="comments:write", body=s.CommentCreateSchema, response=s.CommentSchema, status=201)
def create_comment(cred: Credential, data: dict, key: str):
    issue = issue_for(cred, key)
    comment = transitions.add_comment(issue.id, cred.user, data["body"])
    return _comment(comment), 201


# Transitions


def _gates(verdict) -> list[dict]:
    return [{"gate": g.gate, "passed": g.passed, "reasons": list(g.reasons)} for g in verdict.gates]


@endpoint("/api/v1/issues/<key>/transitions", "GET", summary="Available transitions and their gates",
          tags=ISSUES, scope="issues:read", response=s.TransitionsSchema)
def list_transitions(cred: Credential, key: str):
    """Every transition out of the current state, with each gate's verdict for this credential's user."""
    issue = issue_for(cred, key)
    view = issue_page.issue_view(cred.user, issue)
    items = []
    for verdict in view.verdicts:
        transition = verdict.transition
        target = view.workflow.states.get(transition.target)
        items.append({"id": transition.id, "name": transition.name, "to": transition.target,
                      "to_label": target.label if target else transition.target, "allowed": verdict.allowed,
                      "gates": _gates(verdict)})
    return {"state": issue.state, "lock_version": issue.lock_version, "transitions": items}


@endpoint("/api/v1/issues/<key>/transitions", "POST", summary="Transition an issue", tags=ISSUES,
          scope="issues:transition", body=s.TransitionPerformSchema, response=s.TransitionResultSchema,
          errors=(409,))
def perform_transition(cred: Credential, data: dict, key: str):
    """Move the issue by `transition` (id or name) or `to` (a state); every failing gate is reported (422).
    With `force: true` and a `reason`, an organization owner or admin moves it past the gates that block it;
    the history and the audit log record the reason and every gate skipped.
    The answer says what moved; `GET /api/v1/issues/{key}` has the whole issue."""
    if data["to"] is None and data["transition"] is None:
        raise Invalid({"to": "Give `to` (a state) or `transition` (an id or name)."})
    if data["force"]:
        moved = transitions.force_transition(issue_id_for(cred, key), cred.user, reason=data["reason"] or "",
                                             transition=data["transition"], target=data["to"],
                                             lock_version=data["lock_version"])
    else:
        moved = transitions.apply_transition(issue_id_for(cred, key), cred.user, transition=data["transition"],
                                             target=data["to"], comment=data["comment"],
                                             lock_version=data["lock_version"])
    return {"key": moved.key, "from_": moved.from_state, "to": moved.state, "transition": moved.transition,
            "lock_version": moved.lock_version, "state_entered_at": moved.at, "resolved_at": moved.resolved_at}


@endpoint("/api/v1/issues/<key>/transitions/simulate", "POST", summary="Dry-run a transition",
          tags=ISSUES, scope="issues:read", body=s.TransitionRequestSchema, response=s.SimulationSchema)
def simulate_transition(cred: Credential, data: dict, key: str):
    """Every gate's verdict for the request; nothing changes."""
    if data["to"] is None and data["transition"] is None:
        raise Invalid({"to": "Give `to` (a state) or `transition` (an id or name)."})
    issue = issue_for(cred, key)
    verdict = transitions.simulate(issue.id, cred.user, transition=data["transition"], target=data["to"],
                                   comment=data["comment"])
    chosen = verdict.transition
    return {"allowed": verdict.allowed, "transition": chosen.id if chosen else None,
            "to": chosen.target if chosen else data["to"], "gates": _gates(verdict)}

