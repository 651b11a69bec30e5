"""SQLAlchemy models; importing this package registers every table."""

from app.models.accounts import Invitation, Organization, OrganizationMembership, User
from app.models.audit import AuditEvent, ProjectSecret
from app.models.gateway import (
    ApiKey,
    ExtensionInstallation,
    ExtensionLog,
    ExtensionMetric,
    ExtensionSecret,
    IdempotencyRecord,
    SigningKey,
    WebhookSubscription,
)
from app.models.issues import (
    Approval,
    ApprovalTimeout,
    Attachment,
    AutomationRun,
    ChecklistProgress,
    Comment,
    Issue,
    IssueEvent,
    IssueTransition,
    ProjectCounter,
    SlaTimer,
    Watcher,
)
from app.models.notifications import EmailOutbox, Notification
from app.models.projects import Project, ProjectMembership
from app.models.repositories import (
    ConfigEvent,
    ConfigLayer,
    ConfigRevision,
    GithubDelivery,
    ProjectSeedMarker,
    SyncRun,
    WorkflowRepository,
)
from app.models.webhooks import WebhookDelivery

__all__ = [
    "ConfigEvent", "ConfigLayer", "ConfigRevision", "GithubDelivery", "Invitation", "Organization",
    "OrganizationMembership", "Project", "ProjectMembership", "ProjectSeedMarker", "SyncRun", "User",
    "WorkflowRepository",
    "Approval", "ApprovalTimeout", "Attachment", "AuditEvent", "AutomationRun", "ChecklistProgress", "Comment", "EmailOutbox",
    "Issue", "IssueEvent",
    "IssueTransition", "Notification", "ProjectCounter", "ProjectSecret", "SlaTimer", "Watcher",
    "WebhookDelivery",
    "ApiKey", "ExtensionInstallation", "ExtensionLog", "ExtensionMetric", "ExtensionSecret", "IdempotencyRecord",
    "SigningKey", "WebhookSubscription",
]
