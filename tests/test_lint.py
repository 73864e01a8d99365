"""The code base stays `ruff check`, `ruff format` and `mypy` clean, and pip installs all of it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import REPO_ROOT


def test_ruff_check_and_format_are_clean() -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args], cwd=REPO_ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / ".ci" / "mypy")], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_of_the_framework_is_installed() -> None:
    """pyproject.toml lists the packages one by one (project/ installs as manage_migrations): an
    editable install finds a package missing from the list, `pip install .` leaves it out."""
    setuptools = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]
    source = REPO_ROOT / setuptools["package-dir"]["manage_migrations"]
    packages = {
        ".".join(("manage_migrations", *init.parent.relative_to(source).parts))
        for init in source.rglob("__init__.py")
    }
    assert packages <= set(setuptools["packages"]), sorted(packages - set(setuptools["packages"]))
