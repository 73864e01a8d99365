"""`migrate:dump`: write the schema of the migrated database, for fast fresh databases; `--prune`
then replaces the migration files the dump covers by one squash migration."""

from __future__ import annotations

from typing import Annotated

import typer

from manage_migrations.commands import confirmer, state
from manage_migrations.commands.tenant_options import refuse_tenant_without_tenants


def command(
    ctx: typer.Context,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Then delete the migration files the dump covers (after confirmation); the newest "
            "becomes a squash migration that loads the dump, so existing databases keep working.",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Prune without asking (required without a terminal).")
    ] = False,
    pretend: Annotated[
        bool, typer.Option("--pretend", help="With --prune: list what would change; change nothing.")
    ] = False,
    tenants: Annotated[
        bool,
        typer.Option("--tenants", help="Dump the tenant schema (for tenants:create) instead."),
    ] = False,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="With --tenants, outside PostgreSQL schema mode: the tenant to dump."),
    ] = None,
) -> None:
    """Dump the database schema and history to migrations/schema/<dialect>-schema.sql.

    `migrate` loads the dump into an empty database, then runs only newer migrations. With
    --prune, the database must be at the single head: the migration files the dump covers are
    deleted and the newest one becomes a squash migration (same revision id, no parent) that loads
    the dump, so existing databases, `migrate --no-dump` and plain `alembic upgrade` keep working;
    it cannot be rolled back.
    """
    from manage_migrations.errors import UsageError
    from manage_migrations.verbs import maintain

    app = state(ctx)
    settings = app.settings()
    refuse_tenant_without_tenants(tenant, tenants, "migrate:dump")
    if tenants:
        from manage_migrations.verbs import tenants as tenant_verbs

        if prune:
            raise UsageError("--prune works on the default database's migrations, not with --tenants")
        app.output.dumped(tenant_verbs.dump(settings, tenant), settings.root)
        return
    if not prune:
        if force or pretend:
            raise UsageError("--force and --pretend only apply to --prune")
        info = maintain.dump_schema(settings)
        app.output.dumped(info, settings.root)
        return
    result = maintain.dump_and_prune(
        settings,
        confirm=confirmer(app, force),
        pretend=pretend,
        on_plan=lambda plan: app.output.prune_plan(plan, settings.root),
        on_progress=app.output.progress,
    )
    if result.warning:
        app.output.warning(f"{result.warning} (the squash migration is written as it is)")
    app.output.pruned(result, settings.root)
