"""`migrate:fresh`: drop every object in the schemas the project owns, then migrate."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations.commands import Force, confirmer, state

Cascade = Annotated[
    bool,
    typer.Option(
        "--cascade",
        help="Also drop what outside the project's schemas depends on them (views, columns of its "
        "types, foreign keys) instead of refusing.",
    ),
]


def command(ctx: typer.Context, force: Force = False, cascade: Cascade = False) -> None:
    """Drop every table, then run all migrations."""
    from manage_migrations.verbs.migrate import fresh

    app = state(ctx)
    result = fresh(app.settings(), cascade, confirmer(app, force), app.output.progress)
    app.output.run_finished(result.run, verb="applied", nothing="Nothing to migrate.")
    if result.run.failed is not None:
        raise typer.Exit(1)
