"""Errors services raise; screens and the CLI turn them into field errors or one line."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors a user can act on."""


class ValidationError(ServiceError):
    """Every bad field at once, as (field, reason) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in self.problems))

    def for_field(self, field: str) -> str | None:
        return next((reason for name, reason in self.problems if name == field), None)


class NotFound(ServiceError):
    pass


class Conflict(ServiceError):
    pass
