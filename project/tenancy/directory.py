"""Who the tenants are: the names in pyproject.toml, or the rows of a query run on the default
database (one column: names; two: names and where each one lives)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from manage_migrations.errors import ConfigError, UsageError
from manage_migrations.tenancy.config import SECTION, Tenancy, Tenant, check_name

if TYPE_CHECKING:
    from manage_migrations.settings import Settings

SHOWN_NAMES = 10


def list_tenants(tenancy: Tenancy, default: Settings) -> tuple[Tenant, ...]:
    if tenancy.names is not None:
        return tuple(Tenant(name) for name in tenancy.names)
    assert tenancy.query is not None
    return _queried(tenancy.query, default)


def _queried(query: str, default: Settings) -> tuple[Tenant, ...]:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from manage_migrations.core import session

    with session.reading(default) as current:
        try:
            result = current.connection.execute(text(query))
            rows = [tuple(row) for row in result]
            width = len(result.keys())
        except DBAPIError as exc:
            detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise ConfigError(
                f"the tenants query of {SECTION} failed on {current.shown_url}: {current.scrub(detail)}",
                hint="run the query by hand to check it; it must return the name (and optionally the URL)",
            ) from None
    if width not in (1, 2):
        raise ConfigError(
            f"the tenants query of {SECTION} returns {width} columns",
            hint="return one column (the tenant's name) or two (its name and its database URL)",
        )
    tenants = []
    seen: set[str] = set()
    for row in rows:
        name = check_name(row[0], "the tenants query")
        if name in seen:
            raise ConfigError(f"the tenants query of {SECTION} lists the tenant {name} twice")
        seen.add(name)
        url = row[1] if width == 2 else None
        if width == 2 and (not isinstance(url, str) or not url.strip()):
            raise ConfigError(f"the tenants query of {SECTION} gives tenant {name} no URL ({url!r})")
        tenants.append(Tenant(name, url.strip() if isinstance(url, str) else None))
    return tuple(tenants)


def select(tenants: Sequence[Tenant], wanted: Sequence[str]) -> tuple[Tenant, ...]:
    """The tenants named by --tenant (all when none is), in the directory's order."""
    if not wanted:
        return tuple(tenants)
    known = {tenant.name: tenant for tenant in tenants}
    unknown = [name for name in dict.fromkeys(wanted) if name not in known]
    if unknown:
        names = ", ".join(list(known)[:SHOWN_NAMES]) + (" ..." if len(known) > SHOWN_NAMES else "")
        raise UsageError(
            f"unknown tenant{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            hint=f"known tenants: {names}" if known else "no tenants are listed yet",
        )
    chosen = set(wanted)
    return tuple(tenant for tenant in tenants if tenant.name in chosen)
