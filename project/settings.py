"""Settings and how they are resolved: option > DATABASE_URL > .env > [tool.manage] > defaults."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from project.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///database.sqlite3"
DEFAULT_LOCK_TIMEOUT = 60.0
PROJECT_MARKERS = ("manage.py", "pyproject.toml")
PRODUCTION = "production"


@dataclass(frozen=True)
class Settings:
    root: Path
    database_url: str
    database_url_source: str
    model_packages: tuple[str, ...] = ("models",)
    migrations_dir: Path = field(default=Path("migrations"))
    environment: str = "local"
    exclude_tables: tuple[str, ...] = ()
    prohibit_destructive: bool = False
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT

    @property
    def production(self) -> bool:
        return self.environment == PRODUCTION


def find_project_root(start: Path | None = None) -> Path:
    """The nearest directory holding manage.py or pyproject.toml, so commands work from subfolders."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if any((candidate / marker).is_file() for marker in PROJECT_MARKERS):
            return candidate
    return here


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines without touching os.environ (comments, `export` and quotes allowed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw_line in path.read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def read_tool_table(root: Path) -> dict[str, object]:
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    try:
        with pyproject.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read {pyproject.name}: {exc}") from exc
    table = data.get("tool", {}).get("manage", {})
    if not isinstance(table, dict):
        raise ConfigError("[tool.manage] in pyproject.toml must be a table")
    return table


def _string_tuple(value: object, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ConfigError(f"[tool.manage] {key} must be a string or a list of strings")


def resolve_settings(
    database_url: str | None = None,
    root: Path | None = None,
    environ: dict[str, str] | None = None,
    lock_timeout: float | None = None,
) -> Settings:
    """Merge every source of settings, highest precedence first."""
    project_root = (root or find_project_root()).resolve()
    env = os.environ if environ is None else environ
    dotenv = read_dotenv(project_root / ".env")
    tool = read_tool_table(project_root)

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
    migrations = tool.get("migrations", "migrations")
    if not isinstance(migrations, str):
        raise ConfigError("[tool.manage] migrations must be a string")
    prohibit = tool.get("prohibit_destructive", False)
    if not isinstance(prohibit, bool):
        raise ConfigError("[tool.manage] prohibit_destructive must be true or false")
    if lock_timeout is None:
        lock_timeout = tool.get("lock_timeout", DEFAULT_LOCK_TIMEOUT)
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, int | float) or lock_timeout < 0:
        raise ConfigError("[tool.manage] lock_timeout must be a number of seconds (0 or more)")
    return Settings(
        root=project_root,
        database_url=url.strip(),
        database_url_source=source,
        model_packages=_string_tuple(tool.get("models", "models"), "models"),
        migrations_dir=(project_root / migrations).resolve(),
        environment=str(environment),
        exclude_tables=_string_tuple(tool.get("exclude_tables", []), "exclude_tables"),
        prohibit_destructive=prohibit,
        lock_timeout=float(lock_timeout),
    )
