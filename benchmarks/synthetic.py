"""Synthetic projects for the benchmark: a migration history of N revisions, or T model tables.

Each project is a directory with manage.py, a pyproject.toml carrying the repository's own
[tool.alembic] table plus [tool.manage], a models/ package and migrations/. For the plain-Alembic
side it also holds `plain_alembic.ini` and `plain_alembic/`: Alembic's own `generic` template
(env.py, script.py.mako), pointed at the same migrations/ and models, so plain Alembic runs
stock Alembic code and none of ours.
"""

from __future__ import annotations

import importlib.util
import random
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_PER_MODULE = 50
FIRST_TIMESTAMP = datetime(2026, 1, 1, 9, 0, 0)

MANAGE_PY = "from manage_migrations.cli import main\nmain()\n"

PLAIN_ALEMBIC_INI = """[alembic]
script_location = %(here)s/plain_alembic
version_locations = %(here)s/migrations
prepend_sys_path = .
truncate_slug_length = 60

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
"""

# Alembic's `generic` env.py, with the three edits every project makes: the URL from the
# environment, target_metadata from the models, and the comparison options a real project turns
# on so autogenerate does the same job as ours (server defaults, batch mode on SQLite).
PLAIN_ENV_PY = """import importlib
import os
import pkgutil
from logging.config import fileConfig

from sqlalchemy import engine_from_config, pool

from alembic import context

import models
from models.base import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)
# The project names its driver in the URL: psycopg2 is the one installed here.
url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://", 1)
config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))

for module in pkgutil.iter_modules(models.__path__):
    importlib.import_module(f"models.{module.name}")
target_metadata = Base.metadata


def options(dialect_name: str) -> dict:
    return {
        "target_metadata": target_metadata,
        "compare_server_default": True,
        "render_as_batch": dialect_name == "sqlite",
    }


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **options(url.split(":", 1)[0].split("+", 1)[0]),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(connection=connection, **options(connection.dialect.name))
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
"""

# The same Base as the example app, naming convention included.
BASE_PY = (REPO_ROOT / "models" / "base.py").read_text(encoding="utf-8")

MODELS_HEADER = '''"""Synthetic models {first}..{last} for the benchmark."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
'''

MODEL_CLASS = """

class Table{index:04d}(Base):
    __tablename__ = "t{index:04d}"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("t{parent:04d}.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20), server_default="new")
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    is_active: Mapped[bool]
    created_at: Mapped[datetime]
"""

HISTORY_MODELS_HEADER = '''"""Tables {first}..{last} as the benchmark's migration history leaves them."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
'''

HISTORY_MODEL_CLASS = """

class {cls}(Base):
    __tablename__ = "{table}"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(32), index=True)
    quantity: Mapped[int | None]
    created_at: Mapped[datetime]
"""

HISTORY_EXTRA_COLUMN = """    {column}: Mapped[str | None] = mapped_column(String(40))
"""

REVISION_TEMPLATE = '''"""{message}

Revision ID: {revision}
Revises: {down}
Create Date: {created}
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = {revision!r}
down_revision: str | Sequence[str] | None = {down_literal}
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
{upgrade}
    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
{downgrade}
    # ### end Alembic commands ###
'''

CREATE_TABLE_UP = """    op.create_table({table!r},
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_{table}'))
    )
    with op.batch_alter_table({table!r}, schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_{table}_code'), ['code'], unique=False)
"""

CREATE_TABLE_DOWN = """    with op.batch_alter_table({table!r}, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_{table}_code'))

    op.drop_table({table!r})"""

ADD_COLUMN_UP = """    with op.batch_alter_table({table!r}, schema=None) as batch_op:
        batch_op.add_column(sa.Column({column!r}, sa.String(length=40), nullable=True))
"""

ADD_COLUMN_DOWN = """    with op.batch_alter_table({table!r}, schema=None) as batch_op:
        batch_op.drop_column({column!r})
"""


def alembic_section() -> str:
    """The [tool.alembic] table of the repository's pyproject.toml, verbatim."""
    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r"^\[tool\.alembic\]\n(?:(?!\[).*\n)*", text, flags=re.MULTILINE)
    if match is None:
        raise SystemExit("no [tool.alembic] section in pyproject.toml")
    lines = match.group(0).rstrip().splitlines()
    while lines and lines[-1].startswith("#"):  # a comment introducing the next table
        lines.pop()
    return "\n".join(lines).rstrip() + "\n"


def pyproject_text() -> str:
    manage = '[tool.manage]\nmodels = ["models"]\nmigrations = "migrations"\n'
    return f'[project]\nname = "bench-app"\nversion = "0"\n\n{alembic_section()}\n{manage}'


def revision_id(index: int) -> str:
    return f"{random.Random(index).getrandbits(48):012x}"


@dataclass(frozen=True)
class Revision:
    filename: str
    source: str


@dataclass(frozen=True)
class Step:
    """One migration of a synthetic history: a new table, or a new column on an earlier table."""

    index: int
    table: str
    column: str | None = None


def history_steps(count: int) -> list[Step]:
    """`count` sequential steps: mostly new 5-column tables, every fifth adds a column."""
    steps: list[Step] = []
    tables: list[str] = []
    for index in range(count):
        if index % 5 == 4:
            steps.append(Step(index, tables[(index * 7) % len(tables)], f"extra_{index:04d}"))
        else:
            tables.append(f"t{index:04d}")
            steps.append(Step(index, tables[-1]))
    return steps


def revision_file(step: Step, down: str | None) -> Revision:
    if step.column is None:
        message = f"create {step.table} table"
        upgrade = CREATE_TABLE_UP.format(table=step.table)
        downgrade = CREATE_TABLE_DOWN.format(table=step.table)
    else:
        message = f"add {step.column} to {step.table}"
        upgrade = ADD_COLUMN_UP.format(table=step.table, column=step.column)
        downgrade = ADD_COLUMN_DOWN.format(table=step.table, column=step.column)
    created = FIRST_TIMESTAMP + timedelta(minutes=step.index)
    source = REVISION_TEMPLATE.format(
        message=message,
        revision=revision_id(step.index),
        down=down or "",
        down_literal=repr(down),
        created=f"{created:%Y-%m-%d %H:%M:%S}.000000",
        upgrade=upgrade.rstrip("\n"),
        downgrade=downgrade.rstrip("\n"),
    )
    return Revision(f"{created:%Y_%m_%d_%H%M%S}_{message.replace(' ', '_')}.py", source)


def history(count: int) -> list[Revision]:
    revisions: list[Revision] = []
    down: str | None = None
    for step in history_steps(count):
        revisions.append(revision_file(step, down))
        down = revision_id(step.index)
    return revisions


def history_models(count: int) -> dict[str, str]:
    """Models matching the schema the history ends with (so the project is consistent)."""
    columns: dict[str, list[str]] = {}
    for step in history_steps(count):
        if step.column is None:
            columns[step.table] = []
        else:
            columns[step.table].append(step.column)
    tables = list(columns.items())
    modules: dict[str, str] = {}
    for first in range(0, len(tables), MODELS_PER_MODULE):
        chunk = tables[first : first + MODELS_PER_MODULE]
        parts = [HISTORY_MODELS_HEADER.format(first=chunk[0][0], last=chunk[-1][0])]
        for table, extras in chunk:
            parts.append(HISTORY_MODEL_CLASS.format(cls=table.upper(), table=table))
            parts += [HISTORY_EXTRA_COLUMN.format(column=column) for column in extras]
        modules[f"tables_{first // MODELS_PER_MODULE:03d}"] = "".join(parts)
    return modules


def model_modules(count: int) -> dict[str, str]:
    """`count` model classes, MODELS_PER_MODULE to a module, each with an FK to an earlier table."""
    modules: dict[str, str] = {}
    for first in range(0, count, MODELS_PER_MODULE):
        last = min(first + MODELS_PER_MODULE, count) - 1
        parts = [MODELS_HEADER.format(first=first, last=last)]
        for index in range(first, last + 1):
            parent = random.Random(index).randrange(index) if index else 0
            parts.append(MODEL_CLASS.format(index=index, parent=parent))
        modules[f"tables_{first // MODELS_PER_MODULE:03d}"] = "".join(parts)
    return modules


def write_project(root: Path, models: dict[str, str], revisions: list[Revision]) -> Path:
    """A project directory: manage.py, pyproject.toml, models/ and migrations/."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "models").mkdir(parents=True)
    (root / "migrations").mkdir()
    (root / "manage.py").write_text(MANAGE_PY, encoding="utf-8")
    (root / "pyproject.toml").write_text(pyproject_text(), encoding="utf-8")
    (root / "models" / "__init__.py").write_text('"""Benchmark models."""\n', encoding="utf-8")
    (root / "models" / "base.py").write_text(BASE_PY, encoding="utf-8")
    for name, source in models.items():
        (root / "models" / f"{name}.py").write_text(source, encoding="utf-8")
    for revision in revisions:
        (root / "migrations" / revision.filename).write_text(revision.source, encoding="utf-8")
    write_plain_alembic(root)
    return root


def write_plain_alembic(root: Path) -> None:
    """Stock Alembic for the comparison: the `generic` template's env.py and script.py.mako."""
    spec = importlib.util.find_spec("alembic")
    if spec is None or spec.origin is None:
        raise SystemExit("alembic is not installed in this interpreter")
    template = Path(spec.origin).parent / "templates" / "generic"
    (root / "plain_alembic").mkdir()
    shutil.copy(template / "script.py.mako", root / "plain_alembic" / "script.py.mako")
    (root / "plain_alembic" / "env.py").write_text(PLAIN_ENV_PY, encoding="utf-8")
    (root / "plain_alembic.ini").write_text(PLAIN_ALEMBIC_INI, encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Tenants: a PostgreSQL schema per tenant, the same tenant migrations applied in each
# ---------------------------------------------------------------------------------------------

TENANT_MODELS_DIR = "tenant_models"
TENANT_MIGRATIONS_DIR = "migrations/tenants"
# A chain of tables, each with an FK to the one before it (the first has none), and the singular
# that names the FK column pointing at each.
TENANT_TABLES = {
    "customers": "customer",
    "addresses": "address",
    "orders": "order",
    "order_lines": "order_line",
    "invoices": "invoice",
    "payments": "payment",
    "shipments": "shipment",
    "returns": "return",
    "refunds": "refund",
    "audit_events": "audit_event",
}

# Alembic's `generic` env.py turned into the cookbook's "Rudimental Schema-Level Multi Tenancy for
# PostgreSQL Databases": `alembic -x tenant=NAME upgrade head` sets the connection's search_path to
# the tenant's schema, commits, points the dialect's default schema at it, and keeps the version
# table in that schema. The URL comes from DATABASE_URL and target_metadata from the tenant models,
# as in PLAIN_ENV_PY. Offline mode (the benchmark's untimed setup only) renders unqualified SQL.
PLAIN_TENANT_ENV_PY = """import importlib
import os
import pkgutil
from logging.config import fileConfig

from sqlalchemy import engine_from_config, pool, text

from alembic import context

import tenant_models
from tenant_models.base import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)
url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://", 1)
config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))

for module in pkgutil.iter_modules(tenant_models.__path__):
    importlib.import_module(f"tenant_models.{module.name}")
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    current_tenant = context.get_x_argument(as_dictionary=True).get("tenant")
    with connectable.connect() as connection:
        # every CREATE / ALTER / DROP lands in the tenant's schema
        connection.execute(text('set search_path to "%s"' % current_tenant))
        # in SQLAlchemy v2+ the search path change needs to be committed
        connection.commit()
        # reflection in terms of the tenant's schema too
        connection.dialect.default_schema_name = current_tenant
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=current_tenant,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
"""

TENANT_CREATE_UP = """    op.create_table({table!r},
    sa.Column('id', sa.Integer(), nullable=False),
{parent_column}    sa.Column('reference', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), server_default='new', nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('now()'), nullable=False),
{parent_fk}    sa.PrimaryKeyConstraint('id', name=op.f('pk_{table}'))
    )
    with op.batch_alter_table({table!r}, schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_{table}_{index_column}'), [{index_column!r}], unique=False)
"""

TENANT_PARENT_COLUMN = "    sa.Column({column!r}, sa.Integer(), nullable=False),\n"
TENANT_PARENT_FK = (
    "    sa.ForeignKeyConstraint([{column!r}], ['{parent}.id'], name=op.f('fk_{table}_{column}_{parent}')),\n"
)

TENANT_CREATE_DOWN = """    with op.batch_alter_table({table!r}, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_{table}_{index_column}'))

    op.drop_table({table!r})"""

TENANT_MODELS_HEADER = '''"""The tables in every tenant's schema (no schema of their own)."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from tenant_models.base import Base
'''

TENANT_MODEL_CLASS = """

class {cls}(Base):
    __tablename__ = "{table}"

    id: Mapped[int] = mapped_column(primary_key=True)
{parent}    reference: Mapped[str] = mapped_column(String(40){reference_index})
    status: Mapped[str] = mapped_column(String(20), server_default="new")
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
"""

TENANT_MODEL_PARENT = '    {column}: Mapped[int] = mapped_column(ForeignKey("{parent}.id"), index=True)\n'


def tenant_names(count: int) -> list[str]:
    """t0001, t0002, ...: the schema names of `count` tenants."""
    return [f"t{index:04d}" for index in range(1, count + 1)]


def tenant_tables(count: int) -> list[tuple[str, str]]:
    """`count` (table, singular) pairs: TENANT_TABLES, numbered once they run out."""
    names = list(TENANT_TABLES.items())
    tables = []
    for index in range(count):
        table, singular = names[index % len(names)]
        suffix = f"_{index // len(names)}" if index >= len(names) else ""
        tables.append((table + suffix, singular + suffix))
    return tables


def tenant_revision_id(index: int) -> str:
    return f"{random.Random(f'tenant-{index}').getrandbits(48):012x}"


def tenant_history(count: int) -> list[Revision]:
    """`count` tenant migrations, each creating a table (6-7 columns, an index, an FK to the last)."""
    revisions: list[Revision] = []
    tables = tenant_tables(count)
    for index, (table, _singular) in enumerate(tables):
        parent, column = (tables[index - 1][0], f"{tables[index - 1][1]}_id") if index else (None, None)
        index_column = column or "reference"
        upgrade = TENANT_CREATE_UP.format(
            table=table,
            parent_column=TENANT_PARENT_COLUMN.format(column=column) if column else "",
            parent_fk=TENANT_PARENT_FK.format(table=table, column=column, parent=parent) if column else "",
            index_column=index_column,
        )
        downgrade = TENANT_CREATE_DOWN.format(table=table, index_column=index_column)
        created = FIRST_TIMESTAMP + timedelta(minutes=index)
        message = f"create {table} table"
        down = tenant_revision_id(index - 1) if index else None
        source = REVISION_TEMPLATE.format(
            message=message,
            revision=tenant_revision_id(index),
            down=down or "",
            down_literal=repr(down),
            created=f"{created:%Y-%m-%d %H:%M:%S}.000000",
            upgrade=upgrade.rstrip("\n"),
            downgrade=downgrade.rstrip("\n"),
        )
        revisions.append(Revision(f"{created:%Y_%m_%d_%H%M%S}_{message.replace(' ', '_')}.py", source))
    return revisions


def tenant_models(count: int) -> str:
    """The module of tenant models matching the schema `tenant_history(count)` leaves."""
    parts = [TENANT_MODELS_HEADER]
    tables = tenant_tables(count)
    for index, (table, _singular) in enumerate(tables):
        parent, column = (tables[index - 1][0], f"{tables[index - 1][1]}_id") if index else (None, None)
        parts.append(
            TENANT_MODEL_CLASS.format(
                cls="".join(word.capitalize() for word in table.split("_")),
                table=table,
                parent=TENANT_MODEL_PARENT.format(column=column, parent=parent) if parent else "",
                reference_index="" if parent else ", index=True",
            )
        )
    return "".join(parts)


def tenants_pyproject_text(tenants: list[str]) -> str:
    """[tool.manage] with no shared models of note and a [tool.manage.tenants] table (schema mode)."""
    listed = ", ".join(f'"{name}"' for name in tenants)
    section = (
        "[tool.manage.tenants]\n"
        'mode = "schema"\n'
        f'models = ["{TENANT_MODELS_DIR}"]\n'
        f'migrations = "{TENANT_MIGRATIONS_DIR}"\n'
        f"tenants = [{listed}]\n"
    )
    return f"{pyproject_text()}\n{section}"


def write_tenants_project(root: Path, tenants: list[str], migrations: int) -> Path:
    """A project whose tenants each get `migrations` tenant migrations; the shared side is empty
    (models/ holds only the Base, migrations/ no revision). Plain Alembic's tenant environment sits
    in `plain_alembic/` as for the other projects, pointed at migrations/tenants/."""
    write_project(root, {}, [])
    (root / "pyproject.toml").write_text(tenants_pyproject_text(tenants), encoding="utf-8")
    package = root / TENANT_MODELS_DIR
    package.mkdir()
    (package / "__init__.py").write_text('"""Tenant models."""\n', encoding="utf-8")
    (package / "base.py").write_text(BASE_PY, encoding="utf-8")
    (package / "tables.py").write_text(tenant_models(migrations), encoding="utf-8")
    directory = root / TENANT_MIGRATIONS_DIR
    directory.mkdir(parents=True)
    for revision in tenant_history(migrations):
        (directory / revision.filename).write_text(revision.source, encoding="utf-8")
    (root / "plain_alembic" / "env.py").write_text(PLAIN_TENANT_ENV_PY, encoding="utf-8")
    ini = PLAIN_ALEMBIC_INI.replace("%(here)s/migrations\n", f"%(here)s/{TENANT_MIGRATIONS_DIR}\n", 1)
    (root / "plain_alembic.ini").write_text(ini, encoding="utf-8")
    return root
