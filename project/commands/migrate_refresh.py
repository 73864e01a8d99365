"""`migrate:refresh`: roll back (everything, or the last N) and migrate again."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations.commands import Force, confirmer, state


def command(
    ctx: typer.Context,
    step: Annotated[
        int | None,
        typer.Option("--step", min=1, help="Roll back only the last N migrations before migrating."),
    ] = None,
    force: Force = False,
) -> None:
    """Roll back all (or the last N) and migrate again."""
    from manage_migrations.verbs.rollback import refresh

    app = state(ctx)
    undone, redone = refresh(
        app.settings(), step=step, confirm=confirmer(app, force), on_progress=app.output.progress
    )
    if redone is None:  # the rollback failed; a successful one was summed up before migrating
        app.output.run_finished(undone, verb="rolled back", nothing=None)
        raise typer.Exit(1)
    app.output.run_finished(redone, verb="applied", nothing="Nothing to migrate.")
    if redone.failed is not None:
        raise typer.Exit(1)
