"""An application outside this repository installs the tool into a fresh virtualenv of its own
(`pip install <this checkout>`), writes migrations with it, tests them with the pytest plugin's
fixtures and `pytest --migrations` on SQLite and PostgreSQL, and commits files its ruff accepts.

Slow (one pip install per session, about 20 s): `-m "not installed"` deselects it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PG_ADMIN_URL, REPO_ROOT, _admin_engine

pytestmark = pytest.mark.installed

APP_PYPROJECT = """
[project]
name = "shop"
version = "0.1.0"

[tool.manage]
models = ["shop.models"]

[tool.ruff]
line-length = 88

[tool.ruff.lint]
select = ["E", "F", "W", "I", "UP"]
"""
# No native enum: generated against SQLite, a create_table's downgrade leaves PostgreSQL's enum type
# behind (a known gap of make:migration, not of installing it).
MODELS = """
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
{extra}

class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
"""
APP_TEST = """
from sqlalchemy import select
from sqlalchemy.orm import Session

from shop.models import Product


def test_products_round_trip(manage_session: Session) -> None:
    manage_session.add(Product(name="Dune", price=10))
    manage_session.commit()
    assert manage_session.scalars(select(Product.name)).all() == ["Dune"]


def test_each_test_starts_empty(manage_session: Session) -> None:
    assert manage_session.scalars(select(Product)).all() == []
"""


@pytest.fixture(scope="session")
def app_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with this checkout installed by pip, as an application would install it."""
    venv = tmp_path_factory.mktemp("appvenv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    installed = subprocess.run(
        [*pip, str(REPO_ROOT), "pytest", "ruff"], capture_output=True, text=True, timeout=300, check=False
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv / "bin"


def in_app(bin_dir: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_ENV", "VIRTUAL_ENV")}
    environ |= {"NO_COLOR": "1", "COLUMNS": "200", "PATH": f"{bin_dir}{os.pathsep}{environ['PATH']}"}
    environ.pop("PYTHONPATH", None)  # nothing of this repository but what pip installed
    return subprocess.run(list(args), cwd=root, env=environ, capture_output=True, text=True, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


@pytest.fixture
def shop(tmp_path: Path, app_venv: Path) -> Iterator[Path]:
    root = tmp_path / "shop"
    write(root / "pyproject.toml", APP_PYPROJECT)
    write(root / ".env", "DATABASE_URL=sqlite:///shop.sqlite3\n")
    write(root / "shop" / "__init__.py", "")
    write(root / "shop" / "models" / "__init__.py", MODELS.format(extra=""))
    write(root / "tests" / "test_products.py", APP_TEST)
    yield root


def test_an_application_installs_and_tests_its_migrations(shop: Path, app_venv: Path) -> None:
    manage = str(app_venv / "manage")
    ok(in_app(app_venv, shop, manage, "make:migration", "create products and orders"))
    ok(in_app(app_venv, shop, manage, "migrate"))
    price = "    price: Mapped[int] = mapped_column(server_default='0')\n"
    write(shop / "shop" / "models" / "__init__.py", MODELS.format(extra=price))
    ok(in_app(app_venv, shop, manage, "make:migration", "add price to products"))
    ok(in_app(app_venv, shop, manage, "make:migration", "--empty", "backfill prices"))
    written = sorted((shop / "migrations").glob("*.py"))
    assert len(written) == 3

    python = str(app_venv / "python")
    names = [str(path.relative_to(shop)) for path in written]
    ok(in_app(app_venv, shop, python, "-m", "ruff", "check", "--no-cache", *names))
    ok(in_app(app_venv, shop, python, "-m", "ruff", "format", "--check", "--no-cache", *names))

    tests = ok(in_app(app_venv, shop, python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--migrations"))
    assert "7 passed" in tests, tests
    _admin_engine(PG_ADMIN_URL, "postgresql").dispose()  # skip (or fail under CI) without a server
    pg = "postgresql://postgres@127.0.0.1:5432/test"
    on_pg = ok(
        in_app(
            app_venv,
            shop,
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--migrations",
            "--manage-db",
            pg,
        )
    )
    assert "7 passed" in on_pg, on_pg
