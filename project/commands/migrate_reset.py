"""`migrate:reset`: roll back every applied migration."""

from __future__ import annotations

import typer

from project.commands import Force, confirmer, state


def command(ctx: typer.Context, force: Force = False) -> None:
    """Roll back every applied migration, newest first."""
    from project import migrator

    app = state(ctx)
    result = migrator.reset(app.settings(), confirm=confirmer(app, force), on_progress=app.output.progress)
    app.output.run_finished(result, verb="rolled back", nothing="Nothing to rollback.")
    if result.failed is not None:
        raise typer.Exit(1)
