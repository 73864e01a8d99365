"""Keeps the ledger in step when plain `alembic upgrade` / `downgrade` runs our environment
(Alembic's on_version_apply hook); manage.py's own runs write it in project.core.executor."""

from __future__ import annotations

import ast
import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

from manage_migrations import ledger

DOCSTRING_HOLDERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def checksum(path: Path) -> str:
    """What the ledger stores to notice a migration file edited after it ran: the sha256 of its
    code, so formatting, comments, quotes and docstrings (the message) do not count as edits."""
    return _code_checksum(path.read_bytes())


def checksum_if_edited(path: Path, stored: str) -> str | None:
    """None when the file still is what ran; otherwise its checksum now. Ledgers written before
    checksums ignored formatting hold the sha256 of the bytes, which counts as unedited too."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() == stored:
        return None
    current = _code_checksum(data)
    return None if current == stored else current


def _code_checksum(data: bytes) -> str:
    try:
        with warnings.catch_warnings():  # invalid escapes ("\\d") warn; Alembic shows those itself
            warnings.simplefilter("ignore")
            tree = ast.parse(data)
    except (SyntaxError, ValueError):
        return hashlib.sha256(data).hexdigest()  # Alembic cannot load it either: any byte counts
    out: list[str] = []
    _canonical(tree, out)
    return hashlib.sha256("\n".join(out).encode()).hexdigest()


def _canonical(node: object, out: list[str]) -> None:
    """The tree without positions, docstrings or empty fields: a field a newer Python adds
    (such as 3.12's `type_params`) is empty in a migration, so upgrading Python changes nothing."""
    if isinstance(node, ast.AST):
        out.append(type(node).__name__)
        holder = isinstance(node, DOCSTRING_HOLDERS)
        for name in node._fields:
            value = getattr(node, name, None)
            if holder and name == "body" and isinstance(value, list) and _starts_with_docstring(value):
                value = value[1:]
            if value is not None and value != []:
                out.append(name)
                _canonical(value, out)
        out.append(")")
    elif isinstance(node, list):
        out.append("[")
        for item in node:
            _canonical(item, out)
        out.append("]")
    else:
        out.append(repr(node))


def _starts_with_docstring(body: list[ast.stmt]) -> bool:
    first = body[0] if body else None
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )


@dataclass
class Recorder:
    """One batch per plain `alembic` run, a row per applied revision, in the step's transaction."""

    batch: int | None = None
    mark: float = field(default_factory=perf_counter)

    def restart_clock(self) -> None:
        self.mark = perf_counter()

    def __call__(self, *, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        duration_ms = (perf_counter() - self.mark) * 1000
        if not ctx.as_sql:
            connection = ctx.connection
            ledger.ensure_ledger(connection)
            if not step.is_upgrade:
                ledger.record_reverted(connection, tuple(step.up_revision_ids))
            else:
                if self.batch is None:
                    self.batch = ledger.next_batch(ledger.read_ledger(connection))
                path = Path(step.up_revision.path)
                row = ledger.applied_now(
                    step.up_revision_id, path.stem, self.batch, duration_ms, checksum(path)
                )
                ledger.record_applied(connection, [row])
        self.restart_clock()
