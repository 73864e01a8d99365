"""`migrate:status`: every migration, whether it ran, when and in which batch."""

from __future__ import annotations

from typing import Annotated

import typer

from project.commands import state


def command(
    ctx: typer.Context,
    pending: Annotated[
        bool,
        typer.Option("--pending", help="List only pending migrations; exit 1 if there are any."),
    ] = False,
) -> None:
    """Show the status of each migration."""
    from project import migrator

    app = state(ctx)
    result = migrator.status(app.settings())
    app.output.status(result, only_pending=pending)
    if result.problem is not None:
        raise result.problem
    if pending and result.count("Pending"):
        raise typer.Exit(1)
