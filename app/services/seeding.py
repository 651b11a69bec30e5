"""Seed issues of a project's first activated configuration (spec §5).

Called exactly once per project, inside the activation's transaction, by
`app.services.configuration.seed_issues_once`.
"""

from __future__ import annotations

import logging
from typing import Sequence

from app.kiket.model import SeedIssue
from app.models import Project

log = logging.getLogger(__name__)


def create_seed_issues(project: Project, seeds: Sequence[SeedIssue]) -> None:
    """Create the project's seed issues in the current transaction (must not commit).

    Issues do not exist yet: the issues module fills this in; until then the seeds are only counted.
    """
    log.info("seed issues for project=%s: %d declared", project.key, len(seeds))
