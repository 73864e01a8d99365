"""Settings and how they are resolved: option > DATABASE_URL > .env > [tool.manage] > defaults."""

from __future__ import annotations

import math
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from manage_migrations.errors import ConfigError, ManageError, UsageError

DEFAULT_DATABASE_URL = "sqlite:///database.sqlite3"
DEFAULT_MIGRATIONS = "migrations"
DEFAULT_LOCK_TIMEOUT = 60.0
MAX_LOCK_TIMEOUT = 86400.0
LOCK_TIMEOUT_RANGE = f"a number of seconds from 0 to {MAX_LOCK_TIMEOUT:g} (one day)"
PROJECT_MARKERS = ("manage.py", "pyproject.toml")
PRODUCTION = "production"

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
TOOL_TABLES: tuple[str, ...] = ("tenants",)


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
    # A tenant's schema (PostgreSQL) or database (MariaDB) on the server of `database_url`: its
    # unqualified tables, alembic_version and ledger live there, and its lock is its own.
    schema: str | None = None

    @property
    def production(self) -> bool:
        return is_production(self.environment)


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


# The .env grammar of python-dotenv (what Laravel, Django and docker compose users write),
# without the dependency: KEY=value, `export KEY=value`, '...' and "..." values (which may span
# lines and keep a `#`), an unquoted value's ` # comment` dropped.
_DOTENV_SPACE = re.compile(r"\s*")
_DOTENV_BINDING = re.compile(r"(?:export[^\S\r\n]+)?(?:'([^']+)'|([^=#\s]+))[^\S\r\n]*(=[^\S\r\n]*)?")
_DOTENV_SINGLE = re.compile(r"'((?:\\'|[^'])*)'")
_DOTENV_DOUBLE = re.compile(r'"((?:\\"|[^"])*)"')
_DOTENV_UNQUOTED = re.compile(r"[^\r\n]*")
_DOTENV_LINE_END = re.compile(r"[^\S\r\n]*(?:#[^\r\n]*)?(?:\r\n|\n|\r|$)")
_DOTENV_REST_OF_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)?")
_DOUBLE_QUOTE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n"}
_DOUBLE_QUOTE_ESCAPES |= {"r": "\r", "t": "\t", "v": "\v"}


def _dotenv_value(text: str, position: int, spaced: bool) -> tuple[str, int] | None:
    """The value starting at `position` and where it ends; None when a quote is never closed."""
    quote = text[position : position + 1]
    if quote in ("'", '"'):
        match = (_DOTENV_SINGLE if quote == "'" else _DOTENV_DOUBLE).match(text, position)
        if match is None:
            return None
        if quote == "'":
            value = re.sub(r"\\([\\'])", r"\1", match.group(1))
        else:
            value = re.sub(r"\\([\\'\"abfnrtv])", lambda m: _DOUBLE_QUOTE_ESCAPES[m.group(1)], match.group(1))
        return value, match.end()
    match = _DOTENV_UNQUOTED.match(text, position)
    assert match is not None  # matches the empty string at worst
    raw = match.group(0)
    if spaced and raw.startswith("#"):  # `KEY=  # comment` is an empty value
        return "", match.end()
    return re.sub(r"\s+#.*", "", raw).rstrip(), match.end()


def parse_dotenv(text: str) -> dict[str, str]:
    """KEY=VALUE bindings as python-dotenv reads them; a line it would reject is skipped."""
    values: dict[str, str] = {}
    text = text.removeprefix("\ufeff")
    position = 0
    while position < len(text):
        position = _DOTENV_SPACE.match(text, position).end()  # type: ignore[union-attr]
        if position >= len(text):
            break
        binding = None if text[position] == "#" else _DOTENV_BINDING.match(text, position)
        parsed = None
        if binding is not None and binding.group(3) is not None:
            parsed = _dotenv_value(text, binding.end(), spaced=len(binding.group(3)) > 1)
        end = _DOTENV_LINE_END.match(text, parsed[1]) if parsed else None
        if binding is None or parsed is None or end is None:
            # A comment, a key without `=` or a malformed line: python-dotenv sets nothing for it
            # and goes on after the line it stopped in.
            restart = parsed[1] if parsed else position
            position = _DOTENV_REST_OF_LINE.match(text, restart).end()  # type: ignore[union-attr]
            continue
        values[binding.group(1) or binding.group(2)] = parsed[0]
        position = end.end()
    return values


_DOTENV_VARIABLE = re.compile(r"\$\{(?P<name>[^}:]*)(?::-(?P<default>[^}]*))?\}")


def read_dotenv(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The .env file's bindings, without touching os.environ; `${NAME}` and `${NAME:-default}`
    expand as python-dotenv expands them (earlier lines of the file first, then the environment)."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for key, raw in parse_dotenv(path.read_text(encoding="utf-8")).items():
        known = {**environ, **values}

        def expand(match: re.Match[str], known: dict[str, str] = known) -> str:
            return known.get(match["name"], match["default"] or "")

        values[key] = _DOTENV_VARIABLE.sub(expand, raw)
    return values


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


def check_known_keys(tool: Mapping[str, object]) -> None:
    """A key manage.py does not know is refused, naming the key it probably meant."""
    known = (*TOOL_KEYS, *TOOL_TABLES)
    for key in tool:
        if key in known:
            continue
        import difflib  # only on this error path: commands stay quick to start

        close = difflib.get_close_matches(key.replace("-", "_").lower(), known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
        raise ConfigError(f"unknown key {key!r} in [tool.manage] of pyproject.toml", hint=hint)


def _string_tuple(value: object, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ConfigError(f"[tool.manage] {key} must be a string or a list of strings")


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


def resolve_settings(
    database_url: str | None = None,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
    lock_timeout: float | None = None,
) -> Settings:
    """Merge every source of settings, highest precedence first."""
    project_root = (root or find_project_root()).resolve()
    env = os.environ if environ is None else environ
    dotenv = read_dotenv(project_root / ".env", env)
    pyproject = read_pyproject(project_root)
    tool = _tool_section(pyproject, "manage")
    check_known_keys(tool)

    candidates = [
        (database_url, "--database-url"),
        (env.get("DATABASE_URL"), "DATABASE_URL"),
        (dotenv.get("DATABASE_URL"), ".env"),
        (tool.get("database_url"), "[tool.manage] database_url"),
        (DEFAULT_DATABASE_URL, "default"),
    ]
    url, source = next((value, origin) for value, origin in candidates if value)
    if not isinstance(url, str):
        raise ConfigError("[tool.manage] database_url must be a string")

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
    migrations = migrations_directory(
        project_root,
        tool.get("migrations"),
        _alembic_version_locations(pyproject, project_root),
        "[tool.alembic]",
    )
    return Settings(
        root=project_root,
        database_url=url.strip(),
        database_url_source=source,
        model_packages=_string_tuple(tool.get("models", "models"), "models"),
        migrations_dir=migrations,
        environment=environment.strip(),
        exclude_tables=_string_tuple(tool.get("exclude_tables", []), "exclude_tables"),
        exclude_schemas=_string_tuple(tool.get("exclude_schemas", []), "exclude_schemas"),
        prohibit_destructive=prohibit,
        lock_timeout=timeout,
    )
