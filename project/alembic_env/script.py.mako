<%!
from manage_migrations.alembic_env.template import body, import_block, literal, project_root
%>"""${(message or "").replace("\\", "/").replace('"', "'")}

Revision ID: ${up_revision}
Revises:${" " if down_revision else ""}${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

${import_block(imports, (upgrades, downgrades), project_root(config))}

revision: str = ${literal(up_revision)}
down_revision: str | Sequence[str] | None = ${literal(down_revision)}
branch_labels: str | Sequence[str] | None = ${literal(branch_labels)}
depends_on: str | Sequence[str] | None = ${literal(depends_on)}


def upgrade() -> None:
    ${body(upgrades)}


def downgrade() -> None:
    ${body(downgrades)}
