"""`migrate:dump`: write the schema of the migrated database, for fast fresh databases."""

from __future__ import annotations

import typer

from project.commands import state


def command(ctx: typer.Context) -> None:
    """Dump the database schema and history to migrations/schema/<dialect>-schema.sql."""
    from project import migrator

    app = state(ctx)
    settings = app.settings()
    info = migrator.dump_schema(settings)
    app.output.dumped(info.path, settings.root, info.statements)
