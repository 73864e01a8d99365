"""Hand-written revision files for tests that need a migration to do something specific."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Project

TEMPLATE = '''"""{name}"""

import sqlalchemy as sa
from alembic import op

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


def write_revision(
    migrations: Path,
    stamp: str,
    name: str,
    revision: str,
    down: str | None,
    upgrade: str,
    downgrade: str = "pass",
) -> Path:
    """Write migrations/<stamp>_<name>.py; `stamp` like 2026_01_01_000001 keeps the order."""
    path = migrations / f"{stamp}_{name}.py"
    path.write_text(
        TEMPLATE.format(
            name=name,
            revision=revision,
            down=down,
            upgrade=textwrap.indent(textwrap.dedent(upgrade).strip(), "    "),
            downgrade=textwrap.indent(textwrap.dedent(downgrade).strip(), "    "),
        ),
        encoding="utf-8",
    )
    return path


def create_table_revision(migrations: Path, index: int, table: str, down: str | None) -> str:
    """A migration creating `table` (id, label); returns its revision id."""
    revision = f"rev{index:04d}"
    write_revision(
        migrations,
        f"2026_01_01_{index:06d}",
        f"create_{table}_table",
        revision,
        down,
        upgrade=f"""
        op.create_table(
            {table!r},
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("label", sa.String(50)),
        )
        """,
        downgrade=f"op.drop_table({table!r})",
    )
    return revision


def run_on_terminal(
    project: Project, answer: bytes, *args: str, question: bytes, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run the real manage.py with a pseudo-terminal as stdin and answer its question once it is
    on stderr (polled, no fixed sleep). Returns the exit code and everything printed."""
    from conftest import CLI_ENV

    (project.root / "manage.py").write_text(MANAGE_PY)
    child_env = {**os.environ, **CLI_ENV, **(env or {}), "DATABASE_URL": project.url}
    primary, secondary = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=project.root,
            env=child_env,
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.close(secondary)
        assert process.stderr is not None
        deadline, seen = time.monotonic() + 60, b""
        while question not in seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0 and process.poll() is None, seen.decode()
            if select.select([process.stderr], [], [], remaining)[0]:
                seen += os.read(process.stderr.fileno(), 4096)
        os.write(primary, answer)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        os.close(primary)
    return process.returncode, (stdout + seen + stderr).decode()


MANAGE_PY = "from manage_migrations.cli import main\n\nmain()\n"
# The [tool.alembic] table of a project that plain `alembic` runs through the tool's environment.
ALEMBIC_TABLE = """
[tool.alembic]
script_location = "manage_migrations:alembic_env"
version_locations = ["%(here)s/migrations"]
path_separator = "os"
prepend_sys_path = ["."]
"""


def start_manage(
    processes: list[subprocess.Popen[str]],
    project: Project,
    *args: str,
    new_session: bool = False,
    **extra_env: str,
) -> subprocess.Popen[str]:
    """The real manage.py (default `migrate`) in the project, piped, with the project's URL.
    `new_session`: in a process group of its own, as a shell job is (os.killpg = Ctrl-C)."""
    from conftest import CLI_ENV

    script = project.root / "manage.py"
    if not script.exists():  # never rewritten: a process starting meanwhile would read it half-written
        script.write_text(MANAGE_PY)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_ENV")}
    env.update(CLI_ENV, DATABASE_URL=project.url, **extra_env)
    process = subprocess.Popen(
        [sys.executable, "manage.py", *(args or ("migrate",))],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )
    processes.append(process)
    return process


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 30) -> None:
    """Until a migration of the process writes the marker file `path` (it has started)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)
