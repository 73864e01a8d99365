"""The database URL as one value: parsed once with SQLAlchemy's grammar (without importing it, so
the plain-driver status path can use it), normalised to an installed sync driver, and shown
and scrubbed of secrets the same way everywhere."""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, quote_plus, unquote

from manage_migrations.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

DEFAULT_CONNECT_TIMEOUT = 5
MYSQL_BACKENDS = frozenset({"mysql", "mariadb"})
SECRET_QUERY_KEYS = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)
# Shorter secrets are not replaced inside other text: "***" for every "a" would garble it.
MIN_SECRET_LENGTH = 3
MASK = "***"
POSTGRES_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}

# sqlalchemy/engine/url.py, _parse_url, verbatim: every URL make_url accepts is split the same way.
_GRAMMAR = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
        """,
    re.X,
)
# RFC 3986 reserves these in the userinfo: SQLAlchemy takes some of them literally, libpq and
# urllib do not, and an "@" or "/" moves the end of the password to a guess.
_UNENCODED_IN_PASSWORD = re.compile(r"[/?#\[\]@]|%(?![0-9A-Fa-f]{2})")
# The password of any URL-shaped text, up to the last "@" of the word (a password may hold one).
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)\S*@")

# Async drivers cannot run Alembic's sync migrations: the same database through a sync sibling.
_ASYNC_DRIVERS = {
    ("postgresql", "asyncpg"),
    ("postgresql", "psycopg_async"),
    ("sqlite", "aiosqlite"),
    ("mysql", "aiomysql"),
    ("mysql", "asyncmy"),
    ("mariadb", "aiomysql"),
    ("mariadb", "asyncmy"),
}
_INSTALL = {
    "psycopg": 'pip install "psycopg[binary]"',
    "psycopg2": "pip install psycopg2-binary",
    "pymysql": "pip install PyMySQL",
    "mysqldb": "pip install mysqlclient",
    "pg8000": "pip install pg8000",
    "mariadbconnector": "pip install mariadb",
}


def _postgres_driver() -> str:
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; use whichever driver is installed.
    return "psycopg2" if importlib.util.find_spec("psycopg2") is not None else "psycopg"


def _sync_driver(backend: str, driver: str) -> str:
    if backend == "postgresql" and driver == "psycopg_async":
        return "psycopg"
    if backend == "postgresql" and driver in ("", "asyncpg"):
        return _postgres_driver()
    if backend in MYSQL_BACKENDS and driver in ("", "aiomysql", "asyncmy"):
        return "pymysql"
    if backend == "sqlite" and driver in ("", "aiosqlite"):
        return "pysqlite"
    return driver


def install_hint(driver: str) -> str | None:
    """How to install a DB-API driver SQLAlchemy could not import, when we know its package."""
    return _INSTALL.get(driver)


def redact_urls(text: str) -> str:
    """Hide the password of any URL-shaped text, including ones that failed to parse."""
    return _URL_PASSWORD.sub(rf"\1{MASK}@", text)


def without_secrets(text: str, raw_urls: Iterable[str]) -> str:
    """Text with every secret of the given URLs (as typed: they may not parse) masked, and the
    password of any other URL-shaped text too."""
    for raw in raw_urls:
        for secret in secrets_of(raw):
            text = text.replace(secret, MASK)
    return redact_urls(text)


def _escape_path(text: str) -> str:
    # Only what would change the parse: "?" starts the query, "%" an escape.
    return text.replace("%", "%25").replace("?", "%3F")


@dataclass(frozen=True)
class DatabaseURL:
    """One database URL, parsed: the engine, the lock, the plain driver and every printed or
    JSON URL read it from here. `root` resolves and shortens relative SQLite paths."""

    backend: str
    driver: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    database: str | None = None
    query: tuple[tuple[str, str], ...] = ()
    root: Path | None = field(default=None, compare=False)
    note: str | None = field(default=None, compare=False)  # shown with -v (e.g. async driver swapped)
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)  # as typed and decoded

    @property
    def drivername(self) -> str:
        return f"{self.backend}+{self.driver}" if self.driver else self.backend

    def param(self, key: str) -> str | None:
        """The last value of a query parameter, as the drivers see it."""
        values = [value for name, value in self.query if name == key]
        return values[-1] if values else None

    def has_param(self, key: str) -> bool:
        return any(name == key for name, _ in self.query)

    @property
    def connect_timeout(self) -> int:
        """Seconds a connection attempt may take (`?connect_timeout=N` or 5); checked at parse."""
        value = self.param("connect_timeout")
        return DEFAULT_CONNECT_TIMEOUT if value is None else int(value)

    @property
    def is_sqlite_uri(self) -> bool:
        """sqlite:///file:path?mode=ro&uri=true: the database is an SQLite URI, not a plain path."""
        database = self.database or ""
        return database.startswith("file:") and self.param("uri") == "true"

    @property
    def sqlite_file(self) -> Path | None:
        """The file behind an SQLite URL (plain path or URI); None for in-memory databases."""
        if self.backend != "sqlite" or self.database in (None, "", ":memory:"):
            return None
        return Path(self.database.removeprefix("file:") if self.is_sqlite_uri else self.database)

    @property
    def identity(self) -> tuple[object, ...] | None:
        """Which database this is, whoever connects and however: two URLs with the same identity
        reach the same database (None for an in-memory SQLite one, which is nobody else's)."""
        if self.backend == "sqlite":
            path = self.sqlite_file
            return ("sqlite", str(path.resolve())) if path is not None else None
        family = "mysql" if self.backend in MYSQL_BACKENDS else self.backend
        port = self.port or {"postgresql": 5432, "mysql": 3306}.get(family)
        return (family, (self.host or "localhost").lower(), port, self.database)

    @property
    def display(self) -> str:
        """The one rendering users see: backend only, password and secret values masked, an
        SQLite path relative to the project root when it is inside it."""
        text = f"{self.backend}://"
        if self.user is not None:
            text += quote(self.user, safe=" +")
            if self.password is not None:
                text += f":{MASK}"
            text += "@"
        if self.host is not None:
            text += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            text += f":{self.port}"
        if self.database is not None:
            text += "/" + _escape_path(self._shown_database())
        if self.query:
            text += "?" + "&".join(
                f"{quote_plus(key)}={MASK if SECRET_QUERY_KEYS.search(key) else quote_plus(value)}"
                for key, value in self.query
            )
        return text

    def _shown_database(self) -> str:
        database = self.database or ""
        if self.backend == "sqlite" and self.root is not None and not self.is_sqlite_uri:
            path = Path(database)
            if path.is_absolute() and path.is_relative_to(self.root):
                return str(path.relative_to(self.root))
        return database

    def scrub(self, text: str) -> str:
        """Any text a driver or a traceback produced, without this URL's secrets."""
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return redact_urls(text)

    def driver_options(self, application_name: str = "manage.py") -> dict[str, object]:
        """Connect keywords the URL does not set itself: timeouts, keepalives, our name."""
        options: dict[str, object] = {}
        if self.backend == "postgresql" and self.driver in ("psycopg2", "psycopg"):
            options = {
                "connect_timeout": self.connect_timeout,
                "application_name": application_name,
                **POSTGRES_KEEPALIVES,
            }
        elif self.backend in MYSQL_BACKENDS:
            # PyMySQL's connect_timeout covers only the TCP connect; the server's greeting is a
            # read, which without a read timeout waits for ever on a server that never answers.
            options = {"connect_timeout": self.connect_timeout, "read_timeout": self.connect_timeout}
        return {key: value for key, value in options.items() if not self.has_param(key)}

    def for_sqlalchemy(self) -> URL:
        """The same URL as SQLAlchemy's value, built from the parsed parts (no second parse)."""
        from sqlalchemy.engine import URL

        query: dict[str, str | tuple[str, ...]] = {}
        for key, value in self.query:
            previous = query.get(key)
            query[key] = value if previous is None else (*_as_tuple(previous), value)
        return URL.create(
            self.drivername,
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=self.database,
            query=query,
        )


def _as_tuple(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def _malformed() -> ConfigError:
    return ConfigError(
        # The raw text is not echoed: in a malformed URL, no part is known not to be a secret.
        "malformed database URL: it is not of the form dialect://user:password@host/database",
        hint="expected dialect://user:password@host:port/database, "
        "e.g. postgresql://app@127.0.0.1/app or sqlite:///database.sqlite3",
    )


def _intended_userinfo(raw: str) -> tuple[str, str, str] | None:
    """(scheme, userinfo, rest) split at the last "@": what a password with reserved characters
    in it was meant to be, so none of it is shown."""
    scheme, found, remainder = raw.partition("://")
    if not found or "@" not in remainder:
        return None
    userinfo, _, rest = remainder.rpartition("@")
    return scheme, userinfo, rest


def secrets_of(raw: str) -> list[str]:
    """Every secret in a URL as typed, parseable or not: password (typed, decoded, and the pieces
    between reserved characters), secret query values."""
    found: list[str] = []
    intended = _intended_userinfo(raw)
    if intended is not None and ":" in intended[1]:
        password = intended[1].partition(":")[2]
        found += [password, unquote(password), *re.split(r"[/?#\[\]@%:]", password)]
    match = _GRAMMAR.match(raw)
    if match is not None:
        typed = match["password"]
        if typed:
            found += [typed, unquote(typed)]
        for key, value in parse_qsl(match["query"] or ""):
            if SECRET_QUERY_KEYS.search(key):
                found += [value, quote_plus(value), quote(value, safe="")]
    unique = {secret for secret in found if len(secret) >= MIN_SECRET_LENGTH}
    # Longest first, so a secret is never half replaced by a piece of it.
    return sorted(unique, key=len, reverse=True)


def _refuse_unencoded_password(raw: str, parts: dict[str, str | None]) -> None:
    password = parts["password"]
    if password is None:
        return
    misplaced = any("@" in (parts[name] or "") for name in ("ipv4host", "ipv6host", "port", "database"))
    if not misplaced and not _UNENCODED_IN_PASSWORD.search(password):
        return
    shown = "the URL"
    intended = _intended_userinfo(raw)
    if intended is not None:
        scheme, userinfo, rest = intended
        try:
            after = parse(f"{scheme}://{rest}")
        except ConfigError:
            after = DatabaseURL(_backend(scheme), "")
        user = unquote(userinfo.partition(":")[0])
        masked = DatabaseURL(
            after.backend, after.driver, user, MASK, after.host, after.port, after.database, after.query
        )
        shown = masked.display
    raise ConfigError(
        "the password in the database URL has reserved characters (such as @ / ? # %) that must "
        "be percent-encoded",
        hint=f"write it as {shown}, with {MASK} the password percent-encoded: @ as %40, / as %2F, "
        "? as %3F, # as %23, % as %25 (in Python: urllib.parse.quote(password, safe=''))",
    )


def _backend(scheme: str) -> str:
    backend = scheme.partition("+")[0]
    return "postgresql" if backend == "postgres" else backend


@functools.lru_cache(maxsize=16)
def parse(raw: str, root: Path | None = None) -> DatabaseURL:
    """Parse, check and normalise a URL once: postgres:// and bare postgresql:// get the installed
    driver, async drivers their sync sibling, relative SQLite paths are resolved against `root`."""
    match = _GRAMMAR.match(raw)
    if match is None:
        raise _malformed()
    parts = match.groupdict()
    _refuse_unencoded_password(raw, parts)
    port = parts["port"]
    if port and not port.isdigit():
        raise ConfigError(
            "the port in the database URL is not a number",
            hint="expected dialect://user:password@host:port/database, e.g. postgresql://app@127.0.0.1:5432/app",
        )
    backend = _backend(parts["name"] or "")
    typed_driver = (parts["name"] or "").partition("+")[2]
    driver = _sync_driver(backend, typed_driver)
    note = None
    if (backend, typed_driver) in _ASYNC_DRIVERS:
        note = (
            f"{backend}+{typed_driver} is an async driver; migrations connect to the same "
            f"database through {backend}+{driver}"
        )
    query = tuple(parse_qsl(parts["query"] or ""))
    _check_timeout(query)
    password = unquote(parts["password"]) if parts["password"] is not None else None
    database = unquote(parts["database"]) if parts["database"] is not None else None
    url = DatabaseURL(
        backend=backend,
        driver=driver,
        user=unquote(parts["username"]) if parts["username"] is not None else None,
        password=password,
        host=parts["ipv4host"] or parts["ipv6host"],
        port=int(port) if port else None,
        database=database,
        query=query,
        root=root,
        note=note,
        secrets=tuple(secrets_of(raw)),
    )
    path = url.sqlite_file
    if root is not None and path is not None and not url.is_sqlite_uri and not path.is_absolute():
        url = replace(url, database=str((root / path).resolve()))
    return url


def _check_timeout(query: tuple[tuple[str, str], ...]) -> None:
    for key, value in query:
        if key == "connect_timeout" and not (value.isdigit() and int(value) > 0):
            raise ConfigError(
                f"connect_timeout={value!r} in the database URL is not a whole number of seconds (1 or more)",
                hint="e.g. ?connect_timeout=10",
            )
