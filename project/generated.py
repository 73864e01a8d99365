"""The check every generated migration passes before it is reported as created: it compiles,
it imports, and upgrade()/downgrade() use no name the file does not define or import."""

from __future__ import annotations

import builtins
import importlib.util
import re
import symtable
import uuid
from pathlib import Path
from types import CodeType, ModuleType

from manage_migrations.errors import OperationFailed

BUG_HINT = "this is a bug in make:migration; please report it with the model that caused it"
FUNCTIONS = ("upgrade", "downgrade")


def _globals_used(table: symtable.SymbolTable) -> set[str]:
    symbols = table.get_symbols()
    names = {symbol.get_name() for symbol in symbols if symbol.is_global() and symbol.is_referenced()}
    for child in table.get_children():
        names |= _globals_used(child)
    return names


def _names_in(code: CodeType) -> set[str]:
    """Every global and attribute name the bytecode looks up: a superset of the globals used."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            names |= _names_in(constant)
    return names


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_manage_check_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _unknown_candidates(module: ModuleType) -> set[str] | None:
    """Names in upgrade()/downgrade() bytecode the module cannot resolve; None if unsure."""
    namespace = vars(module)
    names: set[str] = set()
    for function in FUNCTIONS:
        code = getattr(namespace.get(function), "__code__", None)
        if not isinstance(code, CodeType):
            return None
        names |= _names_in(code)
    return {name for name in names if name not in namespace and not hasattr(builtins, name)}


def _used_bare(names: set[str], source: str) -> bool:
    """Could any of `names` be a global lookup? Only where the source names it without a dot
    before it (a string or comment may match too: then the precise check decides)."""
    if not source.isascii():  # identifiers are NFKC-normalised: the text may differ from the name
        return True
    pattern = re.compile(r"(?<![\w.])(?:" + "|".join(map(re.escape, sorted(names))) + r")(?!\w)")
    return pattern.search(source) is not None


def undefined_names(path: Path, module: ModuleType | None = None) -> list[str]:
    """Names upgrade()/downgrade() would look up at run time and not find.

    The bytecode's names minus the module's and the builtins are usually all attribute names
    (`op.create_table`): when none of them appears bare in the source, nothing is undefined, and
    the slow symbol-table pass over a file of thousands of lines is skipped."""
    module = module if module is not None else _load(path)
    source = path.read_text(encoding="utf-8")
    candidates = _unknown_candidates(module)
    if candidates is not None and (not candidates or not _used_bare(candidates, source)):
        return []
    module_table = symtable.symtable(source, str(path), "exec")
    namespace = vars(module)
    used: set[str] = set()
    for child in module_table.get_children():
        if child.get_name() in FUNCTIONS:
            used |= _globals_used(child)
    return sorted(name for name in used if name not in namespace and not hasattr(builtins, name))


def _remove(path: Path, problem: str) -> OperationFailed:
    path.unlink(missing_ok=True)
    return OperationFailed(f"the generated migration {problem} and was removed", hint=BUG_HINT)


def check_generated(path: Path, module: ModuleType | None = None) -> None:
    """Raise (after deleting the file) unless the migration compiles, imports and is complete.

    `module`: the file as Alembic loaded it right after writing it (it compiled and ran then), so a
    file of thousands of lines is not compiled and executed a second time."""
    if module is None:
        try:
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
        except SyntaxError as exc:
            raise _remove(path, f"did not compile ({exc})") from exc
    try:
        missing = undefined_names(path, module)
    except Exception as exc:
        raise _remove(path, f"did not import ({type(exc).__name__}: {exc})") from exc
    if missing:
        raise _remove(path, f"uses names it does not import: {', '.join(missing)}")
