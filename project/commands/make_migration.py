"""`make:migration`: write a migration from the changes made to the models."""

from __future__ import annotations

from typing import Annotated

import typer

from project.commands import state


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
) -> None:
    """Create a migration from model changes (autogenerate)."""
    from project import migrator

    app = state(ctx)
    settings = app.settings()
    result = migrator.make_migration(settings, name, empty=empty, merge=merge)
    if result.models is not None:
        app.output.discovered(result.models.modules, result.models.table_names)
    app.output.changes(result.changes)
    if result.path is None:
        app.output.result_line("No changes detected.")
        return
    app.output.created(result.path, settings.root)
