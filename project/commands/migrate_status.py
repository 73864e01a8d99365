"""`migrate:status`: every migration, whether it ran, when and in which batch."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations.commands import state


def command(
    ctx: typer.Context,
    pending: Annotated[
        bool,
        typer.Option("--pending", help="List only pending migrations; exit 1 if there are any."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (keys in README).")] = False,
) -> None:
    """Show the status of each migration."""
    from manage_migrations import history

    app = state(ctx)
    result = history.status(app.settings())
    if as_json:
        app.output.status_json(result)
    else:
        app.output.status(result, only_pending=pending)
    if result.problem is not None:
        raise result.problem
    if pending and result.count("Pending"):
        raise typer.Exit(1)
