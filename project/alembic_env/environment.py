"""What env.py does: use the connection and models handed over in Config.attributes, or (under
plain `alembic` and tools built on it) resolve the same settings and discover the same models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from manage_migrations import compat, database, discovery, guard, ledger
from manage_migrations.alembic_env.request import REQUEST_KEY, EnvRequest
from manage_migrations.errors import ConfigError, ManageError, Refused
from manage_migrations.recorder import Recorder
from manage_migrations.settings import Settings, find_project_root, resolve_settings

FORCE_VALUES = ("1", "true", "yes")


def _plain_alembic_settings(config: Any) -> Settings:
    """The settings of the default database, of NAME with `alembic -x database=NAME`, or of the
    tenant NAME with `alembic -x tenant=NAME` (the cookbook's multi-tenancy switch)."""
    source = config.toml_file_name or config.config_file_name
    root = Path(source).resolve().parent if source else find_project_root()
    given = compat.x_arguments(config)
    settings = resolve_settings(root=root, database=given.get("database"))
    if "tenant" not in given:
        return settings
    from manage_migrations.verbs.tenants import make_settings

    return make_settings(settings, given["tenant"])


@contextmanager
def _plain_alembic_errors() -> Iterator[None]:
    """Alembic reports a CommandError as one `FAILED: ...` line; anything else as a traceback."""
    from alembic.util import CommandError

    try:
        yield
    except ManageError as exc:
        raise CommandError(f"{exc.message}; {exc.hint}" if exc.hint else exc.message) from exc


def _check_version_locations(context: Any, settings: Settings) -> None:
    """Where Alembic loaded its Config before this package could reconcile it (locations.py),
    its revision files may come from elsewhere: refuse rather than run a different history."""
    script = context.script
    given = script.version_locations or [Path(script.dir, "versions")]  # Alembic's default
    locations = [Path(location).resolve() for location in given]
    if locations != [settings.migrations_dir]:
        shown = ", ".join(str(location) for location in locations)
        raise ConfigError(
            f"Alembic reads revisions from {shown}, manage.py from {settings.migrations_dir}",
            hint="set [tool.alembic] version_locations to the [tool.manage] migrations directory",
        )


def _same_defaults_are_unchanged(impl: Any, dialect: Any) -> None:
    """Alembic's own server-default comparison reports some equal defaults as changed ('' on
    SQLite); make:migration drops those afterwards, but a caller's process_revision_directives
    (pytest-alembic's "models match the DDL" test) sees the operations first."""
    from manage_migrations.alembic_env.autogen import _comparable

    original = impl.compare_server_default

    def compare_server_default(
        inspector_column: Any, metadata_column: Any, rendered_metadata: Any, rendered_inspector: Any
    ) -> bool:
        changed = original(inspector_column, metadata_column, rendered_metadata, rendered_inspector)
        return bool(changed) and _comparable(rendered_metadata, dialect) != _comparable(
            rendered_inspector, dialect
        )

    impl.compare_server_default = compare_server_default


def _guard_downgrades(context: Any, settings: Settings) -> None:
    """Plain `alembic downgrade` obeys manage.py's guard: with prohibit_destructive, in production,
    or on a database last migrated in production it is refused before any step runs, unless
    `-x force=1`. The steps are only known to the command's step function, so it is wrapped."""
    if context.get_x_argument(as_dictionary=True).get("force", "").lower() in FORCE_VALUES:
        return
    from alembic.runtime.migration import RevisionStep

    migration_context = context.get_context()
    steps_of = compat.planned_steps(migration_context)

    def guarded(heads: Any, ctx: Any) -> list[Any]:
        steps = list(steps_of(heads, ctx)) if steps_of is not None else []
        if not any(isinstance(step, RevisionStep) and not step.is_upgrade for step in steps):
            return steps
        if settings.prohibit_destructive:
            why = "[tool.manage] prohibit_destructive = true"
        elif settings.production:
            why = "the production environment"
        elif guard.is_production(ledger.read_environment(ctx.connection)):
            why = "a database last migrated in production"
        else:
            return steps
        raise Refused(
            f"refused to downgrade ({why}); nothing was changed",
            hint="pass -x force=1 to downgrade anyway",
        )

    if not compat.replace_planned_steps(migration_context, guarded) and (
        settings.prohibit_destructive or settings.production
    ):
        raise Refused("cannot check this Alembic's steps for downgrades", hint="pass -x force=1")


def run(context: Any) -> None:
    attributes = context.config.attributes
    request: EnvRequest | None = attributes.get(REQUEST_KEY)
    if request is not None:
        _run(context, request, plain=False)
        return
    with _plain_alembic_errors():
        settings = _plain_alembic_settings(context.config)
        _run(context, EnvRequest.from_tool(settings, attributes), plain=True)


# Plain `alembic` commands that run env.py without comparing models: no model import for them.
NO_MODELS_NEEDED = frozenset({"upgrade", "downgrade", "stamp", "current"})


def _compares_models(config: Any) -> bool:
    """Unknown callers (pytest-alembic, scripts calling alembic.command) get the models."""
    command = getattr(getattr(config, "cmd_opts", None), "cmd", None)
    name = getattr(command[0], "__name__", None) if command else None
    return name not in NO_MODELS_NEEDED


def _connection(given: Any, stack: ExitStack) -> Any:
    """A Connection to run on: the one given, or one of our own from a given Engine
    (pytest-alembic and Alembic's cookbook pass either); the Engine stays its owner's."""
    from sqlalchemy.engine import Connection, Engine

    if given is None or isinstance(given, Connection):
        return given
    if isinstance(given, Engine):
        return stack.enter_context(given.connect())
    kind = type(given).__name__
    raise ConfigError(
        f"config.attributes['connection'] must be an SQLAlchemy Engine or Connection, not {kind}"
    )


def _run(context: Any, request: EnvRequest, plain: bool) -> None:
    config = context.config
    settings = request.settings
    recorder = Recorder()
    if plain:
        _check_version_locations(context, settings)

    with ExitStack() as stack:
        connection = _connection(request.connection, stack)
        # manage.py hands over its discovered models; tools built on Alembic may pass their own.
        metadata = list(request.metadata) if request.metadata is not None else None
        target: dict[str, Any] = {"connection": connection}
        if connection is None and context.is_offline_mode():
            # SQL only (migrate:sql, `alembic upgrade --sql`): the URL names the dialect.
            url = database.parse_url(settings.database_url, settings.root)
            target = {"url": url.for_sqlalchemy(), "literal_binds": True}
            dialect_name = url.backend
        elif connection is None:
            url = database.parse_url(settings.database_url, settings.root)
            engine = database.create_engine_for(url, application_name="alembic")
            stack.callback(engine.dispose)
            connection = stack.enter_context(database.connect(engine))
            if settings.schema is not None:
                database.enter_schema(connection, settings.schema)
            target = {"connection": connection}
        if connection is not None:
            dialect_name = connection.dialect.name
        if plain and connection is not None and metadata is None and _compares_models(config):
            # manage.py imports models only for the commands that compare them; so does plain alembic.
            found = discovery.database_models(settings)
            metadata = list(found.metadata)

        from alembic.util import to_list

        from manage_migrations.alembic_env import sqlite_types
        from manage_migrations.alembic_env.autogen import AutogenOutcome, AutogenRequest, directives_hook
        from manage_migrations.alembic_env.rendering import render_item_hook
        from manage_migrations.alembic_env.schemas import Scope, model_schemas

        schemas = model_schemas(to_list(metadata, default=[]))
        scope = Scope(
            schemas=schemas,
            exclude_tables=settings.exclude_tables,
            exclude_schemas=settings.exclude_schemas,
            connection=connection,
        )
        context.configure(
            **target,
            target_metadata=metadata,
            include_schemas=bool(schemas),
            include_name=scope.include_name,
            include_object=scope.include_object,
            render_as_batch=dialect_name == "sqlite",
            compare_type=sqlite_types.compare_type if dialect_name == "sqlite" else True,
            compare_server_default=True,
            transaction_per_migration=True,
            on_version_apply=[recorder],
            render_item=render_item_hook(),
            process_revision_directives=directives_hook(
                metadata or [],
                request.autogen_request or AutogenRequest(),
                request.autogen_outcome or AutogenOutcome(),
            ),
        )
        if plain and connection is not None:
            _guard_downgrades(context, settings)
        if connection is not None:
            _same_defaults_are_unchanged(context.get_context().impl, connection.dialect)
        if dialect_name == "postgresql" and connection is not None:
            # Two kinds of per-column round trips in Alembic's PostgreSQL compare, made once.
            from manage_migrations.alembic_env import pg_defaults, pg_serials

            impl = context.get_context().impl
            pg_serials.install(impl, connection)
            pg_defaults.install(impl)
        recorder.restart_clock()
        with context.begin_transaction():
            context.run_migrations()
