"""The one place that drives Alembic: a Config without an ini file, the revision graph, env runs."""

from __future__ import annotations

import functools
import inspect
import io
from argparse import Namespace
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from project import collector
from project.errors import ConfigError, HistoryError
from project.naming import MAX_MESSAGE_LENGTH

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationStep
    from alembic.script import Script, ScriptDirectory

    from project.settings import Settings

# Alembic is imported by the functions that use it: `migrate` with nothing to do never needs it.

SCRIPT_LOCATION = Path(__file__).parent / "alembic_env"
# Doubled percent signs: Alembic interpolates option values (ini and pyproject alike).
FILE_TEMPLATE = "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d%%(second).2d_%%(slug)s"


@dataclass(frozen=True)
class MigrationFile:
    revision: str
    down_revisions: tuple[str, ...]
    name: str
    path: Path
    message: str


def make_config(settings: Settings, **attributes: Any) -> Config:
    """The same environment plain `alembic` gets from [tool.alembic], built in memory."""
    from alembic.config import Config

    # Alembic's own chatter ("Generating ... done") is replaced by our output.
    config = Config(stdout=io.StringIO(), cmd_opts=Namespace(quiet=True, x=None))
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(settings.migrations_dir))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("truncate_slug_length", str(MAX_MESSAGE_LENGTH))
    # Like alembic.ini's `prepend_sys_path = .`: migrations may import the user's model modules.
    config.set_main_option("prepend_sys_path", str(settings.root))
    config.attributes.update(settings=settings, **attributes)
    return config


def load_script(config: Config) -> ScriptDirectory:
    """Load every revision file once; a broken file is named with its line."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    settings = config.attributes["settings"]
    if not settings.migrations_dir.is_dir():
        raise ConfigError(
            f"migrations directory {settings.migrations_dir} does not exist",
            hint="create it, or run make:migration to start one",
        )
    script = ScriptDirectory.from_config(config)
    try:
        script.revision_map.heads  # noqa: B018 - forces every file to load now
    except SyntaxError as exc:
        raise ConfigError(
            f"cannot load migration {_relative(exc.filename, settings.root)}, line {exc.lineno}: {exc.msg}"
        ) from exc
    except CommandError as exc:
        raise HistoryError(f"the migration history is broken: {exc}") from exc
    return script


def _relative(path: str | None, root: Path) -> str:
    try:
        return str(Path(path or "?").resolve().relative_to(root))
    except ValueError:
        return str(path)


def as_file(script: Script) -> MigrationFile:
    path = Path(script.path)
    return MigrationFile(
        revision=script.revision,
        down_revisions=tuple(_as_tuple(script.down_revision)),
        name=path.stem,
        path=path,
        message=(script.doc or "").strip(),
    )


def _as_tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def ordered_files(script: ScriptDirectory) -> list[MigrationFile]:
    """Every revision, oldest first (a topological order of the graph)."""
    return [as_file(rev) for rev in reversed(list(script.walk_revisions()))]


def heads(script: ScriptDirectory) -> tuple[str, ...]:
    return tuple(script.get_heads())


def applied_revisions(script: ScriptDirectory, version_heads: Iterable[str]) -> set[str]:
    """Revisions at or below the recorded heads; unknown heads raise HistoryError."""
    applied: set[str] = set()
    pending = list(version_heads)
    while pending:
        revision_id = pending.pop()
        if revision_id in applied:
            continue
        revision = find_revision(script, revision_id)
        applied.add(revision.revision)
        pending.extend(_as_tuple(revision.down_revision))
    return applied


def find_revision(script: ScriptDirectory, revision_id: str) -> Script:
    try:
        revision = script.revision_map.get_revision(revision_id)
    except Exception as exc:  # Alembic raises several ResolutionError shapes
        raise HistoryError(
            f"the database is at revision {revision_id}, which has no migration file",
            hint="restore the missing file (or run the newer release that created it)",
        ) from exc
    if revision is None:
        raise HistoryError(f"unknown revision {revision_id!r}")
    return revision


def upgrade_steps(
    script: ScriptDirectory, destination: str, version_heads: tuple[str, ...]
) -> list[MigrationStep]:
    from alembic.util import CommandError

    try:
        return script._upgrade_revs(destination, version_heads)
    except CommandError as exc:
        raise HistoryError(str(exc)) from exc


def downgrade_steps(script: ScriptDirectory, revision_ids: Iterable[str]) -> list[MigrationStep]:
    """One step per revision, newest first, exactly as given."""
    from alembic.runtime.migration import MigrationStep

    return [
        MigrationStep.downgrade_from_script(script.revision_map, find_revision(script, rev))
        for rev in revision_ids
    ]


def _skip(**_kwargs: Any) -> None:
    """Stands in for upgrade()/downgrade() of a faked step: bookkeeping only."""


def faked(steps: list[MigrationStep]) -> list[MigrationStep]:
    """The same steps with their migration functions skipped (Alembic's stamp, Django's --fake).

    Alembic still updates alembic_version and calls on_version_apply, so the ledger follows.
    """
    for step in steps:
        step.migration_fn = _skip
    return steps


def upgrade_source(step: MigrationStep) -> str:
    """The source of a step's upgrade(), for the production guard to look for drops."""
    try:
        return inspect.getsource(step.revision.module.upgrade)
    except (OSError, TypeError, AttributeError):
        return ""


def single_step(script: ScriptDirectory, revision_id: str, *, upgrade: bool) -> MigrationStep:
    """One migration's upgrade or downgrade, whatever the database's state."""
    from alembic.runtime.migration import MigrationStep

    revision = find_revision(script, revision_id)
    if upgrade:
        return MigrationStep.upgrade_from_script(script.revision_map, revision)
    return MigrationStep.downgrade_from_script(script.revision_map, revision)


def step_file(step: MigrationStep) -> MigrationFile:
    return as_file(step.revision)


def runs_outside_transaction(step: MigrationStep) -> bool:
    """A migration file opts out of its transaction with a module-level `transactional = False`."""
    return getattr(step.revision.module, "transactional", True) is False


def _in_autocommit_block(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        from alembic import op

        with op.get_context().autocommit_block():
            return function(*args, **kwargs)

    run.outside_transaction = True  # type: ignore[attr-defined]
    return run


def _run_declared_steps_outside_transactions(steps: list[MigrationStep]) -> None:
    """Alembic's own escape hatch, applied for the migration: its whole body in autocommit_block()."""
    for step in steps:
        function = step.migration_fn
        if runs_outside_transaction(step) and not getattr(function, "outside_transaction", False):
            step.migration_fn = _in_autocommit_block(function)


def run_steps(
    config: Config,
    script: ScriptDirectory,
    steps: list[MigrationStep],
    *,
    as_sql: bool = False,
    starting_rev: str | None = None,
) -> None:
    """Run the given steps in one Alembic environment run (env.py reads config.attributes)."""
    from alembic.runtime.environment import EnvironmentContext

    if not as_sql:
        _run_declared_steps_outside_transactions(steps)

    def planned_steps(_current: Any, _context: Any) -> Iterable[MigrationStep]:
        return steps

    with EnvironmentContext(config, script, fn=planned_steps, as_sql=as_sql, starting_rev=starting_rev):
        script.run_env()


def run_batch(config: Config, script: ScriptDirectory, steps: list[MigrationStep]) -> None:
    """Run the steps as one batch in the connection's open transaction (project.batch_runner)."""
    config.attributes["batch_steps"] = steps
    try:
        run_steps(config, script, steps)
    finally:
        del config.attributes["batch_steps"]


def needs_own_transaction(step: MigrationStep) -> bool:
    """A migration that commits by itself (autocommit_block, or `transactional = False`)."""
    if runs_outside_transaction(step):
        return True
    return "autocommit_block" in Path(step.revision.path).read_text(encoding="utf-8", errors="replace")


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


def merge_heads(config: Config, message: str) -> Script | None:
    """Alembic's merge command over every current head."""
    from alembic import command

    return command.merge(config, revisions="heads", message=message)


def describe_error(exc: BaseException) -> str:
    """One line for a failure raised inside a migration (DBAPI errors without their SQL dump)."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip()
    first_line = text.splitlines()[0] if text else ""
    if original is not None:
        return f"{type(original).__name__}: {first_line}"
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
