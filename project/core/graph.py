"""THE revision graph: heads, order, applied sets, names and targets, for every command.

Read from the files' headers without executing them (no Alembic import), so read-only commands
stay fast; a header that is not a plain literal is loaded the way Alembic loads it. `depends_on`
edges count as ancestry everywhere, exactly as Alembic's version table treats them."""

from __future__ import annotations

import ast
import functools
import heapq
import importlib.util
import re
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from manage_migrations.errors import ConfigError, HistoryError, UsageError
from manage_migrations.settings import make_importable

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


def load_module(path: Path, root: Path) -> ModuleType:
    """Execute a migration file as Alembic does; a file that fails is named with its line. Like
    Alembic's `prepend_sys_path`, the project's packages are importable by it."""
    make_importable(root)
    spec = importlib.util.spec_from_file_location(f"_manage_revision_{path.stem}_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load migration {_relative(path, root)}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        raise load_error(path, root, exc) from exc
    return module


def load_error(path: Path, root: Path, exc: BaseException) -> ConfigError:
    """The one message for a migration file that fails while it is executed (by us or by
    Alembic's ScriptDirectory): the file, the line, the error."""
    if isinstance(exc, SyntaxError):
        return ConfigError(f"cannot load migration {_relative(path, root)}, line {exc.lineno}: {exc.msg}")
    line = next(
        (
            frame.lineno
            for frame in reversed(traceback.extract_tb(exc.__traceback__))
            if Path(frame.filename) == path
        ),
        None,
    )
    where = f", line {line}" if line else ""
    return ConfigError(
        f"cannot load migration {_relative(path, root)}{where}: {type(exc).__name__}: {exc}",
        hint="migration files are executed when they are loaded; fix the error at module level",
    )


def _by_execution(path: Path, root: Path) -> RevisionHeader:
    """What Alembic does for every file: execute it and read the module attributes."""
    module = load_module(path, root)
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
    try:
        paths = sorted(directory.iterdir())
    except OSError as exc:
        raise ConfigError(
            f"cannot read the migrations directory {_relative(directory, root)}: {exc.strerror}",
            hint="check its permissions",
        ) from None
    for path in paths:
        if not REVISION_FILE.match(path.name):
            continue
        try:
            if not path.is_file():  # Path.is_file answers False when it may not look (EACCES)
                path.stat()
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ConfigError(
                f"cannot read migration {_relative(path, root)}: {exc.strerror}",
                hint="check the permissions of the file and of the migrations directory",
            ) from None
        headers.append(_from_header(path, text) or _by_execution(path, root))
    return headers


HEAD_WORDS = frozenset({"head", "heads"})
SHOWN_CANDIDATES = 10


@dataclass(frozen=True)
class RevisionGraph:
    """Parents (down revisions and dependencies), heads, a topological order and applied sets."""

    revisions: dict[str, RevisionHeader]
    order: tuple[str, ...]
    leftovers: tuple[RevisionHeader, ...] = ()  # pruned files an interrupted prune did not delete

    @classmethod
    def load(cls, directory: Path, root: Path) -> RevisionGraph:
        """Every revision file, checked: no duplicate id, no unknown parent, no cycle."""
        if directory.exists() and not directory.is_dir():
            raise ConfigError(
                f"the migrations path {_relative(directory, root)} is a file, not a directory",
                hint="point [tool.manage] migrations at a directory",
            )
        revisions: dict[str, RevisionHeader] = {}
        for header in read_headers(directory, root):
            if header.revision in revisions:
                raise HistoryError(
                    f"revision {header.revision} is declared by two files: "
                    f"{revisions[header.revision].path.name} and {header.path.name}",
                    hint="give one of them a new revision id (and fix the down_revision that names it)",
                )
            revisions[header.revision] = header
        # Files of revisions a squash migration replaces are left over from a prune that was
        # interrupted before it deleted them all: their revisions are history, as once deleted.
        replaced = {pruned for header in revisions.values() for pruned in header.replaces}
        leftovers = tuple(revisions.pop(pruned) for pruned in sorted(replaced & revisions.keys()))
        for header in revisions.values():
            for parent in header.down_revisions:
                if parent not in revisions:
                    raise HistoryError(
                        f"migration {header.name} revises {parent}, which has no migration file",
                        hint="restore the missing file, or fix the down_revision of the newer one",
                    )
        return cls(revisions, _topological(revisions), leftovers)

    def load_all(self, root: Path) -> None:
        """Execute every file as Alembic does: the headers alone miss a file that fails at module
        level (migrate:check, the gate before a deploy, must not)."""
        for header in self.ordered():
            load_module(header.path, root)

    @functools.cached_property
    def replaced_by(self) -> dict[str, RevisionHeader]:
        """Pruned revision -> the squash migration that replaces it (migrate:dump --prune)."""
        return {pruned: header for header in self.revisions.values() for pruned in header.replaces}

    @functools.cached_property
    def _parents(self) -> dict[str, tuple[str, ...]]:
        return {
            revision: tuple(
                dict.fromkeys(
                    header.down_revisions + tuple(d for d in header.depends_on if d in self.revisions)
                )
            )
            for revision, header in self.revisions.items()
        }

    def parents(self, revision: str) -> tuple[str, ...]:
        """Down revisions and dependencies: everything that must be applied first."""
        return self._parents[revision]

    def heads(self) -> tuple[str, ...]:
        children = {parent for header in self.revisions.values() for parent in header.down_revisions}
        return tuple(sorted(rev for rev in self.revisions if rev not in children))

    def ordered(self) -> list[RevisionHeader]:
        """Oldest first: parents before children, ties broken by file name (creation time)."""
        return [self.revisions[revision] for revision in self.order]

    def name(self, revision: str) -> str:
        header = self.revisions.get(revision)
        return header.name if header is not None else revision

    def names(self, revisions: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.name(revision) for revision in revisions)

    def ancestors(self, heads: Iterable[str]) -> set[str]:
        """The given revisions and everything below them; unknown ones raise HistoryError."""
        seen: set[str] = set()
        pending = list(heads)
        while pending:
            revision = pending.pop()
            if revision in seen:
                continue
            if revision not in self.revisions:
                raise HistoryError(
                    f"the database is at revision {revision}, which has no migration file",
                    hint="restore the missing file (or run the newer release that created it)",
                )
            seen.add(revision)
            pending.extend(self.parents(revision))
        return seen

    def applied(self, version_heads: Iterable[str]) -> frozenset[str]:
        """What alembic_version says is applied: its revisions and all their ancestors."""
        return frozenset(self.ancestors(version_heads))

    def version_heads(self, applied: Iterable[str]) -> tuple[str, ...]:
        """The rows alembic_version holds for an applied set: its members no other member needs."""
        members = set(applied)
        below = self.ancestors(parent for revision in members for parent in self.parents(revision))
        return tuple(sorted(members - below))

    def in_order(self, revisions: Iterable[str]) -> list[str]:
        wanted = set(revisions)
        return [revision for revision in self.order if revision in wanted]

    def resolve(self, text: str) -> str:
        """The revision `text` names: exact id, exact file name, `head`, or a unique prefix of either."""
        wanted = text.strip().removesuffix(".py")
        if wanted in HEAD_WORDS:
            heads = self.heads()
            if len(heads) != 1:
                raise HistoryError(
                    f"the migration history has {len(heads)} heads; name one of them",
                    hint=f"heads: {', '.join(self.names(heads))}",
                )
            return heads[0]
        files = self.ordered()
        for file in files:
            if wanted in (file.revision, file.name):
                return file.revision
        matches = [
            file
            for file in files
            if file.revision.startswith(wanted)
            or file.name.startswith(wanted)
            or _without_stamp(file.name).startswith(wanted)
        ]
        if len(matches) == 1:
            return matches[0].revision
        shown = matches or files
        listing = ", ".join(file.name for file in shown[:SHOWN_CANDIDATES])
        more = f" (and {len(shown) - SHOWN_CANDIDATES} more)" if len(shown) > SHOWN_CANDIDATES else ""
        if matches:
            raise UsageError(
                f"{text!r} matches {len(matches)} migrations: {listing}{more}",
                hint="give more of the file name, or the revision id",
            )
        raise UsageError(
            f"no migration matches {text!r}",
            hint=f"known migrations: {listing}{more}" if files else "there are no migrations yet",
        )


def _without_stamp(name: str) -> str:
    parts = name.split("_", 4)
    return parts[4] if len(parts) == 5 and all(part.isdigit() for part in parts[:4]) else name


def ordered_by(parents: dict[str, set[str]], key: Callable[[str], tuple[Any, ...]]) -> list[str]:
    """Kahn's topological sort: parents before children, among the ready ones the smallest `key`
    first. `parents` maps each node to its parents within the same set. Nodes on a cycle are
    left out (the caller notices the shorter result)."""
    waiting = {node: len(found) for node, found in parents.items()}
    children: dict[str, list[str]] = {node: [] for node in parents}
    for node, found in parents.items():
        for parent in found:
            children[parent].append(node)
    ready = [(key(node), node) for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for child in children[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (key(child), child))
    return order


def _topological(revisions: dict[str, RevisionHeader]) -> tuple[str, ...]:
    """Parents (and dependencies) before children, ties by file name; a cycle is a HistoryError."""
    parents = {
        rev: set(header.down_revisions) | {dep for dep in header.depends_on if dep in revisions}
        for rev, header in revisions.items()
    }
    order = ordered_by(parents, lambda rev: (revisions[rev].path.name,))
    if len(order) != len(revisions):
        cycle = _cycle(revisions, parents, set(revisions) - set(order))
        shown = " -> ".join(f"{revisions[rev].name} ({rev})" for rev in [*cycle, cycle[0]])
        raise HistoryError(
            f"the revision graph has a cycle: {shown}",
            hint="each of these revises the next; a migration's down_revision (or depends_on) "
            "must name an older migration",
        )
    return tuple(order)


def _cycle(revisions: dict[str, RevisionHeader], parents: dict[str, set[str]], stuck: set[str]) -> list[str]:
    """One cycle among the revisions a topological sort could not place (the others only
    descend from it): every stuck revision has a stuck parent, so following them must loop."""
    path: list[str] = []
    seen: dict[str, int] = {}
    revision = min(stuck, key=lambda rev: revisions[rev].path.name)
    while revision not in seen:
        seen[revision] = len(path)
        path.append(revision)
        revision = min((p for p in parents[revision] if p in stuck), key=lambda rev: revisions[rev].path.name)
    cycle = path[seen[revision] :]
    start = cycle.index(min(cycle, key=lambda rev: revisions[rev].path.name))
    return cycle[start:] + cycle[:start]
