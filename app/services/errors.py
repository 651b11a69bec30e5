"""Errors services raise; `app/blueprints/errors.py` maps them to responses."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str = ""):
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class NotFound(ServiceError):
    status = 404
    title = "Not found"


class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"


class Conflict(ServiceError):
    status = 409
    title = "Conflict"


class Invalid(ServiceError):
    """Input that breaks a rule; `problems` maps field names to messages."""

    status = 422
    title = "Invalid input"

    def __init__(self, problems: dict[str, str | list[str]], detail: str = ""):
        super().__init__(detail or "; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems
