"""`make:migration`: write a migration from the changes made to the models."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from project.commands import state
from project.errors import Refused, UsageError

if TYPE_CHECKING:
    from project.alembic_env.renames import RenameCandidate


def parse_renames(values: list[str]) -> dict[str, str]:
    """`--rename old:new`, where each side is `table` or `table.column`."""
    renames: dict[str, str] = {}
    for value in values:
        old, sep, new = value.partition(":")
        if not sep or not old.strip() or not new.strip():
            raise UsageError(f"--rename {value!r} is not old:new", hint="e.g. --rename users.name:full_name")
        renames[old.strip()] = new.strip()
    return renames


def command(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(help='What the migration does, e.g. "add email to users".'),
    ] = None,
    empty: Annotated[
        bool, typer.Option("--empty", help="Write a blank migration to fill in by hand.")
    ] = False,
    merge: Annotated[
        bool, typer.Option("--merge", help="Write the migration that merges several heads.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what the migration would do; write nothing.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Dry run that exits 1 when the models have changes.")
    ] = False,
    allow_drops: Annotated[
        bool,
        typer.Option("--allow-drops", help="Allow dropping tables that hold rows, or many tables at once."),
    ] = False,
    rename: Annotated[
        list[str] | None,
        typer.Option(
            "--rename",
            metavar="OLD:NEW",
            help="Confirm a rename (`table` or `table.column`) without a prompt; repeatable.",
        ),
    ] = None,
) -> None:
    """Create a migration from model changes (autogenerate)."""
    from project.verbs import make

    app = state(ctx)
    settings = app.settings()
    renames = parse_renames(rename or [])
    dry_run = dry_run or check

    def ask(candidate: RenameCandidate) -> bool:
        return app.output.confirm(f"Was {candidate.kind} {candidate.old} renamed to {candidate.new}?")

    result = make.make_migration(
        settings,
        name,
        empty=empty,
        merge=merge,
        dry_run=dry_run,
        allow_drops=allow_drops,
        renames=renames,
        ask=ask if sys.stdin.isatty() else None,
    )
    if result.models is not None:
        app.output.discovered(result.models.modules, [sorted(meta.tables) for meta in result.models.metadata])
    app.output.changes(result.changes)
    for candidate in result.unconfirmed_renames:
        app.output.warning(
            f"{candidate.kind} {candidate.old} disappears while {candidate.new} appears: written as "
            f"drop + add, which loses its data; if it was renamed, run again with {candidate.flag}"
        )
    if result.refused_drops:
        rows = sum(count for _, count in result.refused_drops)
        tables = ", ".join(f"{table} ({count})" for table, count in result.refused_drops)
        count = len(result.refused_drops)
        raise Refused(
            f"refusing to drop {count} table{'s' if count > 1 else ''} holding {rows} "
            f"row{'' if rows == 1 else 's'} (rows per table: {tables})",
            hint="models that were not imported look like dropped tables; tables the models do not "
            "manage belong in exclude_tables (or their schema in exclude_schemas) in [tool.manage]; "
            "if the drops are meant, run again with --allow-drops",
        )
    if result.dry_run:
        if result.changes and check:
            app.output.result_line("Changes detected (dry run, nothing written).")
            raise typer.Exit(1)
        app.output.result_line("Dry run: nothing written." if result.changes else "No changes detected.")
        return
    if result.path is None:
        app.output.result_line("No changes detected.")
        return
    app.output.created(result.path, settings.root)
