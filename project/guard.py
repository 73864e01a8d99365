"""The production guard (Laravel's ConfirmableTrait): destructive work needs consent where data matters."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from project.errors import Refused
from project.settings import is_production

if TYPE_CHECKING:
    from pathlib import Path

    from project.core.planner import Step
    from project.settings import Settings

# Statements that destroy data, judged from the SQL a migration renders, not from its source text.
DESTRUCTIVE = re.compile(
    r"^\s*(DROP\s+(TABLE|TYPE|SCHEMA|DATABASE)\b|TRUNCATE\b|ALTER\s+TABLE\s+.+?\s+DROP\b(?!\s+(DEFAULT|NOT\s+NULL|CONSTRAINT|INDEX|PRIMARY|FOREIGN|CHECK))"
    r"|DELETE\s+FROM\s+[^;]+?(;|$)(?<!WHERE))",
    re.IGNORECASE | re.DOTALL,
)

Confirm = Callable[[str], bool]
"""Asks the user a yes/no question; the CLI answers it from a terminal, from --force, or refuses."""


def destructive(statement: str) -> bool:
    """DROP TABLE/TYPE/SCHEMA, ALTER TABLE ... DROP [COLUMN], TRUNCATE, DELETE without WHERE."""
    if re.match(r"^\s*DELETE\b", statement, re.IGNORECASE):
        return re.search(r"\bWHERE\b", statement, re.IGNORECASE) is None
    return DESTRUCTIVE.match(statement) is not None


def drops_data(step: Step, dialect: str, root: Path) -> bool:
    """Whether a migration destroys data, from the statements it renders offline; one that
    cannot be rendered offline counts as destructive (we cannot tell)."""
    from project.core.pretend import render
    from project.errors import ManageError

    try:
        statements = render(dialect, step, root)
    except ManageError:
        return True
    return any(destructive(statement) for statement in statements)


def refuse_if_prohibited(settings: Settings, action: str) -> None:
    """`prohibit_destructive = true` forbids the command outright, --force or not."""
    if settings.prohibit_destructive:
        raise Refused(
            f"{action} is prohibited in this project",
            hint="[tool.manage] prohibit_destructive = true forbids destructive commands",
        )


def _production_reason(settings: Settings, recorded: str | None) -> str | None:
    """Why the database counts as production: this run is (APP_ENV / [tool.manage] environment),
    or the last run that migrated it recorded production, so a laptop pointed at it is guarded too."""
    if settings.production:
        return "in the production environment"
    if is_production(recorded):
        return "on a database last migrated in production"
    return None


def applies(settings: Settings, recorded: str | None) -> bool:
    """Whether destructive work on this database needs consent at all."""
    return _production_reason(settings, recorded) is not None


def require_consent(settings: Settings, recorded: str | None, action: str, confirm: Confirm) -> None:
    """Ask before destructive work on a production database; refuse when the answer is not yes."""
    where = _production_reason(settings, recorded)
    if where is None:
        return
    require_confirmation(
        f"{action} {where}: are you sure?",
        confirm,
        f"refused to {action} {where} without confirmation; the database was not touched",
    )


def require_confirmation(question: str, confirm: Confirm, refusal: str) -> None:
    """Ask before work that needs a yes in every environment (e.g. deleting migration files)."""
    if not confirm(question):
        raise Refused(refusal, hint="confirm on a terminal, or pass --force")
