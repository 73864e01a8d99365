"""migrate:check, --json output, several heads and make:migration --merge."""

from __future__ import annotations

import json

from conftest import USERS_MODEL, Project
from helpers import create_table_revision

USERS_WITH_EMAIL = USERS_MODEL + "    email: Mapped[str | None] = mapped_column(String(200))\n"


def test_check_passes_on_a_migrated_project_and_reports_drift(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    project.make("create users")
    assert project.run("migrate").exit_code == 0

    clean = project.run("migrate:check", "--json")
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout) == {
        "ok": True,
        "database": json.loads(clean.stdout)["database"],
        "drift_checked": True,
        "drift_skipped": None,
        "problems": [],
    }
    assert project.run("migrate:check").stdout.strip().splitlines()[-1] == "All checks passed."

    project.write_model("users.py", USERS_WITH_EMAIL)
    drifted = project.run("migrate:check", "--json")
    assert drifted.exit_code == 1
    report = json.loads(drifted.stdout)
    assert report["ok"] is False
    assert [(p["kind"], p["details"]) for p in report["problems"]] == [("drift", ["+ column users.email"])]
    assert len(project.migration_files()) == 1  # checking writes no file


def test_check_lists_every_problem_at_once(project: Project) -> None:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    second = create_table_revision(project.migrations, 2, "beta", first)
    create_table_revision(project.migrations, 3, "gamma", second)
    assert project.run("migrate").exit_code == 0
    (project.migrations / "2026_01_01_000003_create_gamma_table.py").unlink()
    create_table_revision(project.migrations, 4, "delta", first)  # a second head, pending

    result = project.run("migrate:check")
    assert result.exit_code == 1
    assert "3 problems found." in result.stdout
    assert "2 heads" in result.stderr

    report = json.loads(project.run("migrate:check", "--json").stdout)
    problems = {p["kind"]: p["details"] for p in report["problems"]}
    assert problems == {
        "multiple_heads": ["2026_01_01_000002_create_beta_table", "2026_01_01_000004_create_delta_table"],
        "pending": ["2026_01_01_000004_create_delta_table"],
        "missing_file": ["2026_01_01_000003_create_gamma_table"],
    }
    assert report["drift_checked"] is False


def test_status_json_has_the_documented_keys(project: Project) -> None:
    first = create_table_revision(project.migrations, 1, "alpha", None)
    assert project.run("migrate").exit_code == 0
    create_table_revision(project.migrations, 2, "beta", first)

    result = project.run("migrate:status", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["counts"] == {"ran": 1, "pending": 1, "failed": 0, "missing": 0}
    ran, pending = report["migrations"]
    assert ran["name"] == "2026_01_01_000001_create_alpha_table"
    assert (ran["revision"], ran["status"], ran["batch"]) == (first, "ran", 1)
    assert ran["applied_at"].startswith("20") and ran["duration_ms"] >= 0
    assert pending == {
        "name": "2026_01_01_000002_create_beta_table",
        "revision": "rev0002",
        "status": "pending",
        "batch": None,
        "applied_at": None,
        "duration_ms": None,
        "edited": False,
        "replaces": [],
    }
    assert "\x1b" not in result.stdout


def test_several_heads_are_refused_until_merged(project: Project) -> None:
    project.write_model("users.py", USERS_MODEL)
    first = create_table_revision(project.migrations, 1, "alpha", None)
    create_table_revision(project.migrations, 2, "beta", first)
    create_table_revision(project.migrations, 3, "gamma", first)

    for args in (("migrate",), ("make:migration", "more")):
        refused = project.run(*args)
        assert refused.exit_code == 6, refused.output
        assert "2026_01_01_000002_create_beta_table" in refused.stderr
        assert "2026_01_01_000003_create_gamma_table" in refused.stderr
        assert "make:migration --merge" in refused.stderr
    assert project.tables() == set()

    merged = project.make("--merge")
    assert merged.name.endswith("_merge_heads.py")
    assert '("rev0002", "rev0003")' in merged.read_text()

    result = project.run("migrate")
    assert result.exit_code == 0, result.output
    assert {"alpha", "beta", "gamma"} <= project.tables()
    assert project.run("make:migration", "--merge").exit_code == 2
