"""`migrate:history`: the revision graph with ids and parents, for people who know Alembic."""

from __future__ import annotations

import typer

from manage_migrations.commands import state


def command(ctx: typer.Context) -> None:
    """List revision ids and parents, newest first."""
    from manage_migrations.verbs.inspect import history

    app = state(ctx)
    app.output.history(history(app.settings()))
