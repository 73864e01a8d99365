"""Settings and how they are resolved: option > DATABASE_URL > .env > [tool.manage] > defaults,
for the default database or one declared as [tool.manage.databases.NAME]."""

from __future__ import annotations

import math
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from manage_migrations.dotenv import read_dotenv
from manage_migrations.errors import ConfigError, ManageError, UsageError

DEFAULT_DATABASE_URL = "sqlite:///database.sqlite3"
DEFAULT_MIGRATIONS = "migrations"
DEFAULT_LOCK_TIMEOUT = 60.0
MAX_LOCK_TIMEOUT = 86400.0
LOCK_TIMEOUT_RANGE = f"a number of seconds from 0 to {MAX_LOCK_TIMEOUT:g} (one day)"
PROJECT_MARKERS = ("manage.py", "pyproject.toml")
PRODUCTION = "production"
TRUE_WORDS = ("true", "1", "yes", "on")  # a boolean option of Alembic's, as its configparser reads it

# Every key [tool.manage] accepts, in one place: anything else is a typo that would otherwise
# be ignored in silence (`database-url` quietly meaning SQLite).
TOOL_KEYS = (
    "database_url",
    "models",
    "migrations",
    "exclude_tables",
    "exclude_schemas",
    "environment",
    "prohibit_destructive",
    "lock_timeout",
)
# Sub-tables ([tool.manage.<name>]) are registered here by the feature that reads them.
TOOL_TABLES: tuple[str, ...] = ("databases", "tenants")

# Named databases: [tool.manage.databases.NAME] holds what one database has of its own; the other
# keys of [tool.manage] (environment, guard, lock wait, exclusions) hold for every database. The
# keys directly under [tool.manage] are the database called "default".
DEFAULT_DATABASE = "default"
TENANTS = "tenants"  # how the tenant models are named beside the databases' (settings.database)
DATABASE_KEYS = ("database_url", "models", "migrations")
# A name is typed after --database, becomes NAME_DATABASE_URL and the directory migrations/NAME.
DATABASE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Settings:
    root: Path
    database_url: str
    database_url_source: str
    model_packages: tuple[str, ...] = ("models",)
    migrations_dir: Path = field(default=Path("migrations"))
    environment: str = "local"
    exclude_tables: tuple[str, ...] = ()
    exclude_schemas: tuple[str, ...] = ()
    prohibit_destructive: bool = False
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    database: str = DEFAULT_DATABASE
    # The model packages of every database the project declares (this one included), so that
    # discovery can refuse models two databases share; empty for a Settings built by hand.
    models_by_database: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # A tenant's schema (PostgreSQL) or database (MariaDB) on the server of `database_url`: its
    # unqualified tables, alembic_version and ledger live there, and its lock is its own.
    schema: str | None = None

    @property
    def production(self) -> bool:
        return is_production(self.environment)

    @property
    def database_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.models_by_database) or (self.database,)


def is_production(environment: str | None) -> bool:
    """`Production`, `PRODUCTION` and ` production ` all mean production: a guard must not hinge on case."""
    return environment is not None and environment.strip().casefold() == PRODUCTION


def find_project_root(start: Path | None = None) -> Path:
    """The nearest directory holding manage.py or pyproject.toml, so commands work from subfolders."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if any((candidate / marker).is_file() for marker in PROJECT_MARKERS):
            return candidate
    return here


def import_roots(root: Path) -> list[Path]:
    """Where the project's own packages are imported from: the root, and `src/` for a src layout."""
    return [root, *([root / "src"] if (root / "src").is_dir() else [])]


def make_importable(root: Path) -> None:
    """Models and the modules migrations import load from any directory the tool is run in (the
    `manage` console script does not put the working directory on sys.path, as python does)."""
    for base in reversed(import_roots(root)):
        if str(base) not in sys.path:
            sys.path.insert(0, str(base))


def read_pyproject(root: Path) -> dict[str, object]:
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    try:
        with pyproject.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read {pyproject.name}: {exc}") from exc


def _tool_section(data: Mapping[str, object], name: str) -> dict[str, object]:
    tool = data.get("tool", {})
    table = tool.get(name, {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"[tool.{name}] in pyproject.toml must be a table")
    return table


def tool_table(data: Mapping[str, object], name: str) -> dict[str, object]:
    """[tool.NAME] of a parsed pyproject.toml ({} when absent); ConfigError when it is not a table."""
    return _tool_section(data, name)


def _closest(typed: str, known: tuple[str, ...]) -> str | None:
    import difflib  # only on error paths: commands stay quick to start

    close = difflib.get_close_matches(typed.replace("-", "_").lower(), known, n=1)
    return close[0] if close else None


def _refuse_unknown_keys(table: Mapping[str, object], known: tuple[str, ...], where: str) -> None:
    for key in table:
        if key in known:
            continue
        close = _closest(key, known)
        hint = f"did you mean {close}?" if close else f"known keys: {', '.join(known)}"
        raise ConfigError(f"unknown key {key!r} in {where} of pyproject.toml", hint=hint)


def check_known_keys(tool: Mapping[str, object]) -> None:
    """A key manage.py does not know is refused, naming the key it probably meant."""
    _refuse_unknown_keys(tool, (*TOOL_KEYS, *TOOL_TABLES), "[tool.manage]")


def _string_tuple(value: object, key: str, table: str = "[tool.manage]") -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ConfigError(f"{table} {key} must be a string or a list of strings")


def check_lock_timeout(value: object, source: str, error: type[ManageError] = ConfigError) -> float:
    """A lock wait in [0, one day]: inf, nan or 1e12 would hang or crash the lock instead of waiting."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= MAX_LOCK_TIMEOUT
    ):
        shown = (
            f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else repr(value)
        )
        raise error(
            f"{source} must be {LOCK_TIMEOUT_RANGE}, not {shown}",
            hint="give the longest wait you can accept before giving up; 0 means do not wait",
        )
    return float(value)


def _location_text(location: str, root: Path) -> str:
    """Alembic's interpolation of a [tool.alembic] path (`%(here)s`, `%%`)."""
    try:
        return location % {"here": str(root)}
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"[tool.alembic] version_locations: cannot expand {location!r} ({exc})") from exc


def migrations_directory(
    root: Path, configured: object, version_locations: list[str] | None, alembic_source: str
) -> Path:
    """THE migrations directory, the same for manage.py and plain `alembic`: `[tool.manage]
    migrations` or Alembic's version_locations, whichever is given (the default when neither is);
    when both are given they must name the same directory."""
    if configured is not None and not isinstance(configured, str):
        raise ConfigError("[tool.manage] migrations must be a string")
    ours = (root / configured).resolve() if configured is not None else None
    if not version_locations:
        return ours or (root / DEFAULT_MIGRATIONS).resolve()
    theirs = [(root / location).resolve() for location in version_locations]
    if len(set(theirs)) > 1:
        raise ConfigError(
            f"{alembic_source} version_locations names {len(theirs)} directories: "
            + ", ".join(version_locations),
            hint="manage.py keeps every migration in one directory; list only that one",
        )
    if ours is not None and ours != theirs[0]:
        raise ConfigError(
            f"[tool.manage] migrations = {configured!r} and {alembic_source} version_locations = "
            f"{version_locations[0]!r} name different directories ({ours} and {theirs[0]}), so manage.py "
            "and plain alembic would see different migrations",
            hint="make both name the same directory, or remove one of them: it then follows the other",
        )
    return theirs[0]


def _alembic_version_locations(data: Mapping[str, object], root: Path) -> list[str] | None:
    value = _tool_section(data, "alembic").get("version_locations")
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError("[tool.alembic] version_locations must be a list of directories")
    return [_location_text(location, root) for location in value]


def url_variable(database: str) -> str:
    """The environment variable (and .env key) of a database's URL: DATABASE_URL for the default,
    ANALYTICS_DATABASE_URL for `analytics` (upper-cased, other characters as `_`)."""
    if database == DEFAULT_DATABASE:
        return "DATABASE_URL"
    return re.sub(r"[^A-Z0-9]", "_", database.upper()) + "_DATABASE_URL"


def _table_of(database: str) -> str:
    return "[tool.manage]" if database == DEFAULT_DATABASE else f"[tool.manage.databases.{database}]"


def declared_databases(tool: Mapping[str, object]) -> dict[str, Mapping[str, object]]:
    """The named databases of [tool.manage.databases], each table checked as [tool.manage] is."""
    tables = tool.get("databases", {})
    if not isinstance(tables, dict):
        raise ConfigError(
            "[tool.manage] databases must be a table of databases",
            hint="declare each one as [tool.manage.databases.NAME] with database_url, models and migrations",
        )
    variables: dict[str, str] = {}
    for name, table in tables.items():
        if name in (DEFAULT_DATABASE, TENANTS):
            raise ConfigError(
                f"[tool.manage.databases.{name}] declares a database called {name!r}",
                hint="the keys directly under [tool.manage] are the default database and "
                "[tool.manage.tenants] the tenants; give this one another name",
            )
        if not DATABASE_NAME.fullmatch(name):
            raise ConfigError(
                f"database name {name!r} in [tool.manage.databases] is not allowed",
                hint="start it with a letter and use letters, digits, _ and - only: it is typed after "
                "--database and becomes an environment variable and a directory",
            )
        where = _table_of(name)
        if not isinstance(table, dict):
            raise ConfigError(
                f"[tool.manage.databases] {name} must be a table",
                hint=f"declare it as {where} with database_url, models and migrations",
            )
        for key in table:
            if key in TOOL_KEYS and key not in DATABASE_KEYS:
                raise ConfigError(
                    f"{key} in {where} of pyproject.toml is not set per database",
                    hint="set it in [tool.manage]: it holds for every database",
                )
        _refuse_unknown_keys(table, DATABASE_KEYS, where)
        if "models" not in table:
            raise ConfigError(
                f"{where} has no models",
                hint=f'name its model packages, e.g. models = ["{name.replace("-", "_")}_models"] (the '
                "default's models would give it the default's tables)",
            )
        variable = url_variable(name)
        if variable in variables:
            raise ConfigError(
                f"databases {variables[variable]!r} and {name!r} would both take their URL from {variable}",
                hint="rename one of them",
            )
        variables[variable] = name
    return tables


def unknown_database(name: str, known: tuple[str, ...]) -> UsageError:
    """--database (or `alembic -x database=`) naming no database of pyproject.toml."""
    close = _closest(name, known)
    return UsageError(
        f"unknown database {name!r}; known: {', '.join(known)}",
        hint=f"did you mean {close}?"
        if close
        else f"declare it in pyproject.toml as [tool.manage.databases.{name}], or pick a known one",
    )


def _database_url(
    database: str,
    table: Mapping[str, object],
    option: str | None,
    env: Mapping[str, str],
    dotenv: Mapping[str, str],
) -> tuple[str, str]:
    """A database's URL and where it came from, highest precedence first."""
    default = database == DEFAULT_DATABASE
    variable = url_variable(database)
    candidates = [
        (option, "--database-url"),
        (env.get(variable), variable),
        (dotenv.get(variable), ".env" if default else f".env {variable}"),
        (table.get("database_url"), f"{_table_of(database)} database_url"),
        (DEFAULT_DATABASE_URL if default else f"sqlite:///{database}.sqlite3", "default"),
    ]
    url, source = next((value, origin) for value, origin in candidates if value)
    if not isinstance(url, str):
        raise ConfigError(f"{_table_of(database)} database_url must be a string")
    return url.strip(), source


def _named_migrations_directory(
    root: Path, database: str, table: Mapping[str, object], default_directory: Path
) -> Path:
    """A named database's revision files: its `migrations`, or a subdirectory of the default's
    (safe: manage.py and plain Alembic read only the top level of a migrations directory)."""
    configured = table.get("migrations")
    if configured is None:
        return default_directory / database
    if not isinstance(configured, str):
        raise ConfigError(f"{_table_of(database)} migrations must be a string")
    return (root / configured).resolve()


def _refuse_shared_directories(directories: Mapping[str, Path], root: Path, recursive: bool) -> None:
    """Each database needs a history of its own: one directory read by two would give each the
    other's revisions (so would a nested one, where Alembic reads version_locations recursively)."""
    names = list(directories)
    for index, first in enumerate(names):
        for second in names[index + 1 :]:
            one, other = directories[first], directories[second]
            if one == other:
                raise ConfigError(
                    f"databases {first!r} and {second!r} share the migrations directory "
                    f"{_relative_to(one, root)}",
                    hint="give each database a migrations directory of its own",
                )
            if recursive and (one.is_relative_to(other) or other.is_relative_to(one)):
                raise ConfigError(
                    f"the migrations directories of databases {first!r} and {second!r} are nested "
                    "and [tool.alembic] recursive_version_locations is true",
                    hint="plain alembic would read one database's revisions as the other's: set it to "
                    "false, or move the directories apart",
                )


def _relative_to(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _refuse_one_database_twice(urls: Mapping[str, str], root: Path) -> None:
    """Two names for one database would keep both histories in its one alembic_version."""
    from manage_migrations.core.url import parse

    seen: dict[tuple[object, ...], str] = {}
    for name, raw in urls.items():
        try:
            url = parse(raw, root)
        except ManageError:
            continue  # the command that uses this URL reports it
        identity = url.identity
        if identity is None:
            continue
        if identity in seen:
            raise ConfigError(
                f"databases {seen[identity]!r} and {name!r} are the same database ({url.display})",
                hint="give each its own database: they would share one alembic_version and mix "
                "their histories",
            )
        seen[identity] = name


def resolve_settings(
    database_url: str | None = None,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
    lock_timeout: float | None = None,
    database: str | None = None,
) -> Settings:
    """Merge every source of settings, highest precedence first, for one database (the default
    when None); `database_url` overrides that database's URL only."""
    project_root = (root or find_project_root()).resolve()
    env = os.environ if environ is None else environ
    dotenv = read_dotenv(project_root / ".env", env)
    pyproject = read_pyproject(project_root)
    tool = _tool_section(pyproject, "manage")
    check_known_keys(tool)
    tables: dict[str, Mapping[str, object]] = {DEFAULT_DATABASE: tool, **declared_databases(tool)}
    selected = DEFAULT_DATABASE if database is None else database
    if selected not in tables:
        raise unknown_database(selected, tuple(tables))

    environment = env.get("APP_ENV") or dotenv.get("APP_ENV") or tool.get("environment", "local")
    if not isinstance(environment, str):
        raise ConfigError("[tool.manage] environment must be a string")
    prohibit = tool.get("prohibit_destructive", False)
    if not isinstance(prohibit, bool):
        raise ConfigError("[tool.manage] prohibit_destructive must be true or false")
    if lock_timeout is None:
        timeout = check_lock_timeout(
            tool.get("lock_timeout", DEFAULT_LOCK_TIMEOUT), "[tool.manage] lock_timeout"
        )
    else:
        timeout = check_lock_timeout(lock_timeout, "--lock-timeout", UsageError)
    default_migrations = migrations_directory(
        project_root,
        tool.get("migrations"),
        _alembic_version_locations(pyproject, project_root),
        "[tool.alembic]",
    )
    models = {
        name: _string_tuple(table.get("models", "models"), "models", _table_of(name))
        for name, table in tables.items()
    }
    tenants = tool.get("tenants")
    if isinstance(tenants, dict) and "models" in tenants:
        # Tenant models are one more set that must not share a MetaData with any database's.
        models[TENANTS] = _string_tuple(tenants["models"], "models", "[tool.manage.tenants]")
    if len(tables) == 1:
        url, source = _database_url(selected, tool, database_url, env, dotenv)
        migrations = default_migrations
    else:
        directories = {
            name: default_migrations
            if name == DEFAULT_DATABASE
            else _named_migrations_directory(project_root, name, table, default_migrations)
            for name, table in tables.items()
        }
        recursive = _tool_section(pyproject, "alembic").get("recursive_version_locations", False)
        _refuse_shared_directories(directories, project_root, str(recursive).lower() in TRUE_WORDS)
        urls = {
            name: _database_url(name, table, database_url if name == selected else None, env, dotenv)
            for name, table in tables.items()
        }
        _refuse_one_database_twice({name: url for name, (url, _) in urls.items()}, project_root)
        url, source = urls[selected]
        migrations = directories[selected]
    return Settings(
        root=project_root,
        database_url=url,
        database_url_source=source,
        model_packages=models[selected],
        migrations_dir=migrations,
        environment=environment.strip(),
        exclude_tables=_string_tuple(tool.get("exclude_tables", []), "exclude_tables"),
        exclude_schemas=_string_tuple(tool.get("exclude_schemas", []), "exclude_schemas"),
        prohibit_destructive=prohibit,
        lock_timeout=timeout,
        database=selected,
        models_by_database=tuple(models.items()),
    )
