"""Import every module under the model packages and collect the MetaData they define."""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from manage_migrations.errors import ConfigError
from manage_migrations.settings import import_roots, make_importable

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from manage_migrations.settings import Settings


@dataclass(frozen=True)
class DiscoveredModels:
    metadata: tuple[MetaData, ...]
    modules: tuple[str, ...]
    table_origins: dict[str, str]
    metadata_modules: tuple[str, ...] = ()  # the module each MetaData was first found in

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
    for package_name in packages:
        _forget_package(package_name)
    return _discover(root, packages)


def _discover(root: Path, packages: tuple[str, ...]) -> DiscoveredModels:
    """Import the packages and every module under them (modules already imported stay as they
    are) and collect their MetaData, each with the module it was first found in."""
    metadata: list[MetaData] = []
    found_in: list[str] = []
    origins: dict[str, str] = {}
    imported: list[str] = []

    def collect(module: ModuleType) -> None:
        for found in _metadata_in(module):
            if all(found is not seen for seen in metadata):
                metadata.append(found)
                found_in.append(module.__name__)
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
    kept = [index for index, meta in enumerate(metadata) if meta.tables]
    return DiscoveredModels(
        metadata=tuple(metadata[index] for index in kept),
        modules=tuple(imported),
        table_origins={key: value.split(":", 1)[1] for key, value in origins.items()},
        metadata_modules=tuple(found_in[index] for index in kept),
    )


def refuse_shared_metadata(
    root: Path, packages_by_database: Mapping[str, tuple[str, ...]]
) -> dict[str, DiscoveredModels]:
    """The models of each database, imported together; ConfigError when two databases' packages
    reach one MetaData (a shared declarative Base, a model imported from the other's package, or
    one package inside the other): autogenerate for either would then create or drop the other's
    tables in it. A database whose packages hold no models is left out of the result."""
    make_importable(root)
    for packages in packages_by_database.values():
        for package_name in packages:
            _forget_package(package_name)
    found: dict[str, DiscoveredModels] = {}
    for database, packages in packages_by_database.items():
        try:
            found[database] = _discover(root, packages)
        except NoModelsFound:
            continue  # nothing to share; the commands of that database say what is missing
    owners: dict[int, tuple[str, str]] = {}
    for database, models in found.items():
        for meta, module in zip(models.metadata, models.metadata_modules, strict=True):
            first = owners.setdefault(id(meta), (database, module))
            if first[0] != database:
                tables = ", ".join(sorted(meta.tables)[:3]) + (", ..." if len(meta.tables) > 3 else "")
                raise ConfigError(
                    f"databases {first[0]!r} and {database!r} share one MetaData (tables {tables}): "
                    f"{first[1]} ({first[0]}) and {module} ({database})",
                    hint="give each database's models a declarative Base of their own, in packages "
                    "that do not contain each other: autogenerate for one would create or drop the "
                    "other's tables",
                )
    return found


def database_models(settings: Settings) -> DiscoveredModels:
    """The models of the selected database; where the project declares several databases, only
    after checking that no two of them share a MetaData."""
    if len(settings.models_by_database) < 2:
        return discover_models(settings.root, settings.model_packages)
    found = refuse_shared_metadata(settings.root, dict(settings.models_by_database))
    if settings.database in found:
        return found[settings.database]
    return discover_models(settings.root, settings.model_packages)  # raises NoModelsFound, saying why


def _import_names(package_name: str, root: Path) -> list[str]:
    try:
        package = importlib.import_module(package_name)
    except Exception as exc:
        raise _import_failure(package_name, exc, root) from exc
    return _module_names(package)
