"""Entry point for ``python -m project``."""

from manage_migrations.cli import main

main()
