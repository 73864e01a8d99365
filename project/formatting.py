"""Pure text for console.py: durations, table columns, the status and check documents, failure
reports. Nothing here prints or imports rich, so console.py stays the one place that writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from manage_migrations.program import command_prefix, resolve_command

if TYPE_CHECKING:
    from pathlib import Path

    from manage_migrations.core.events import FailedStep
    from manage_migrations.history import StatusResult, StatusRow
    from manage_migrations.integrity import EditedMigration
    from manage_migrations.squash import PrunePlan
    from manage_migrations.verbs.inspect import CheckResult
    from manage_migrations.wipe import Dropped

Line = list[tuple[str, str | None]]  # (text, theme style) parts of one line


def duration(ms: float) -> str:
    """Scaled like a person reads it: `4.2 ms`, `812 ms`, `3.0 s`, `4 min 12 s`, `2 h 5 min`."""
    if round(ms, 1) < 10:
        return f"{ms:.1f} ms"
    if round(ms) < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def shown(path: Path, root: Path) -> Path:
    """A path inside the project relative to its root, any other path as it is."""
    try:
        return path.relative_to(root)
    except ValueError:
        return path


def extra_objects(dropped: Dropped) -> list[tuple[int, str]]:
    """What migrate:fresh dropped besides tables, as (count, noun)."""
    return [
        (dropped.views, "view"),
        (dropped.sequences, "sequence"),
        (dropped.types, "enum type"),
        (dropped.virtual_tables, "virtual table"),
    ]


def edited_warning(item: EditedMigration) -> str:
    return (
        f"warning: {item.name} was edited after it ran (checksum changed); review it, then run "
        f"`{command_prefix()} migrate:rehash {item.revision}`"
    )


def indented(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def aligned(rows: list[Line], cell_len: Callable[[str], int]) -> list[Line]:
    """Columns padded to their widest cell (in terminal cells), three spaces apart: a table with a
    thousand rows in milliseconds, where rich's Table layout takes a second."""
    widths = [max(cell_len(text) for text, _ in column) for column in zip(*rows, strict=True)]
    lines: list[Line] = []
    for cells in rows:
        filled = [index for index, (text, _) in enumerate(cells) if text]
        parts: Line = []
        for index, (text, style) in enumerate(cells[: filled[-1] + 1] if filled else []):
            if index:
                parts.append((" " * (widths[index - 1] - cell_len(cells[index - 1][0]) + 3), None))
            parts.append((text, style))
        lines.append(parts)
    return lines


# migrate:status


def status_cells(row: StatusRow, states: dict[str, str], verbose: bool) -> Line:
    notes = [f"squashes {len(row.replaces)}"] if row.replaces else []
    notes += ["edited"] if row.edited else []
    cells: Line = [
        (row.name, None),
        (row.state + "".join(f", {note}" for note in notes), states.get(row.state)),
        (str(row.batch) if row.batch is not None else "", None),
        (row.applied_at.strftime("%Y-%m-%d %H:%M:%S") if row.applied_at else "", None),
        (duration(row.duration_ms) if row.duration_ms is not None else "", None),
    ]
    return cells + ([(row.revision, None)] if verbose else [])


def status_summary(result: StatusResult) -> str:
    parts = [f"{result.count('Ran')} ran", f"{result.count('Pending')} pending"]
    parts += [
        f"{result.count(state)} {state.lower()}" for state in ("Failed", "Missing") if result.count(state)
    ]
    edited = sum(1 for row in result.rows if row.edited)
    if edited:
        parts.append(f"{edited} edited since it ran" if edited == 1 else f"{edited} edited since they ran")
    squashed = sum(len(row.replaces) for row in result.rows)
    if squashed:
        parts.append(f"{plural(squashed, 'pruned migration')} squashed")
    return ", ".join(parts) + "."


def status_document(result: StatusResult) -> dict[str, Any]:
    migrations = [
        {
            "name": row.name,
            "revision": row.revision,
            "status": row.state.lower(),
            "batch": row.batch,
            "applied_at": row.applied_at.isoformat() if row.applied_at else None,
            "duration_ms": row.duration_ms,
            "edited": row.edited,
            "replaces": list(row.replaces),
        }
        for row in result.rows
    ]
    counts = {state.lower(): result.count(state) for state in ("Ran", "Pending", "Failed", "Missing")}
    return {"database": result.database, "migrations": migrations, "counts": counts}


# migrate:check


def check_document(result: CheckResult) -> dict[str, Any]:
    problems = [
        {"kind": problem.kind, "message": problem.message, "details": list(problem.details)}
        for problem in result.problems
    ]
    return {
        "ok": result.ok,
        "database": result.database,
        "drift_checked": result.drift_checked,
        "drift_skipped": result.drift_skipped,
        "problems": problems,
    }


# a failed migrate / rollback


def failure_report(failed: FailedStep, applied: int, verb: str) -> Line:
    """The lines (and their styles) for stderr after the FAIL line: what failed, and where the
    database stands, worded by what could have been rolled back."""
    where = ", ".join(failed.at_names) if failed.at_names else "no migration (empty history)"
    if failed.commit_failed:
        lines: Line = [
            (f"error: the COMMIT failed: {failed.error}", "error"),
            (
                f"The whole transaction was rolled back: none of {', '.join(failed.rolled_back)} was "
                f"applied, whatever the lines above say. The database is at {where}.",
                None,
            ),
        ]
    else:
        lines = [(f"error: {failed.name} failed: {failed.error}", "error")]
        lines += _where_it_stands(failed, applied, verb, where)
    if failed.hint:
        lines.append((f"hint: {failed.hint}", "hint"))
    return lines


def _where_it_stands(failed: FailedStep, applied: int, verb: str, where: str) -> Line:
    if failed.outside_transaction:
        text = (
            f"{failed.name} ran outside a transaction, so what it did before the error stays; "
            f"it is recorded as failed and migrate refuses to run until you inspect the database, "
            f"undo or finish its work, and run `{resolve_command(failed.revision)}`. "
            f"The database is at {where}."
        )
        return [(text, None), *_statements(failed, none=None)]
    if failed.transactional:
        text = (
            f"{failed.name} was rolled back; {plural(applied, 'migration')} {verb} "
            f"before it. The database is at {where}."
        )
        return [(text, None)]
    text = (
        f"{failed.name} failed on a database that commits DDL immediately, so nothing "
        f"was rolled back. The version table is at {where}."
    )
    return [
        (text, None),
        *_statements(failed, none="No statement of it ran before the error."),
        ("Check the database before migrating again.", "error"),
    ]


def _statements(failed: FailedStep, none: str | None) -> Line:
    if not failed.statements:
        return [(none, None)] if none else []
    heading = ("These statements ran before the error and may have taken effect:", None)
    return [heading, *((indented(statement, "  "), None) for statement in failed.statements)]


def prune_plan_lines(plan: PrunePlan, root: Path) -> Line:
    """What a prune would delete, rewrite and write, each with its style; nothing if nothing."""
    if plan.nothing_to_prune:
        return []
    head = plan.head
    lines: Line = [
        (f"  The {plan.dialect} dump at {head.name} ({head.revision}) covers every migration:", None)
    ]
    lines += [(f"    delete   {shown(path, root)}", "drop") for path in plan.deleted]
    squash = f"becomes the squash migration of {plural(len(plan.replaces), 'pruned migration')}"
    lines.append((f"    rewrite  {shown(head.path, root)}  ({squash})", "alter"))
    lines += [(f"    write    {shown(path, root)}", "add") for path in plan.written]
    lines += [(f"    delete   {shown(path, root)}  (replaced)", "drop") for path in plan.obsolete]
    lines.append(
        (
            f"  New databases can be built on {', '.join(plan.dialects)}; other backends need a "
            "dump at this revision first (migrate:dump --database-url ...).",
            "muted",
        )
    )
    lines.append(("  Existing databases at this revision or later keep working.", "muted"))
    return lines
