"""The production guard (Laravel's ConfirmableTrait): destructive work needs consent where data matters."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from manage_migrations.errors import Refused
from manage_migrations.settings import is_production

if TYPE_CHECKING:
    from pathlib import Path

    from manage_migrations.core.planner import Step
    from manage_migrations.settings import Settings

# Statements that destroy data, judged from the SQL a migration renders, not from its source text.
DESTRUCTIVE = re.compile(
    r"\b(DROP\s+(TABLE|TYPE|SCHEMA|DATABASE)\b|TRUNCATE\b"
    r"|ALTER\s+TABLE\s+.+?\s+DROP\b"
    r"(?!\s+(DEFAULT|NOT\s+NULL|CONSTRAINT|INDEX|KEY|PRIMARY|FOREIGN|CHECK|IDENTITY|EXPRESSION)\b))",
    re.IGNORECASE | re.DOTALL,
)
DELETE = re.compile(r"\bDELETE\b", re.IGNORECASE)
WHERE = re.compile(r"\bWHERE\b", re.IGNORECASE)
# What a statement splitter must not look into: quoted text, comments, and PostgreSQL's
# dollar-quoted bodies (whose statements a DO block runs, so they are judged too).
TOKENS = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|--[^\n]*|/\*.*?\*/|(\$\w*\$)(.*?)\1|;""", re.DOTALL
)

Confirm = Callable[[str], bool]
"""Asks the user a yes/no question; the CLI answers it from a terminal, from --force, or refuses."""


def destructive(sql: str, *, anywhere: bool = False) -> bool:
    """Whether any statement in `sql` is DROP TABLE/TYPE/SCHEMA/DATABASE, ALTER TABLE ... DROP
    [COLUMN], TRUNCATE or DELETE without WHERE (comments skipped). Inside dollar-quoted bodies
    (functions, DO blocks) such a statement counts wherever it appears, even as quoted text."""
    statements, bodies = _split(sql)
    if any(destructive(body, anywhere=True) for body in bodies):
        return True
    return any(_destructive_statement(statement, anywhere) for statement in statements)


def _destructive_statement(statement: str, anywhere: bool) -> bool:
    delete = DELETE.search(statement) if anywhere else DELETE.match(statement)
    if delete is not None and WHERE.search(statement, delete.end()) is None:
        return True
    found = DESTRUCTIVE.search(statement) if anywhere else DESTRUCTIVE.match(statement)
    return found is not None


def _split(sql: str) -> tuple[list[str], list[str]]:
    """Statements with comments removed and quoted text kept whole, and the dollar-quoted bodies."""
    statements: list[str] = []
    bodies: list[str] = []
    current: list[str] = []
    position = 0
    for token in TOKENS.finditer(sql):
        current.append(sql[position : token.start()])
        text = token.group()
        if text == ";":
            statements.append("".join(current))
            current = []
        elif text.startswith(("--", "/*")):
            current.append(" ")
        else:
            current.append(text)
            if token.group(1):
                bodies.append(token.group(2))
        position = token.end()
    current.append(sql[position:])
    statements.append("".join(current))
    return [statement.strip() for statement in statements if statement.strip()], bodies


def why_destructive(step: Step, dialect: str, root: Path) -> str | None:
    """Why a migration counts as destroying data, judged from the statements it renders offline,
    or None when it does not; one that cannot be rendered offline counts (we cannot tell). A
    file that does not load at all is reported as such by the caller, not counted."""
    from manage_migrations.core.pretend import render
    from manage_migrations.errors import OperationFailed

    try:
        statements = render(dialect, step, root)
    except OperationFailed:
        return "no offline SQL to check"
    return "drops or deletes data" if any(destructive(statement) for statement in statements) else None


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
