"""Shell completion of migration names where a command takes one (typer's autocompletion): read
from the files' headers, as migrate:status reads them; no database, no Alembic. Also the names
of the databases pyproject.toml declares, for --database."""

from __future__ import annotations

from typing import Any


def _selected_database(ctx: Any) -> str | None:
    """The --database given before the word being completed (on the command line's root)."""
    params = getattr(ctx.find_root(), "params", None) if ctx is not None else None
    return params.get("database") if isinstance(params, dict) else None


def migration_names(ctx: Any, incomplete: str) -> list[str]:
    """The file names (without .py) starting with what was typed (typer keeps only those), in
    the migrations directory of the database selected with --database."""
    from manage_migrations.core.graph import RevisionGraph  # only when completing
    from manage_migrations.settings import resolve_settings

    try:
        settings = resolve_settings(database=_selected_database(ctx))
        graph = RevisionGraph.load(settings.migrations_dir, settings.root)
    except Exception:  # whatever is wrong, a completion prints nothing: the command will say it
        return []
    return [header.name for header in graph.ordered() if header.name.startswith(incomplete)]


def targets(ctx: Any, incomplete: str) -> list[str]:
    """What `migrate TARGET` takes: a migration or `head`."""
    return [*migration_names(ctx, incomplete), *(["head"] if "head".startswith(incomplete) else [])]


def database_names(incomplete: str) -> list[str]:
    """`default` and the databases of [tool.manage.databases]."""
    from manage_migrations.settings import resolve_settings

    try:
        names = resolve_settings().database_names
    except Exception:
        return []
    return [name for name in names if name.startswith(incomplete)]
