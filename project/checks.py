"""The problems migrate:check reports: each check returns zero or more small, serialisable facts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from manage_migrations.alembic_env.autogen import Change


@dataclass(frozen=True)
class Problem:
    """One thing that fails the gate; `kind` is a stable key (see README), `details` its items."""

    kind: str
    message: str
    details: tuple[str, ...] = ()


def multiple_heads(head_names: Iterable[str]) -> list[Problem]:
    names = tuple(head_names)
    if len(names) < 2:
        return []
    return [
        Problem(
            "multiple_heads",
            f"the migration history has {len(names)} heads; "
            "write the merge migration with `make:migration --merge`",
            names,
        )
    ]


def pending(names: Iterable[str]) -> list[Problem]:
    found = tuple(names)
    if not found:
        return []
    return [Problem("pending", f"{len(found)} migration(s) not applied", found)]


def missing_files(names: Iterable[str]) -> list[Problem]:
    found = tuple(names)
    if not found:
        return []
    return [Problem("missing_file", f"{len(found)} applied migration(s) have no file", found)]


def drift(changes: Iterable[Change]) -> list[Problem]:
    found = tuple(f"{change.symbol} {change.text}" for change in changes)
    if not found:
        return []
    return [
        Problem(
            "drift",
            f"the models differ from the migrations ({len(found)} change(s)); run make:migration",
            found,
        )
    ]


def edited_files(names: Iterable[str]) -> list[Problem]:
    found = tuple(names)
    if not found:
        return []
    return [
        Problem(
            "edited_file",
            f"{len(found)} applied migration(s) were edited after they ran; review them, then "
            "accept with `migrate:rehash`",
            found,
        )
    ]
