"""`migrate:rollback`: undo the last batch (or the last N migrations)."""

from __future__ import annotations

from typing import Annotated

import typer

from project.commands import state


def command(
    ctx: typer.Context,
    step: Annotated[
        int | None,
        typer.Option("--step", min=1, help="Roll back the last N migrations, across batches."),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option("--batch", min=1, help="Roll back batch N; it must be the newest one."),
    ] = None,
) -> None:
    """Roll back the last batch of migrations."""
    from project import migrator
    from project.errors import UsageError

    if step is not None and batch is not None:
        raise UsageError("--step and --batch cannot be used together")
    app = state(ctx)
    result = migrator.rollback(app.settings(), step=step, batch=batch, on_progress=app.output.progress)
    app.output.run_finished(result, verb="rolled back", nothing="Nothing to rollback.")
    if result.failed is not None:
        raise typer.Exit(1)
