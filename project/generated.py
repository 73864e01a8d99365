"""What every generated migration goes through before it is reported as created: the project's own
ruff tidies it when installed, and it must compile, import, and use in upgrade()/downgrade() no name
the file does not define or import."""

from __future__ import annotations

import builtins
import importlib.util
import re
import subprocess
import symtable
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, ModuleType

from manage_migrations.errors import OperationFailed

BUG_HINT = "this is a bug in make:migration; please report it with the model that caused it"
FUNCTIONS = ("upgrade", "downgrade")
RUFF_TIMEOUT = 60.0


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


@dataclass(frozen=True)
class Tidied:
    """A file's text after ruff, and why ruff could not (fully) tidy it; `None`: nothing to say."""

    text: str
    warning: str | None = None


def ruff_installed() -> bool:
    """`python -m ruff` works: ruff is installed beside the tool (it is not a dependency)."""
    return importlib.util.find_spec("ruff") is not None


def _ruff(args: list[str], text: str, path: Path, root: Path) -> subprocess.CompletedProcess[str]:
    """ruff reading the text on stdin as if it were `path`: the configuration is the one that
    governs `path` (the user's pyproject.toml or ruff.toml), and explicitly named, so it also
    applies where the project excludes migrations/ from its own runs."""
    command = [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(path), "-"]
    return subprocess.run(
        command, input=text, capture_output=True, text=True, cwd=root, timeout=RUFF_TIMEOUT, check=False
    )


def _first_line(output: str) -> str:
    return next((line.strip() for line in output.splitlines() if line.strip()), "no output")


CONCISE = re.compile(r"^.*?:(\d+):\d+: (.*)$", re.MULTILINE)


def _remaining(output: str) -> str:
    """ruff's concise diagnostics as `line 25: E501 Line too long (89 > 88)`, without the path."""
    found = [f"line {line}: {text}" for line, text in CONCISE.findall(output)]
    return "; ".join(found) if found else _first_line(output)


def tidied(text: str, path: Path, root: Path) -> Tidied:
    """`ruff format`, then `ruff check --fix` (safe fixes only), when ruff is installed beside the
    tool: the file is committed as written. ruff failing never fails the command, it is a warning."""
    if not ruff_installed():
        return Tidied(text)
    try:
        formatted = _ruff(["format"], text, path, root)
        if formatted.returncode != 0:
            return Tidied(text, f"ruff format failed on {path.name}: {_first_line(formatted.stderr)}")
        fixed = _ruff(["check", "--fix", "--output-format", "concise"], formatted.stdout, path, root)
        if fixed.returncode not in (0, 1) or not fixed.stdout:
            return Tidied(formatted.stdout, f"ruff check failed on {path.name}: {_first_line(fixed.stderr)}")
        result = fixed.stdout
        if result != formatted.stdout:  # a fix (an unused import removed) may leave blank lines behind
            again = _ruff(["format"], result, path, root)
            result = again.stdout if again.returncode == 0 else result
    except (OSError, subprocess.SubprocessError) as exc:
        return Tidied(text, f"ruff could not run on {path.name}: {exc}")
    if fixed.returncode == 1:
        return Tidied(result, f"ruff check still reports in {path.name}: {_remaining(fixed.stderr)}")
    return Tidied(result)


def tidy_file(path: Path, root: Path) -> tuple[bool, str | None]:
    """Tidy a written file in place; whether it changed, and ruff's warning."""
    text = path.read_text(encoding="utf-8")
    result = tidied(text, path, root)
    if result.text != text:
        path.write_text(result.text, encoding="utf-8")
    return result.text != text, result.warning
