"""Entry point for ``python -m project``."""

from project.cli import main

main()
