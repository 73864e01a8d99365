"""`migrate:sql`: print the SQL of one migration without touching the database (Django's sqlmigrate)."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations import completion
from manage_migrations.commands import state


def command(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            help="The migration: revision id or file name prefix.", autocompletion=completion.migration_names
        ),
    ],
    down: Annotated[bool, typer.Option("--down", help="Print its downgrade instead.")] = False,
) -> None:
    """Print the SQL of one migration (no connection)."""
    from manage_migrations.verbs.inspect import sql

    app = state(ctx)
    app.output.sql(sql(app.settings(), target, upgrade=not down))
