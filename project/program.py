"""How the user runs the tool, for the usage line and the hints that name a command: `python
manage.py migrate` for the script, `manage migrate` for the installed console script, with the
`--database NAME` of this invocation when it is not the default database."""

from __future__ import annotations

from pathlib import Path

SCRIPT = "manage.py"
_prefix = f"python {SCRIPT}"
_database: str | None = None
_tenant: str | None = None


def program_name(argv0: str) -> str:
    """`manage.py` (any `*.py` run by python), `python -m manage_migrations`, or the console script's name."""
    name = Path(argv0).name
    if name == "__main__.py":
        return "python -m manage_migrations"
    if not name or name.endswith(".py") or name == "-c":
        return SCRIPT
    return name


def invoked_as(argv0: str) -> str:
    """Remember how this process was started (main() only: tests keep `python manage.py`)."""
    global _prefix
    name = program_name(argv0)
    _prefix = f"python {name}" if name.endswith(".py") else name
    return name


def select_database(name: str | None) -> None:
    """The database this invocation runs on (None: the default), so a hint's command does too."""
    global _database
    _database = name


def command_prefix() -> str:
    """What to type before a command name: `python manage.py` or `manage` (then `--database NAME`)."""
    return f"{_prefix} --database {_database}" if _database else _prefix


def select_tenant(name: str | None) -> None:
    """The tenant a fan-out worker is migrating (None: none), so a hint names the tenant's command."""
    global _tenant
    _tenant = name


def resolve_command(revision: str) -> str:
    """What clears a failure mark: migrate:resolve, or tenants:resolve for the tenant at hand."""
    if _tenant is not None:
        return f"{_prefix} tenants:resolve {revision} --tenant {_tenant}"
    return f"{command_prefix()} migrate:resolve {revision}"
