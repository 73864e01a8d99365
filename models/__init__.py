"""The example app's models: every module in this package is discovered by manage.py."""
