"""Import every module under the model packages and collect the MetaData they define."""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from manage_migrations.errors import ConfigError
from manage_migrations.settings import import_roots, make_importable

if TYPE_CHECKING:
    from sqlalchemy import MetaData


@dataclass(frozen=True)
class DiscoveredModels:
    metadata: tuple[MetaData, ...]
    modules: tuple[str, ...]
    table_origins: dict[str, str]

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.table_origins))


class NoModelsFound(ConfigError):
    """The model packages are missing or define no table (fresh can do without; generating cannot)."""


DUPLICATE_TABLE = re.compile(r"Table '([^']+)' is already defined for this MetaData")


def _relative(path: str | None, root: Path) -> str:
    if not path:
        return "?"
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return path


def _forget_package(package: str) -> None:
    """Drop cached imports so edited models (or another project's models) are read afresh."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def _import_failure(
    module_name: str, exc: BaseException, root: Path, origins: dict[str, str] | None = None
) -> ConfigError:
    if isinstance(exc, SyntaxError):
        where = f"{_relative(exc.filename, root)}, line {exc.lineno}"
        return ConfigError(f"cannot import model module {where}: {exc.msg}")
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if Path(frame.filename).is_file() and Path(frame.filename).resolve().is_relative_to(root)
    ]
    where = f"{_relative(frames[-1].filename, root)}, line {frames[-1].lineno}" if frames else module_name
    duplicate = DUPLICATE_TABLE.search(str(exc))
    if duplicate:
        table = duplicate.group(1)
        first = (origins or {}).get(table, "")
        first_file = f"in {first.split(':', 1)[-1]} and " if first else ""
        return ConfigError(
            f"table {table!r} is defined twice: {first_file}again in {where}",
            hint="each table may be defined by one model only",
        )
    return ConfigError(
        f"cannot import model module {where}: {type(exc).__name__}: {exc}",
        hint="fix the model module; no migration was written and nothing was applied",
    )


def _metadata_in(module: ModuleType) -> list[MetaData]:
    from sqlalchemy import MetaData, Table
    from sqlalchemy.orm import registry

    found: list[MetaData] = []
    for value in vars(module).values():
        candidate = None
        if isinstance(value, MetaData):
            candidate = value
        elif isinstance(value, Table | registry):
            candidate = value.metadata
        elif isinstance(value, type) and isinstance(getattr(value, "metadata", None), MetaData):
            candidate = getattr(value, "metadata")  # noqa: B009 - declarative bases and mapped classes
        if candidate is not None and all(candidate is not seen for seen in found):
            found.append(candidate)
    return found


def _module_names(package: ModuleType) -> list[str]:
    paths = getattr(package, "__path__", None)
    if paths is None:
        return []
    walked = pkgutil.walk_packages(paths, prefix=package.__name__ + ".", onerror=lambda _: None)
    return sorted(info.name for info in walked)


def _package_base(root: Path, package_name: str) -> Path | None:
    """The import root holding the package (`models/` or `src/app/models/`); None if neither does."""
    relative = package_name.replace(".", "/")
    return next((base for base in import_roots(root) if (base / relative).exists()), None)


def discover_models(root: Path, packages: tuple[str, ...]) -> DiscoveredModels:
    """Import all model modules; name the file of any import failure or duplicate table."""
    make_importable(root)
    metadata: list[MetaData] = []
    origins: dict[str, str] = {}
    imported: list[str] = []

    def collect(module: ModuleType) -> None:
        for found in _metadata_in(module):
            if all(found is not seen for seen in metadata):
                metadata.append(found)
        owner = _relative(getattr(module, "__file__", None), root)  # once per module, not per table
        for meta in metadata:
            for key in meta.tables:
                origin = origins.get(key)
                if origin is None:
                    origins[key] = f"{id(meta)}:{owner}"
                elif not origin.startswith(f"{id(meta)}:"):
                    raise ConfigError(
                        f"table {key!r} is defined twice: in {origin.split(':', 1)[1]} and in {owner}",
                        hint="each table may be defined by one model only",
                    )

    for package_name in packages:
        _forget_package(package_name)
        if _package_base(root, package_name) is None:
            raise NoModelsFound(
                f"model package {package_name!r} not found in {root} (nor in its src/)",
                hint="create it (with an __init__.py) or set [tool.manage] models",
            )
        for name in [package_name, *_import_names(package_name, root)]:
            try:
                module = importlib.import_module(name)
            except ConfigError:
                raise
            except Exception as exc:
                raise _import_failure(name, exc, root, origins) from exc
            imported.append(name)
            collect(module)

    if not any(meta.tables for meta in metadata):
        raise NoModelsFound(
            f"no models found in {', '.join(packages)}/",
            hint="define a declarative Base (or a Table) in a module under the model package",
        )
    return DiscoveredModels(
        metadata=tuple(meta for meta in metadata if meta.tables),
        modules=tuple(imported),
        table_origins={key: value.split(":", 1)[1] for key, value in origins.items()},
    )


def _import_names(package_name: str, root: Path) -> list[str]:
    try:
        package = importlib.import_module(package_name)
    except Exception as exc:
        raise _import_failure(package_name, exc, root) from exc
    return _module_names(package)
