"""`migrate:check`: the CI gate (one head, nothing pending, no missing file, no model drift)."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations.commands import state


def command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (keys in README).")] = False,
) -> None:
    """Fail unless history, database and models agree."""
    from manage_migrations.verbs.inspect import check

    app = state(ctx)
    result = check(app.settings())
    if as_json:
        app.output.check_json(result)
    else:
        app.output.check(result)
    if not result.ok:
        raise typer.Exit(1)
