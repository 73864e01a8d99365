"""Entry point for ``python -m manage_migrations``."""

from manage_migrations.cli import main

main()
