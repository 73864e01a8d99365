"""`migrate`: apply pending migrations (all of them, or up to a target)."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations import completion
from manage_migrations.commands import Force, confirmer, state


def command(
    ctx: typer.Context,
    *,
    target: Annotated[
        str | None,
        typer.Argument(
            help="Apply up to and including this migration (revision id, name prefix, head).",
            autocompletion=completion.targets,
        ),
    ] = None,
    step: Annotated[bool, typer.Option("--step", help="Give each migration its own batch.")] = False,
    pretend: Annotated[
        bool, typer.Option("--pretend", help="Print the SQL each migration would run; change nothing.")
    ] = False,
    no_dump: Annotated[
        bool, typer.Option("--no-dump", help="Do not load the schema dump into an empty database.")
    ] = False,
    fake: Annotated[
        bool,
        typer.Option("--fake", help="Record the migrations as applied without running them."),
    ] = False,
    force: Force = False,
) -> None:
    """Run every pending migration as one batch."""
    from manage_migrations.verbs.migrate import MigrateOptions, migrate

    app = state(ctx)
    options = MigrateOptions(target, fake, step, pretend, use_dump=not no_dump)
    result = migrate(app.settings(), options, confirmer(app, force), app.output.progress)
    app.output.run_finished(result, verb="faked" if fake else "applied", nothing="Nothing to migrate.")
    if result.failed is not None:
        raise typer.Exit(1)
