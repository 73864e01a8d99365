"""What a squash migration (written by `migrate:dump --prune`) runs: its upgrade loads the frozen
schema dump of the current dialect, its downgrade refuses. Imported by migration files, so it
stays small and keeps its two entry points stable."""

from __future__ import annotations

from pathlib import Path

from manage_migrations import schema_dump
from manage_migrations.errors import HistoryError
from manage_migrations.program import command_prefix


class SquashError(HistoryError):
    """A squash migration cannot do what was asked; the message says why and what to do instead."""


def upgrade(migrations_dir: Path, revision: str) -> None:
    """Build the schema the pruned migrations built, from the dump frozen when they were pruned."""
    from alembic import op

    context = op.get_context()
    dialect = schema_dump.dialect_name(context.dialect.name)
    path = schema_dump.squashed_path(migrations_dir, dialect, revision)
    if not path.is_file():
        raise SquashError(
            f"the migrations up to {revision} were pruned into a schema dump, and there is none for "
            f"{dialect} ({path.parent.name}/{path.name}); restore the pruned migrations from version "
            f"control to build a new {dialect} database, or load a dump of a {dialect} database at "
            f"{revision}"
        )
    text = path.read_text(encoding="utf-8")
    recorded = schema_dump.dump_revisions(path)
    if recorded != (revision,) or not schema_dump.has_sections(text):
        raise SquashError(f"{path.name} is not a dump taken at revision {revision}; restore it from git")
    schema = schema_dump.schema_section(text)
    if context.as_sql:  # --pretend on MariaDB, migrate:sql, `alembic upgrade --sql`
        statements = [schema] if dialect == "postgresql" else schema_dump.sql_statements(schema)
        for statement in statements:
            context.impl.static_output(statement.strip() + ("" if dialect == "postgresql" else ";"))
        return
    schema_dump.load_sql(op.get_bind(), schema)


def downgrade(revision: str, replaced: int) -> None:
    """The downgrades of the pruned migrations are gone with their files."""
    raise SquashError(
        f"{revision} squashes {replaced} pruned migrations and cannot be rolled back; rebuild the "
        f"database with `{command_prefix()} migrate:fresh` instead"
    )
