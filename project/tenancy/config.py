"""[tool.manage.tenants]: which models and migrations are tenant-scoped, where each tenant lives
(a schema, or a database from a URL template), and where the list of tenants comes from."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from manage_migrations.errors import ConfigError
from manage_migrations.settings import TENANTS, Settings, read_pyproject, tool_table

SECTION = "[tool.manage.tenants]"
KEYS = ("mode", "models", "migrations", "url", "tenants", "query")
MODES = ("schema", "database")
DEFAULT_MIGRATIONS = "migrations/tenants"
PLACEHOLDER = "{tenant}"
# A tenant's name becomes a schema, a database or part of a file name: letters, digits, _ - .
TENANT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,62}")


@dataclass(frozen=True)
class Tenancy:
    mode: str
    model_packages: tuple[str, ...]
    migrations_dir: Path
    url: str | None  # schema mode: the server (default: the default database); database mode: a template
    names: tuple[str, ...] | None
    query: str | None


@dataclass(frozen=True)
class Tenant:
    name: str
    url: str | None = None  # from a two-column query: the tenant's server (schema) or database


def check_name(name: object, source: str) -> str:
    if not isinstance(name, str) or not TENANT_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(
            f"{source} gave the tenant name {name!r}, which cannot name a schema or database",
            hint="tenant names are 1-63 letters, digits, _ - or . (no ..), starting with a letter, "
            "digit or _",
        )
    return name


def _strings(value: object, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ConfigError(f"{SECTION} {key} must be a string or a list of strings")


def read_tenancy(root: Path) -> Tenancy:
    """The tenants section of pyproject.toml, checked; ConfigError (exit 3) when it is missing."""
    table = tool_table(read_pyproject(root), "manage").get("tenants")
    if table is None:
        raise ConfigError(
            f"this project declares no tenants: add {SECTION} to pyproject.toml",
            hint='e.g. mode = "schema", models = ["tenant_models"], tenants = ["acme", "globex"]',
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{SECTION} in pyproject.toml must be a table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {SECTION}", hint=f"known keys: {', '.join(KEYS)}")
    mode = table.get("mode", "schema")
    if mode not in MODES:
        raise ConfigError(f'{SECTION} mode must be "schema" or "database", not {mode!r}')
    if "models" not in table:
        raise ConfigError(f"{SECTION} needs models: the packages of the tenant-scoped models")
    migrations = table.get("migrations", DEFAULT_MIGRATIONS)
    url = table.get("url")
    query = table.get("query")
    for key, value in (("migrations", migrations), ("url", url), ("query", query)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{SECTION} {key} must be a string")
    names = table.get("tenants")
    if (names is None) == (query is None):
        raise ConfigError(
            f"{SECTION} needs exactly one of tenants (a list of names) and query (SQL that lists them)",
            hint='e.g. tenants = ["acme", "globex"], or query = "SELECT name FROM tenants"',
        )
    if names is not None:
        names = tuple(check_name(name, f"{SECTION} tenants") for name in _strings(names, "tenants"))
    # A url without {tenant} would put every tenant in one database (a query's too, unless it
    # gives URLs); without a url, only a two-column query can say where each tenant lives.
    if mode == "database" and (PLACEHOLDER not in url if url is not None else query is None):
        raise ConfigError(
            f'{SECTION} mode = "database" needs a url template with {PLACEHOLDER} in it',
            hint='e.g. url = "postgresql://app@db/{tenant}" or "sqlite:///tenants/{tenant}.sqlite3"',
        )
    return Tenancy(
        mode,
        _strings(table["models"], "models"),
        (root / str(migrations)).resolve(),
        url,
        names,
        query,
    )


def tenant_settings(tenancy: Tenancy, default: Settings, tenant: Tenant) -> Settings:
    """The settings one tenant runs with: its URL and schema, the tenant models and migrations;
    the rest (environment, lock wait, guards) as for the default database."""
    if tenancy.mode == "schema":
        url = tenant.url or tenancy.url or default.database_url
        if tenant.url is None:  # a query's own URL is that tenant's business (it fails alone)
            _check_schema_server(url, default.root, "the url" if tenancy.url else "the default database")
        return replace(
            default,
            database_url=url,
            database_url_source=f"tenant {tenant.name}",
            schema=tenant.name,
            database=TENANTS,
            model_packages=tenancy.model_packages,
            migrations_dir=tenancy.migrations_dir,
        )
    template = tenant.url or tenancy.url
    if template is None:  # a database mode with a query that returned names alone
        raise ConfigError(
            f'{SECTION} mode = "database" needs a url template with {PLACEHOLDER} in it, '
            "or a query that returns each tenant's URL as its second column",
            hint='e.g. url = "postgresql://app@db/{tenant}" or "sqlite:///tenants/{tenant}.sqlite3"',
        )
    return replace(
        default,
        database_url=template.replace(PLACEHOLDER, tenant.name),
        database_url_source=f"tenant {tenant.name}",
        schema=None,
        database=TENANTS,
        model_packages=tenancy.model_packages,
        migrations_dir=tenancy.migrations_dir,
    )


def _check_schema_server(raw: str, root: Path, which: str) -> None:
    """Schema mode needs a server with schemas (PostgreSQL) or databases (MariaDB/MySQL) to make."""
    from manage_migrations.core.url import MYSQL_BACKENDS, parse

    url = parse(raw, root)
    if url.backend != "postgresql" and url.backend not in MYSQL_BACKENDS:
        raise ConfigError(
            f'{SECTION} mode = "schema" needs PostgreSQL or MariaDB/MySQL, and {which} is '
            f"{url.backend} ({url.display})",
            hint=f'use mode = "database" with a url template, e.g. url = "sqlite:///tenants/{PLACEHOLDER}.sqlite3"',
        )
