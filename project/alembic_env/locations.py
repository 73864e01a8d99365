"""Plain `alembic` finds its revision files where manage.py does.

Alembic reads `version_locations` from [tool.alembic] (or alembic.ini) before any env.py runs
(`alembic heads` and `alembic history` never run one), so the only place to make it agree with
`[tool.manage] migrations` is Config.get_version_locations_list. It is wrapped once, and only for
configs read from a file whose script_location is this environment: the result is THE migrations
directory of settings.migrations_directory, or a CommandError when the two keys disagree. With
`-x database=NAME` it is the migrations directory of that database instead, with `-x tenant=NAME`
the tenant migrations directory."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

ENVIRONMENT_DIR = Path(__file__).resolve().parent


def _project_root(config: Any) -> Path | None:
    """The directory of the config file, if the config is a file using this environment."""
    from alembic.util import coerce_resource_to_filename

    source = config.toml_file_name or config.config_file_name
    script_location = config.get_alembic_option("script_location")
    if not source or not isinstance(script_location, str):
        return None
    try:
        ours = coerce_resource_to_filename(script_location).resolve() == ENVIRONMENT_DIR
    except (ImportError, OSError, ValueError):
        return None
    return Path(source).resolve().parent if ours else None


def install() -> None:
    """Wrap Config.get_version_locations_list (idempotent); a no-op on an Alembic without it."""
    from alembic.config import Config
    from alembic.util import CommandError

    from manage_migrations.compat import x_arguments
    from manage_migrations.errors import ManageError
    from manage_migrations.settings import (
        DEFAULT_DATABASE,
        migrations_directory,
        read_pyproject,
        resolve_settings,
    )

    original = getattr(Config, "get_version_locations_list", None)
    if original is None or getattr(original, "reconciled_with_manage_py", False):
        return

    @functools.wraps(original)
    def get_version_locations_list(self: Any) -> list[str] | None:
        given = original(self)
        root = _project_root(self)
        if root is None:
            return given
        in_ini = self.file_config.has_option(self.config_ini_section, "version_locations")
        source = "alembic.ini [alembic]" if in_ini else "[tool.alembic]"
        try:
            arguments = x_arguments(self)
            if "tenant" in arguments:
                from manage_migrations.tenancy.config import read_tenancy

                return [str(read_tenancy(root).migrations_dir)]
            database = arguments.get("database", DEFAULT_DATABASE)
            if database != DEFAULT_DATABASE:
                return [str(resolve_settings(root=root, database=database).migrations_dir)]
            tool = read_pyproject(root).get("tool", {})
            manage = tool.get("manage", {}) if isinstance(tool, dict) else {}
            configured = manage.get("migrations") if isinstance(manage, dict) else None
            return [str(migrations_directory(root, configured, given, source))]
        except ManageError as exc:
            raise CommandError(f"{exc.message}; {exc.hint}" if exc.hint else exc.message) from exc

    get_version_locations_list.reconciled_with_manage_py = True  # type: ignore[attr-defined]
    Config.get_version_locations_list = get_version_locations_list  # type: ignore[method-assign]
