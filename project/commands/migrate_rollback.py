"""`migrate:rollback`: undo the last batch (or the last N migrations, or back to a target)."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations.commands import (
    Force,
    RollbackBatch,
    RollbackStep,
    RollbackTo,
    confirmer,
    rollback_selection,
    state,
)


def command(
    ctx: typer.Context,
    *,
    step: RollbackStep = None,
    batch: RollbackBatch = None,
    to: RollbackTo = None,
    fake: Annotated[
        bool, typer.Option("--fake", help="Unrecord the migrations without running their downgrade.")
    ] = False,
    force: Force = False,
) -> None:
    """Roll back the last batch of migrations."""
    from manage_migrations.verbs.rollback import rollback

    app = state(ctx)
    result = rollback(
        app.settings(),
        rollback_selection(step, batch, to),
        fake=fake,
        confirm=confirmer(app, force),
        on_progress=app.output.progress,
    )
    verb = "unrecorded" if fake else "rolled back"
    app.output.run_finished(result, verb=verb, nothing="Nothing to rollback.")
    if result.failed is not None:
        raise typer.Exit(1)
