"""Alembic where manage.py still needs it: a Config without an ini file, autogenerate and merge
(migrations themselves are run by project.core.executor)."""

from __future__ import annotations

import io
import os
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manage_migrations import collector
from manage_migrations.errors import ConfigError, HistoryError
from manage_migrations.naming import MAX_MESSAGE_LENGTH
from manage_migrations.settings import import_roots

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

    from manage_migrations.alembic_env.request import EnvRequest
    from manage_migrations.settings import Settings

# Alembic is imported by the functions that use it: `migrate` with nothing to do never needs it.

SCRIPT_LOCATION = Path(__file__).parent / "alembic_env"
# Doubled percent signs: Alembic interpolates option values (ini and pyproject alike).
FILE_TEMPLATE = "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d%%(second).2d_%%(slug)s"


def make_config(settings: Settings, request: EnvRequest | None = None) -> Config:
    """The same environment plain `alembic` gets from [tool.alembic], built in memory; env.py
    reads `request` (one object under one key) instead of loose attributes."""
    from alembic.config import Config

    from manage_migrations.alembic_env.request import REQUEST_KEY, EnvRequest

    # Alembic's own chatter ("Generating ... done") is replaced by our output.
    config = Config(stdout=io.StringIO(), cmd_opts=Namespace(quiet=True, x=None))
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(settings.migrations_dir))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("truncate_slug_length", str(MAX_MESSAGE_LENGTH))
    # Like alembic.ini's `prepend_sys_path = .`: migrations may import the user's model modules
    # (from src/ too, in a src layout).
    roots = [str(path) for path in import_roots(settings.root)]
    config.set_main_option("prepend_sys_path", os.pathsep.join(roots))
    config.attributes[REQUEST_KEY] = request or EnvRequest(settings)
    return config


def ensure_migrations_dir(settings: Settings) -> None:
    """Create the migrations directory for the first revision; a file in its place is reported
    as the graph reports it, not as an OSError."""
    from manage_migrations.core.graph import RevisionGraph

    RevisionGraph.load(settings.migrations_dir, settings.root)
    settings.migrations_dir.mkdir(parents=True, exist_ok=True)


def load_script(config: Config) -> ScriptDirectory:
    """Load every revision file once, with the revision graph's errors: the graph checks the
    history first (duplicates, missing parents, cycles), and a file that fails while Alembic
    executes it is named with its line, as when we execute it."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from manage_migrations.alembic_env.request import REQUEST_KEY
    from manage_migrations.core.graph import RevisionGraph, load_error

    settings = config.attributes[REQUEST_KEY].settings
    if not settings.migrations_dir.is_dir():
        raise ConfigError(
            f"migrations directory {settings.migrations_dir} does not exist",
            hint="create it, or run make:migration to start one",
        )
    graph = RevisionGraph.load(settings.migrations_dir, settings.root)
    if graph.leftovers:
        # Alembic knows nothing of `replaces`: to it these files are a second head.
        squash = graph.replaced_by[graph.leftovers[0].revision].name
        raise HistoryError(
            f"{', '.join(header.path.name for header in graph.leftovers)} "
            f"{'were' if len(graph.leftovers) > 1 else 'was'} pruned into {squash} but not deleted "
            "(was `migrate:dump --prune` interrupted?)",
            hint="delete them: the squash migration replaces them",
        )
    script = ScriptDirectory.from_config(config)
    try:
        script.revision_map.heads  # noqa: B018 - forces every file to load now
    except CommandError as exc:
        raise HistoryError(f"the migration history is broken: {exc}") from exc
    except (Exception, SystemExit) as exc:
        path = _failing_file(exc, settings.migrations_dir)
        if path is None:
            raise
        raise load_error(path, settings.root, exc) from exc
    return script


def _failing_file(exc: BaseException, directory: Path) -> Path | None:
    """The revision file an exception was raised in (its innermost frame there)."""
    import traceback

    if isinstance(exc, SyntaxError) and exc.filename:
        return Path(exc.filename)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        path = Path(frame.filename)
        if path.parent.resolve() == directory.resolve():
            return path
    return None


def generate_revision(
    config: Config, script: ScriptDirectory, message: str, *, autogenerate: bool
) -> Script | list[Script | None] | None:
    """Alembic's `revision` command on the ScriptDirectory already loaded: command.revision would
    load every revision file a second time. env.py's directives hook decides whether a file is
    written. (make_config sets no `revision_environment`, so without autogenerate no env runs.)"""
    from alembic.autogenerate import RevisionContext
    from alembic.runtime.environment import EnvironmentContext

    command_args = {
        "message": message,
        "autogenerate": autogenerate,
        "sql": False,
        "head": "head",
        "splice": False,
        "branch_label": None,
        "version_path": None,
        "rev_id": None,
        "depends_on": None,
    }
    revision_context = RevisionContext(config, script, command_args)
    if autogenerate:

        def retrieve_migrations(revision: Any, context: Any) -> list[Any]:
            revision_context.run_autogenerate(revision, context)
            return []

        with EnvironmentContext(
            config,
            script,
            fn=retrieve_migrations,
            as_sql=False,
            template_args=revision_context.template_args,
            revision_context=revision_context,
        ):
            script.run_env()
    with collector.resumed():
        scripts = list(revision_context.generate_scripts())
    return scripts[0] if len(scripts) == 1 else scripts


def merge_heads(config: Config, script: ScriptDirectory, message: str) -> Script | None:
    """Alembic's merge command over every current head, on the ScriptDirectory already loaded."""
    from alembic.util import rev_id

    return script.generate_revision(rev_id(), message, refresh=True, head="heads", config=config)
