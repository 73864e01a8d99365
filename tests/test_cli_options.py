"""Options are parsed without importing pydantic unless a value needs converting (compat.lighten),
and values that do need it are still converted and checked by typer."""

from __future__ import annotations

import subprocess
import sys

from conftest import USERS_MODEL, Project

PROBE = """
import sys
from manage_migrations.cli import main
sys.argv = ["manage.py", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    print(f"exit={exc.code} pydantic={'pydantic' in sys.modules}", file=sys.stderr)
"""


def _probe(project: Project, *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, "--database-url", project.url, *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=False,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    return completed.stderr.strip().splitlines()[-1]


def test_text_and_flag_options_need_no_pydantic(sqlite_project: Project) -> None:
    sqlite_project.write_model("users.py", USERS_MODEL)

    assert _probe(sqlite_project, "make:migration", "create users", "--dry-run") == "exit=0 pydantic=False"
    assert _probe(sqlite_project, "-q", "migrate:status", "--pending") == "exit=0 pydantic=False"


def test_a_number_is_still_converted_and_checked(sqlite_project: Project) -> None:
    assert _probe(sqlite_project, "--lock-timeout", "2.5", "migrate:status") == "exit=0 pydantic=True"
    assert _probe(sqlite_project, "--lock-timeout", "-1", "migrate:status") == "exit=2 pydantic=True"


def test_a_repeated_text_option_arrives_whole(sqlite_project: Project) -> None:
    sqlite_project.write_model("users.py", USERS_MODEL)

    result = sqlite_project.run("make:migration", "--rename", "a:b", "--rename", "c:d", "x", "--dry-run")

    assert result.exit_code == 2, result.output
    assert "--rename a:b matches no table or column" in result.output
