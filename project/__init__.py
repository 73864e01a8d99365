"""Artisan-style migrations for SQLAlchemy + Alembic; importing this stays cheap."""

__version__ = "0.1.0"
