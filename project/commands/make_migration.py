"""`make:migration`: write a migration from the changes made to the models."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from manage_migrations.commands import state
from manage_migrations.commands.tenant_options import refuse_tenant_without_tenants
from manage_migrations.errors import Refused, UsageError

if TYPE_CHECKING:
    from manage_migrations.alembic_env.backfill import RequiredColumn
    from manage_migrations.alembic_env.renames import RenameCandidate
    from manage_migrations.console import Output
    from manage_migrations.verbs.make import MakeResult


def parse_renames(values: list[str]) -> dict[str, str]:
    """`--rename old:new`, where each side is `table` or `table.column`."""
    renames: dict[str, str] = {}
    for value in values:
        old, sep, new = value.partition(":")
        if not sep or not old.strip() or not new.strip():
            raise UsageError(f"--rename {value!r} is not old:new", hint="e.g. --rename users.name:full_name")
        renames[old.strip()] = new.strip()
    return renames


def parse_defaults(values: list[str]) -> dict[str, str]:
    """`--default table.column=SQL`: the one-off value for existing rows of a new NOT NULL column."""
    defaults: dict[str, str] = {}
    for value in values:
        key, sep, sql = value.partition("=")
        if not sep or "." not in key.strip() or not sql.strip():
            raise UsageError(
                f"--default {value!r} is not table.column=SQL",
                hint="""e.g. --default users.email="''" (an SQL expression: '', 0, CURRENT_TIMESTAMP)""",
            )
        defaults[key.strip()] = sql.strip()
    return defaults


def command(
    ctx: typer.Context,
    *,
    name: Annotated[
        str | None,
        typer.Argument(help='What the migration does, e.g. "add email to users".'),
    ] = None,
    empty: Annotated[
        bool, typer.Option("--empty", help="Write a blank migration to fill in by hand.")
    ] = False,
    merge: Annotated[
        bool, typer.Option("--merge", help="Write the migration that merges several heads.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what the migration would do; write nothing.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Dry run that exits 1 when the models have changes.")
    ] = False,
    allow_drops: Annotated[
        bool,
        typer.Option("--allow-drops", help="Allow dropping tables that hold rows, or many tables at once."),
    ] = False,
    rename: Annotated[
        list[str] | None,
        typer.Option(
            "--rename",
            metavar="OLD:NEW",
            help="Confirm a rename (`table` or `table.column`) without a prompt; repeatable.",
        ),
    ] = None,
    default: Annotated[
        list[str] | None,
        typer.Option(
            "--default",
            metavar="TABLE.COLUMN=SQL",
            help="One-off value (SQL) for the existing rows of a new NOT NULL column; repeatable.",
        ),
    ] = None,
    tenants: Annotated[
        bool,
        typer.Option("--tenants", help="From the tenant models, into the tenant migrations directory."),
    ] = False,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="With --tenants: the tenant to compare with (default: the first)."),
    ] = None,
) -> None:
    """Create a migration from model changes (autogenerate)."""
    from manage_migrations.naming import migration_message
    from manage_migrations.verbs import make

    app = state(ctx)
    settings = app.settings()
    refuse_tenant_without_tenants(tenant, tenants, "make:migration")
    if tenants:
        from manage_migrations.verbs.tenants import make_settings

        settings = make_settings(settings, tenant)
    dry_run = dry_run or check
    on_terminal = sys.stdin.isatty()

    def ask_rename(candidate: RenameCandidate) -> bool:
        return app.output.confirm(f"Was {candidate.kind} {candidate.old} renamed to {candidate.new}?")

    def ask_default(column: RequiredColumn) -> str:
        return app.output.ask(
            f"{column.key} is NOT NULL without a server default and {_rows(column)} need a value: "
            f"SQL for them, used once, e.g. {column.example} (empty: stop, nothing written)"
        )

    answers = make.Answers(
        renames=parse_renames(rename or []),
        defaults=parse_defaults(default or []),
        ask_rename=ask_rename if on_terminal else None,
        ask_default=ask_default if on_terminal else None,
    )
    if name is not None and migration_message(name) is None:
        app.output.note(f"{name!r} has no letters with an ASCII form; the file is named after what it does")
    result = make.make_migration(
        settings, name, empty=empty, merge=merge, dry_run=dry_run, allow_drops=allow_drops, answers=answers
    )
    if result.models is not None:
        app.output.discovered(result.models.modules, [sorted(meta.tables) for meta in result.models.metadata])
    app.output.changes(result.changes)
    _refuse_or_warn(app.output, result, allow_drops=allow_drops)
    if result.dry_run:
        if result.changes and check:
            app.output.result_line("Changes detected (dry run, nothing written).")
            raise typer.Exit(1)
        app.output.result_line("Dry run: nothing written." if result.changes else "No changes detected.")
        return
    if result.path is None:
        app.output.result_line("No changes detected.")
        return
    for warning in result.warnings:
        app.output.warning(f"{warning} (the file is written as it is)")
    app.output.created(result.path, settings.root)


def _rows(column: RequiredColumn) -> str:
    count = f"{column.rows} row{'' if column.rows == 1 else 's'} of {column.table}"
    return count if column.added else f"{count} hold NULL and"


def _refuse_or_warn(output: Output, result: MakeResult, *, allow_drops: bool) -> None:
    """Every reason nothing was written: the most telling one is the refusal (exit 7), the others
    warnings; a dry run only warns."""
    if allow_drops and not result.dry_run:
        for candidate in result.unconfirmed_renames:
            output.warning(
                f"{candidate.kind} {candidate.old} disappears while {candidate.new} appears: "
                "written as drop + add (--allow-drops), which loses its data"
            )
    problems = [
        problem
        for problem in (_missing_defaults(result), _drops(result), _renames(result, allow_drops))
        if problem is not None
    ]
    if result.dry_run:
        for problem in problems:
            output.warning(f"make:migration would refuse: {problem.message}; {problem.hint}")
        return
    for problem in problems[:-1]:
        output.warning(f"{problem.message}; {problem.hint}")
    if problems:
        refusal = problems[-1]
        raise Refused(f"{refusal.message}; nothing written", hint=refusal.hint)


def _drops(result: MakeResult) -> Refused | None:
    if not result.refused_drops:
        return None
    rows = sum(count for _, count in result.refused_drops)
    tables = ", ".join(f"{table} ({count})" for table, count in result.refused_drops)
    count = len(result.refused_drops)
    return Refused(
        f"refusing to drop {count} table{'s' if count > 1 else ''} holding {rows} "
        f"row{'' if rows == 1 else 's'} (rows per table: {tables})",
        hint="models that were not imported look like dropped tables; tables the models do not "
        "manage belong in exclude_tables (or their schema in exclude_schemas) in [tool.manage]; "
        "if the drops are meant, run again with --allow-drops",
    )


def _renames(result: MakeResult, allow_drops: bool) -> Refused | None:
    """Without a terminal nobody confirmed the rename: drop + add would lose the data."""
    candidates = result.unconfirmed_renames
    if not candidates or allow_drops:
        return None
    pairs = "; ".join(f"{c.kind} {c.old} disappears while {c.new} appears" for c in candidates)
    flags = " ".join(candidate.flag for candidate in candidates)
    return Refused(
        f"{pairs}: a probable rename, and no terminal to confirm it on",
        hint=f"renamed (keeps the data): make:migration ... {flags}; not a rename (drops "
        f"{', '.join(c.old for c in candidates)} and its data): make:migration ... --allow-drops",
    )


def _missing_defaults(result: MakeResult) -> Refused | None:
    columns = result.missing_defaults
    if not columns:
        return None
    described = "; ".join(f"{column.key} ({_rows(column).removesuffix(' and')})" for column in columns)
    flags = " ".join(column.flag for column in columns)
    return Refused(
        f"NOT NULL without a server default, so migrate would fail on existing rows: {described}",
        hint=f"make it nullable, give it a server_default in the model, or write the backfill yourself "
        f"(make:migration --empty); or fill the existing rows once (SQL value): make:migration ... {flags}",
    )
