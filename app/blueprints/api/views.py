"""`/api/v1`: importing the modules declares their endpoints on the blueprint."""

from . import docs, extensions, issues, projects, webhooks  # noqa: F401
from .core import bp, init_app

__all__ = ["bp", "init_app"]
