"""Hand-written revision files for tests that need a migration to do something specific."""

from __future__ import annotations

import textwrap
from pathlib import Path

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
