"""pytest support for projects that use manage.py: throwaway migrated databases as fixtures and
the built-in migration tests (`pytest --migrations`). plugin.py is the pytest11 entry point."""
