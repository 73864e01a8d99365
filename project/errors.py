"""One exception family: every failure a user can cause carries a message, a hint and an exit code."""

from __future__ import annotations


class ManageError(Exception):
    """A failure reported as one line on stderr, an optional hint and a documented exit code."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class OperationFailed(ManageError):
    exit_code = 1


class UsageError(ManageError):
    exit_code = 2


class ConfigError(ManageError):
    """Settings, model discovery or another problem with the project itself."""

    exit_code = 3


class DatabaseUnreachable(ManageError):
    exit_code = 4


class ConnectionLost(DatabaseUnreachable):
    """The server went away while a command was using it (restarted, killed, network cut)."""


class LockTimeout(ManageError):
    exit_code = 5


class HistoryError(ManageError):
    """The database and the revision files disagree, or the graph is ambiguous."""

    exit_code = 6


class Refused(ManageError):
    exit_code = 7


class Interrupted(ManageError):
    """SIGINT or SIGTERM arrived during a command; the message says what was rolled back."""

    exit_code = 130
