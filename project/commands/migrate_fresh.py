"""`migrate:fresh`: drop every table in the configured database or schema, then migrate."""

from __future__ import annotations

import typer

from project.commands import Force, confirmer, state


def command(ctx: typer.Context, force: Force = False) -> None:
    """Drop every table, then run all migrations."""
    from project.verbs.migrate import fresh

    app = state(ctx)
    result = fresh(app.settings(), confirm=confirmer(app, force), on_progress=app.output.progress)
    app.output.run_finished(result.run, verb="applied", nothing="Nothing to migrate.")
    if result.run.failed is not None:
        raise typer.Exit(1)
