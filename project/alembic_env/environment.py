"""What env.py does: use the connection and models handed over in Config.attributes, or (under
plain `alembic`) resolve the same settings and discover the same models itself."""

from __future__ import annotations

import fnmatch
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from project import database, discovery, ledger
from project.recorder import Recorder
from project.settings import Settings, find_project_root, resolve_settings


def _plain_alembic_settings(config: Any) -> Settings:
    source = config.toml_file_name or config.config_file_name
    root = Path(source).resolve().parent if source else find_project_root()
    return resolve_settings(root=root)


def name_filter(settings: Settings) -> Any:
    """Keep the tool's own tables (and excluded ones) out of autogenerate's comparison."""

    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        if type_ != "table" or name is None:
            return True
        if name in ledger.TOOL_TABLES:
            return False
        return not any(fnmatch.fnmatchcase(name, pattern) for pattern in settings.exclude_tables)

    return include_name


def run(context: Any) -> None:
    config = context.config
    attributes = config.attributes
    settings: Settings = attributes.get("settings") or _plain_alembic_settings(config)
    recorder: Recorder = attributes.get("recorder") or Recorder()

    with ExitStack() as stack:
        connection = attributes.get("connection")
        metadata = attributes.get("metadata")
        target: dict[str, Any] = {"connection": connection}
        if connection is None and context.is_offline_mode():
            # SQL only (migrate:sql, `alembic upgrade --sql`): the URL names the dialect.
            url = database.parse_url(settings.database_url, settings.root)
            target = {"url": url.for_sqlalchemy(), "literal_binds": True}
            dialect_name = url.get_backend_name()
        elif connection is None:
            url = database.parse_url(settings.database_url, settings.root)
            engine = database.create_engine_for(url, application_name="alembic")
            stack.callback(engine.dispose)
            connection = stack.enter_context(database.connect(engine))
            target = {"connection": connection}
            if metadata is None:  # like any env.py: models are imported for every command
                found = discovery.discover_models(settings.root, settings.model_packages)
                metadata = list(found.metadata)
        if connection is not None:
            dialect_name = connection.dialect.name

        from project.alembic_env.autogen import AutogenOutcome, AutogenRequest, directives_hook
        from project.alembic_env.rendering import render_item_hook

        context.configure(
            **target,
            target_metadata=metadata,
            include_name=name_filter(settings),
            render_as_batch=dialect_name == "sqlite",
            compare_type=True,
            compare_server_default=True,
            transaction_per_migration=True,
            on_version_apply=[recorder],
            render_item=render_item_hook(),
            process_revision_directives=directives_hook(
                metadata or [],
                attributes.get("autogen_request") or AutogenRequest(),
                attributes.get("autogen_outcome") or AutogenOutcome(),
            ),
        )
        if dialect_name == "postgresql" and connection is not None:
            # Two kinds of per-column round trips in Alembic's PostgreSQL compare, made once.
            from project.alembic_env import pg_defaults, pg_serials

            impl = context.get_context().impl
            pg_serials.install(impl, connection)
            pg_defaults.install(impl)
        recorder.restart_clock()
        batch = attributes.get("batch_steps")
        with context.begin_transaction():
            if batch is None:
                context.run_migrations()
            else:
                from project.batch_runner import run_batch

                run_batch(context.get_context(), batch, recorder)
