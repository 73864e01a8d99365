"""`migrate:reset`: roll back every applied migration."""

from __future__ import annotations

import typer

from manage_migrations.commands import Force, confirmer, state


def command(ctx: typer.Context, force: Force = False) -> None:
    """Roll back every applied migration, newest first."""
    from manage_migrations.core.planner import Selection
    from manage_migrations.verbs.rollback import rollback

    app = state(ctx)
    result = rollback(
        app.settings(),
        Selection(everything=True),
        confirm=confirmer(app, force),
        on_progress=app.output.progress,
        action="migrate:reset",
    )
    app.output.run_finished(result, verb="rolled back", nothing="Nothing to rollback.")
    if result.failed is not None:
        raise typer.Exit(1)
