"""The typer app: global options, commands under colon names, and the error guard (exit codes)."""

from __future__ import annotations

import contextlib
import sys
import traceback
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import Abort, Exit, TyperException

from manage_migrations import completion, program
from manage_migrations.commands import (
    AppState,
    make_migration,
    migrate,
    migrate_check,
    migrate_dump,
    migrate_fresh,
    migrate_history,
    migrate_refresh,
    migrate_rehash,
    migrate_reset,
    migrate_resolve,
    migrate_rollback,
    migrate_sql,
    migrate_status,
    state,
    tenants_create,
    tenants_migrate,
    tenants_resolve,
    tenants_rollback,
    tenants_status,
)
from manage_migrations.compat import lighten
from manage_migrations.console import Output
from manage_migrations.core import interrupts
from manage_migrations.errors import ManageError, UsageError
from manage_migrations.settings import DEFAULT_DATABASE, check_lock_timeout

if TYPE_CHECKING:
    from manage_migrations.compat import ClickContext

GLOBAL_FLAGS = frozenset({"--traceback", "-q", "--quiet", "-v", "--verbose"})
GLOBAL_VALUE_OPTIONS = frozenset({"--database", "--database-url", "--lock-timeout"})
INTERRUPTED = 130


def hoist_global_options(args: list[str]) -> list[str]:
    """Let global options follow the command name too: `migrate --database-url URL`."""
    hoisted: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        if arg in GLOBAL_FLAGS or arg.split("=", 1)[0] in GLOBAL_VALUE_OPTIONS:
            hoisted.append(arg)
            if arg in GLOBAL_VALUE_OPTIONS and index + 1 < len(args):
                hoisted.append(args[index + 1])
                index += 1
        else:
            rest.append(arg)
        index += 1
    return hoisted + rest


def _secrets_scrubbed(text: str, app: AppState | None) -> str:
    """Whatever source the URL came from (option, environment, .env, pyproject), hide its secrets."""
    from manage_migrations.core.url import without_secrets

    urls = [app.database_url] if app and app.database_url else []
    with contextlib.suppress(ManageError):
        urls.append((app or AppState()).settings().database_url)
    return without_secrets(text, urls)


class ManageGroup(TyperGroup):
    """Click group that hoists global options and turns every failure into an exit code."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def get_params(self, ctx: ClickContext) -> list[Any]:
        return lighten(super().get_params(ctx))

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except ManageError as exc:
            self._report(ctx, exc, exc.exit_code)
        except KeyboardInterrupt as exc:
            self._report(ctx, ManageError("interrupted"), INTERRUPTED, exc)
        except (Exit, Abort, TyperException):
            raise
        except Exception as exc:
            wrapped = ManageError(
                f"unexpected {type(exc).__name__}: {exc}",
                hint="run again with --traceback and report it if it looks like a bug",
            )
            self._report(ctx, wrapped, 1, exc)

    def _report(
        self,
        ctx: ClickContext,
        error: ManageError,
        code: int,
        original: BaseException | None = None,
    ) -> None:
        app = ctx.obj if isinstance(ctx.obj, AppState) else None
        output = app.output if app else Output()
        if app and app.traceback:
            shown = original or error
            text = "".join(traceback.format_exception(shown))
            output.traceback(_secrets_scrubbed(text, app))
        error.message = _secrets_scrubbed(error.message, app)
        output.error(error)
        raise typer.Exit(code)


class ManageCommand(TyperCommand):
    """A command whose options are parsed without importing pydantic where none is needed."""

    def get_params(self, ctx: ClickContext) -> list[Any]:
        return lighten(super().get_params(ctx))


app = typer.Typer(
    cls=ManageGroup,
    name=program.SCRIPT,
    help="Artisan-style migrations for SQLAlchemy models, powered by Alembic.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    epilog="Global options may also follow the command name.",
)


@app.callback()
def global_options(
    ctx: typer.Context,
    *,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="Which database of pyproject.toml to use: default, or one of [tool.manage.databases].",
            show_default=False,
            autocompletion=completion.database_names,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="URL of the database to use (overrides NAME_DATABASE_URL / DATABASE_URL, .env and "
            "pyproject.toml).",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print only results and errors.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Print more detail.")] = False,
    show_traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the Python traceback of an error.")
    ] = False,
    lock_timeout: Annotated[
        float | None,
        typer.Option(
            "--lock-timeout",
            help="Seconds to wait for another migrate/rollback to finish (default 60, at most 86400).",
            show_default=False,
        ),
    ] = None,
) -> None:
    app_state = state(ctx)
    if lock_timeout is not None:
        check_lock_timeout(lock_timeout, "--lock-timeout", UsageError)
    app_state.database_url = database_url
    app_state.database = database
    app_state.quiet = quiet
    app_state.verbose = verbose
    app_state.traceback = show_traceback
    app_state.lock_timeout = lock_timeout
    # Another database than the default is named where a command says which database it is on,
    # and in the commands its hints suggest.
    named = database if database not in (None, DEFAULT_DATABASE) else None
    app_state.output = Output(quiet=quiet, verbose=verbose, database=named)
    program.select_database(named)


app.command("migrate", cls=ManageCommand)(migrate.command)
app.command("migrate:rollback", cls=ManageCommand)(migrate_rollback.command)
app.command("migrate:status", cls=ManageCommand)(migrate_status.command)
app.command("migrate:fresh", cls=ManageCommand)(migrate_fresh.command)
app.command("migrate:reset", cls=ManageCommand)(migrate_reset.command)
app.command("migrate:refresh", cls=ManageCommand)(migrate_refresh.command)
app.command("migrate:check", cls=ManageCommand)(migrate_check.command)
app.command("migrate:history", cls=ManageCommand)(migrate_history.command)
app.command("migrate:sql", cls=ManageCommand)(migrate_sql.command)
app.command("migrate:resolve", cls=ManageCommand)(migrate_resolve.command)
app.command("migrate:rehash", cls=ManageCommand)(migrate_rehash.command)
app.command("make:migration", cls=ManageCommand)(make_migration.command)
app.command("migrate:dump", cls=ManageCommand)(migrate_dump.command)
app.command("tenants:migrate", cls=ManageCommand)(tenants_migrate.command)
app.command("tenants:rollback", cls=ManageCommand)(tenants_rollback.command)
app.command("tenants:status", cls=ManageCommand)(tenants_status.command)
app.command("tenants:create", cls=ManageCommand)(tenants_create.command)
app.command("tenants:resolve", cls=ManageCommand)(tenants_resolve.command)


def main() -> None:
    """SIGTERM (a deploy tool stopping us) is handled like Ctrl-C: roll back, release, report. The
    usage line and hints name the program as it was run: `manage.py`, or the `manage` console
    script (whose completion variable is then `_MANAGE_COMPLETE`)."""
    interrupts.install()
    try:
        app(prog_name=program.invoked_as(sys.argv[0]), args=sys.argv[1:])
    finally:
        interrupts.finish()
