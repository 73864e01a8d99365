"""`migrate:rollback`: undo the last batch (or the last N migrations, or back to a target)."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations import completion
from manage_migrations.commands import Force, confirmer, state


def command(
    ctx: typer.Context,
    *,
    step: Annotated[
        int | None,
        typer.Option("--step", min=1, help="Roll back the last N migrations, across batches."),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option("--batch", min=1, help="Roll back batch N; it must be the newest one."),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Roll back until this migration is the newest applied one.",
            autocompletion=completion.migration_names,
        ),
    ] = None,
    fake: Annotated[
        bool, typer.Option("--fake", help="Unrecord the migrations without running their downgrade.")
    ] = False,
    force: Force = False,
) -> None:
    """Roll back the last batch of migrations."""
    from manage_migrations.core.planner import Selection
    from manage_migrations.errors import UsageError
    from manage_migrations.verbs.rollback import rollback

    if sum(option is not None for option in (step, batch, to)) > 1:
        raise UsageError("--step, --batch and --to cannot be used together")
    app = state(ctx)
    result = rollback(
        app.settings(),
        Selection(step, batch, to),
        fake=fake,
        confirm=confirmer(app, force),
        on_progress=app.output.progress,
    )
    verb = "unrecorded" if fake else "rolled back"
    app.output.run_finished(result, verb=verb, nothing="Nothing to rollback.")
    if result.failed is not None:
        raise typer.Exit(1)
