"""Shell completion of migration names where a command takes one (typer's autocompletion): read
from the files' headers, as migrate:status reads them; no database, no Alembic."""

from __future__ import annotations


def migration_names(incomplete: str) -> list[str]:
    """The file names (without .py) starting with what was typed (typer keeps only those)."""
    from manage_migrations.core.graph import RevisionGraph  # only when completing
    from manage_migrations.settings import resolve_settings

    try:
        settings = resolve_settings()
        graph = RevisionGraph.load(settings.migrations_dir, settings.root)
    except Exception:  # whatever is wrong, a completion prints nothing: the command will say it
        return []
    return [header.name for header in graph.ordered() if header.name.startswith(incomplete)]


def targets(incomplete: str) -> list[str]:
    """What `migrate TARGET` takes: a migration or `head`."""
    return [*migration_names(incomplete), *(["head"] if "head".startswith(incomplete) else [])]
