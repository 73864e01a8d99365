"""Alembic environment for manage.py and plain `alembic` alike; the logic lives in environment.py."""

from alembic import context

from manage_migrations.alembic_env.environment import run

run(context)
