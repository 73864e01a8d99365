"""`migrate`: apply every pending migration."""

from __future__ import annotations

from typing import Annotated

import typer

from project.commands import state


def command(
    ctx: typer.Context,
    step: Annotated[bool, typer.Option("--step", help="Give each migration its own batch.")] = False,
    pretend: Annotated[
        bool, typer.Option("--pretend", help="Print the SQL each migration would run; change nothing.")
    ] = False,
    no_dump: Annotated[
        bool, typer.Option("--no-dump", help="Do not load the schema dump into an empty database.")
    ] = False,
) -> None:
    """Run every pending migration as one batch."""
    from project import migrator

    app = state(ctx)
    result = migrator.migrate(
        app.settings(),
        batch_per_step=step,
        pretend=pretend,
        use_dump=not no_dump,
        on_progress=app.output.progress,
    )
    app.output.run_finished(result, verb="applied", nothing="Nothing to migrate.")
    if result.failed is not None:
        raise typer.Exit(1)
