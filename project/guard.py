"""The production guard (Laravel's ConfirmableTrait): destructive work needs consent where data matters."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from project.errors import Refused
from project.settings import is_production

if TYPE_CHECKING:
    from project.settings import Settings

DROPS = re.compile(r"\.drop_(table|column)\(|\bDROP\s+(TABLE|COLUMN)\b", re.IGNORECASE)

Confirm = Callable[[str], bool]
"""Asks the user a yes/no question; the CLI answers it from a terminal, from --force, or refuses."""


def drops_data(upgrade_source: str) -> bool:
    """Whether a migration's upgrade() drops a table or a column (op calls or raw SQL)."""
    return DROPS.search(upgrade_source) is not None


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
