"""The revision graph read from the files' headers without executing them (no Alembic import),
so read-only commands stay fast; any header that is not a plain literal is loaded the way
Alembic loads it, so the answer is always the same as Alembic's."""

from __future__ import annotations

import ast
import functools
import heapq
import importlib.util
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from project.errors import ConfigError, HistoryError

# The same file filter as Alembic's ScriptDirectory (sourceless and recursive options off).
REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
HEADER_LINE = re.compile(
    r"^(revision|down_revision|depends_on)[ \t]*(?::[^=\n]*)?=[ \t]*(.*?)[ \t]*(?:#.*)?$", re.MULTILINE
)
REQUIRED = ("revision", "down_revision")
# A squash migration (migrate:dump --prune) names the revisions it replaces, one per line.
REPLACES_LINE = re.compile(r"^replaces[ \t]*(?::[^=\n]*)?=[ \t]*(\([^()]*\)|\[[^\[\]]*\])", re.MULTILINE)
CHECKSUM_LINE = re.compile(r"^original_checksum[ \t]*(?::[^=\n]*)?=[ \t]*(.*?)[ \t]*(?:#.*)?$", re.MULTILINE)
SQUASH_KEYS = re.compile(r"^(replaces|original_checksum)\b", re.MULTILINE)


@dataclass(frozen=True)
class RevisionHeader:
    revision: str
    down_revisions: tuple[str, ...]
    depends_on: tuple[str, ...]
    path: Path
    replaces: tuple[str, ...] = ()
    original_checksum: str | None = None

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def is_squash(self) -> bool:
        return bool(self.replaces)


def _as_tuple(value: object) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None


def _from_header(path: Path, text: str) -> RevisionHeader | None:
    """The header as plain literals, or None when only executing the file can tell."""
    found: dict[str, object] = {}
    for key, raw in HEADER_LINE.findall(text):
        if key in found:
            return None  # assigned twice: the last assignment at run time decides
        try:
            found[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return None
    if any(key not in found for key in REQUIRED) or not isinstance(found["revision"], str):
        return None
    down = _as_tuple(found["down_revision"])
    depends = _as_tuple(found.get("depends_on"))
    if down is None or depends is None:
        return None
    squash = _squash_header(text)
    if squash is None:
        return None
    return RevisionHeader(found["revision"], down, depends, path, *squash)


def _squash_header(text: str) -> tuple[tuple[str, ...], str | None] | None:
    """`replaces` and `original_checksum` as plain literals; None when only executing can tell."""
    if "replaces" not in text and "original_checksum" not in text:
        return (), None  # the common case: an ordinary migration
    keys = SQUASH_KEYS.findall(text)
    replaces = REPLACES_LINE.findall(text)
    checksums = CHECKSUM_LINE.findall(text)
    if len(keys) != len(replaces) + len(checksums) or len(replaces) > 1 or len(checksums) > 1:
        return None
    try:
        replaced = _as_tuple(ast.literal_eval(replaces[0])) if replaces else ()
        original = ast.literal_eval(checksums[0]) if checksums else None
    except (ValueError, SyntaxError):
        return None
    if replaced is None or not (original is None or isinstance(original, str)):
        return None
    return replaced, original


def _by_execution(path: Path, root: Path) -> RevisionHeader:
    """What Alembic does for every file: execute it and read the module attributes."""
    spec = importlib.util.spec_from_file_location(f"_manage_revision_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load migration {_relative(path, root)}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError(
            f"cannot load migration {_relative(path, root)}, line {exc.lineno}: {exc.msg}"
        ) from exc
    except Exception as exc:
        raise ConfigError(
            f"cannot load migration {_relative(path, root)}: {type(exc).__name__}: {exc}"
        ) from exc
    revision = getattr(module, "revision", None)
    down = _as_tuple(getattr(module, "down_revision", None))
    depends = _as_tuple(getattr(module, "depends_on", None))
    if not isinstance(revision, str) or down is None or depends is None:
        raise ConfigError(
            f"migration {_relative(path, root)} does not declare `revision` and `down_revision`",
            hint="every migration file needs revision = '...' and down_revision = ... at module level",
        )
    replaces = _as_tuple(getattr(module, "replaces", None)) or ()
    original = getattr(module, "original_checksum", None)
    return RevisionHeader(
        revision, down, depends, path, replaces, original if isinstance(original, str) else None
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def read_headers(directory: Path, root: Path) -> list[RevisionHeader]:
    """Every revision file's header, in file-name order."""
    if not directory.is_dir():
        return []
    headers = []
    for path in sorted(directory.iterdir()):
        if not path.is_file() or not REVISION_FILE.match(path.name):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        headers.append(_from_header(path, text) or _by_execution(path, root))
    return headers


@dataclass(frozen=True)
class RevisionIndex:
    """The revision graph: parents, heads, a display order and ancestor sets."""

    revisions: dict[str, RevisionHeader]

    @classmethod
    def load(cls, directory: Path, root: Path) -> RevisionIndex:
        revisions: dict[str, RevisionHeader] = {}
        for header in read_headers(directory, root):
            if header.revision in revisions:
                raise HistoryError(
                    f"revision {header.revision} is declared by two files: "
                    f"{revisions[header.revision].path.name} and {header.path.name}"
                )
            revisions[header.revision] = header
        for header in revisions.values():
            for parent in header.down_revisions:
                if parent not in revisions:
                    raise HistoryError(
                        f"migration {header.name} revises {parent}, which has no migration file"
                    )
        return cls(revisions)

    @functools.cached_property
    def replaced_by(self) -> dict[str, RevisionHeader]:
        """Pruned revision -> the squash migration that replaces it (migrate:dump --prune)."""
        return {pruned: header for header in self.revisions.values() for pruned in header.replaces}

    def heads(self) -> tuple[str, ...]:
        children = {parent for header in self.revisions.values() for parent in header.down_revisions}
        return tuple(sorted(rev for rev in self.revisions if rev not in children))

    def ordered(self) -> list[RevisionHeader]:
        """Oldest first: parents before children, ties broken by file name (creation time)."""
        waiting = {rev: len(set(header.down_revisions)) for rev, header in self.revisions.items()}
        children: dict[str, list[str]] = {rev: [] for rev in self.revisions}
        for rev, header in self.revisions.items():
            for parent in set(header.down_revisions):
                children[parent].append(rev)
        ready = [(self.revisions[rev].path.name, rev) for rev, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        order: list[RevisionHeader] = []
        while ready:
            _, revision = heapq.heappop(ready)
            order.append(self.revisions[revision])
            for child in children[revision]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, (self.revisions[child].path.name, child))
        if len(order) != len(self.revisions):
            cycle = ", ".join(sorted(rev for rev, count in waiting.items() if count))
            raise HistoryError(f"the revision graph has a cycle among {cycle}")
        return order

    def ancestors(self, heads: Iterable[str]) -> set[str]:
        """The given revisions and everything below them; unknown ones raise HistoryError."""
        seen: set[str] = set()
        pending = list(heads)
        while pending:
            revision = pending.pop()
            if revision in seen:
                continue
            header = self.revisions.get(revision)
            if header is None:
                raise HistoryError(
                    f"the database is at revision {revision}, which has no migration file",
                    hint="restore the missing file (or run the newer release that created it)",
                )
            seen.add(revision)
            pending.extend(header.down_revisions)
            pending.extend(dep for dep in header.depends_on if dep in self.revisions)
        return seen
