"""The check every generated migration passes before it is reported as created: it compiles,
it imports, and upgrade()/downgrade() use no name the file does not define or import."""

from __future__ import annotations

import builtins
import importlib.util
import symtable
import uuid
from pathlib import Path

from project.errors import OperationFailed

BUG_HINT = "this is a bug in make:migration; please report it with the model that caused it"


def _globals_used(table: symtable.SymbolTable) -> set[str]:
    symbols = table.get_symbols()
    names = {symbol.get_name() for symbol in symbols if symbol.is_global() and symbol.is_referenced()}
    for child in table.get_children():
        names |= _globals_used(child)
    return names


def undefined_names(path: Path) -> list[str]:
    """Names upgrade()/downgrade() would look up at run time and not find."""
    source = path.read_text(encoding="utf-8")
    module_table = symtable.symtable(source, str(path), "exec")
    spec = importlib.util.spec_from_file_location(f"_manage_check_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    namespace = vars(module)
    used: set[str] = set()
    for child in module_table.get_children():
        if child.get_name() in ("upgrade", "downgrade"):
            used |= _globals_used(child)
    return sorted(name for name in used if name not in namespace and not hasattr(builtins, name))


def _remove(path: Path, problem: str) -> OperationFailed:
    path.unlink(missing_ok=True)
    return OperationFailed(f"the generated migration {problem} and was removed", hint=BUG_HINT)


def check_generated(path: Path) -> None:
    """Raise (after deleting the file) unless the migration compiles, imports and is complete."""
    try:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    except SyntaxError as exc:
        raise _remove(path, f"did not compile ({exc})") from exc
    try:
        missing = undefined_names(path)
    except Exception as exc:
        raise _remove(path, f"did not import ({type(exc).__name__}: {exc})") from exc
    if missing:
        raise _remove(path, f"uses names it does not import: {', '.join(missing)}")
