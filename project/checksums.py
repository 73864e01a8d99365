"""What the ledger stores to notice a migration file edited after it ran: the sha256 of its code,
so formatting, comments, quotes and docstrings (the message) do not count as edits.

Parsing a file for that costs about 0.3 ms, a third of a second per thousand migrations on every
status, so the code checksum of each file's exact bytes is remembered in the migrations
directory's __pycache__ (content-addressed: a stale entry cannot give a wrong answer)."""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import os
import sys
import warnings
from pathlib import Path

CACHE_FILE = "manage-checksums.json"

DOCSTRING_HOLDERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


class Checksums:
    """Code checksums of the files of one migrations directory, remembered between runs."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "__pycache__" / CACHE_FILE
        self.known: dict[str, str] = {}
        self.seen: dict[str, str] = {}
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                self.known = {str(key): str(value) for key, value in loaded.items()}

    def of(self, path: Path) -> str:
        return self._code(path.read_bytes())

    def if_edited(self, path: Path, stored: str) -> str | None:
        """None when the file still is what ran; otherwise its checksum now. Ledgers written
        before checksums ignored formatting hold the sha256 of the bytes: unedited too."""
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() == stored:
            return None
        current = self._code(data)
        return None if current == stored else current

    def _code(self, data: bytes) -> str:
        raw = hashlib.sha256(data).hexdigest()
        code = self.known.get(raw) or _code_checksum(data)
        self.seen[raw] = code
        return code

    def save(self) -> None:
        """Keep the entries of the files seen this run; never fails a command (read-only trees,
        PYTHONDONTWRITEBYTECODE: then nothing is written, as Python writes no bytecode)."""
        if sys.dont_write_bytecode or self.seen == {k: self.known.get(k) for k in self.seen}:
            return
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(exist_ok=True)
            temporary = self.path.with_name(f"{CACHE_FILE}.{os.getpid()}")
            temporary.write_text(json.dumps({**self.known, **self.seen}, sort_keys=True), encoding="utf-8")
            os.replace(temporary, self.path)


def checksum(path: Path) -> str:
    """The code checksum of one file, without the cache (rare callers: prune, plain alembic)."""
    return _code_checksum(path.read_bytes())


@functools.lru_cache(maxsize=4096)
def _code_checksum(data: bytes) -> str:
    """Remembered per process by content: tenants share their migration files, and a fan-out
    would otherwise parse each file once per tenant."""
    try:
        with warnings.catch_warnings():  # invalid escapes ("\\d") warn; Alembic shows those itself
            warnings.simplefilter("ignore")
            tree = ast.parse(data)
    except (SyntaxError, ValueError):
        return hashlib.sha256(data).hexdigest()  # Alembic cannot load it either: any byte counts
    out: list[str] = []
    _canonical(tree, out)
    return hashlib.sha256("\n".join(out).encode()).hexdigest()


def _canonical(node: object, out: list[str]) -> None:
    """The tree without positions, docstrings or empty fields: a field a newer Python adds
    (such as 3.12's `type_params`) is empty in a migration, so upgrading Python changes nothing."""
    if isinstance(node, ast.AST):
        out.append(type(node).__name__)
        holder = isinstance(node, DOCSTRING_HOLDERS)
        for name in node._fields:
            value = getattr(node, name, None)
            if holder and name == "body" and isinstance(value, list) and _starts_with_docstring(value):
                value = value[1:]
            if value is not None and value != []:
                out.append(name)
                _canonical(value, out)
        out.append(")")
    elif isinstance(node, list):
        out.append("[")
        for item in node:
            _canonical(item, out)
        out.append("]")
    else:
        out.append(repr(node))


def _starts_with_docstring(body: list[ast.stmt]) -> bool:
    first = body[0] if body else None
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
