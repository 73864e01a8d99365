"""Model discovery: every module is imported; broken, duplicated or missing models are named."""

from __future__ import annotations

from conftest import USERS_MODEL, Project


def test_models_in_nested_packages_are_discovered(sqlite_project: Project) -> None:
    sqlite_project.write_model("billing/__init__.py", "")
    sqlite_project.write_model(
        "billing/deep/__init__.py",
        "",
    )
    sqlite_project.write_model(
        "billing/deep/invoices.py",
        """
        from sqlalchemy import Column, Integer, Table

        from models.base import Base

        invoices = Table("invoices", Base.metadata, Column("id", Integer, primary_key=True))
        """,
    )
    sqlite_project.write_model("users.py", USERS_MODEL)
    result = sqlite_project.run("-v", "make:migration", "init")
    assert result.exit_code == 0, result.output
    assert "+ table invoices" in result.output
    assert "+ table users" in result.output
    assert "models.billing.deep.invoices" in result.output


def test_a_model_that_fails_to_import_is_named(sqlite_project: Project) -> None:
    sqlite_project.write_model("users.py", USERS_MODEL)
    sqlite_project.write_model("broken.py", "import nonexistent_module_xyz\n")
    result = sqlite_project.run("make:migration", "x")
    assert result.exit_code == 3
    assert "models/broken.py, line 1" in result.stderr
    assert "nonexistent_module_xyz" in result.stderr
    assert "Traceback" not in result.output
    assert sqlite_project.migration_files() == []


def test_a_syntax_error_names_file_and_line(sqlite_project: Project) -> None:
    sqlite_project.write_model("users.py", USERS_MODEL)
    sqlite_project.write_model("oops.py", "x = 1\ndef broken(:\n")
    result = sqlite_project.run("make:migration", "x")
    assert result.exit_code == 3
    assert "models/oops.py, line 2" in result.stderr
    assert sqlite_project.migration_files() == []


def test_a_table_defined_twice_is_refused(sqlite_project: Project) -> None:
    sqlite_project.write_model("users.py", USERS_MODEL)
    sqlite_project.write_model("people.py", USERS_MODEL.replace("class User", "class Person"))
    result = sqlite_project.run("make:migration", "x")
    assert result.exit_code == 3
    assert "users" in result.stderr
    assert "models/people.py" in result.stderr
    assert sqlite_project.migration_files() == []


def test_a_table_defined_in_two_metadata_is_refused(sqlite_project: Project) -> None:
    sqlite_project.write_model("users.py", USERS_MODEL)
    sqlite_project.write_model(
        "other.py",
        """
        from sqlalchemy import Column, Integer, MetaData, Table

        other_metadata = MetaData()
        users = Table("users", other_metadata, Column("id", Integer, primary_key=True))
        """,
    )
    result = sqlite_project.run("make:migration", "x")
    assert result.exit_code == 3
    assert "table 'users' is defined twice" in result.stderr
    assert "models/other.py" in result.stderr
    assert sqlite_project.migration_files() == []


def test_no_models_at_all(sqlite_project: Project) -> None:
    result = sqlite_project.run("make:migration", "x")
    assert result.exit_code == 3
    assert "no models found in models/" in result.stderr
    assert sqlite_project.migration_files() == []
