"""Artisan-style migrations for SQLAlchemy + Alembic; importing this stays cheap."""

import sys

__version__ = "0.1.0"

if "alembic.config" in sys.modules:
    # Plain `alembic` imports this package to find script_location "manage_migrations:alembic_env", just
    # before it reads version_locations: make it read the directory manage.py uses.
    from manage_migrations.alembic_env import locations

    locations.install()
