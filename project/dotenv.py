""".env files as python-dotenv reads them (what Laravel, Django and docker compose users write),
without the dependency."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

# The .env grammar of python-dotenv (what Laravel, Django and docker compose users write),
# without the dependency: KEY=value, `export KEY=value`, '...' and "..." values (which may span
# lines and keep a `#`), an unquoted value's ` # comment` dropped.
_DOTENV_SPACE = re.compile(r"\s*")
_DOTENV_BINDING = re.compile(r"(?:export[^\S\r\n]+)?(?:'([^']+)'|([^=#\s]+))[^\S\r\n]*(=[^\S\r\n]*)?")
_DOTENV_SINGLE = re.compile(r"'((?:\\'|[^'])*)'")
_DOTENV_DOUBLE = re.compile(r'"((?:\\"|[^"])*)"')
_DOTENV_UNQUOTED = re.compile(r"[^\r\n]*")
_DOTENV_LINE_END = re.compile(r"[^\S\r\n]*(?:#[^\r\n]*)?(?:\r\n|\n|\r|$)")
_DOTENV_REST_OF_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)?")
_DOUBLE_QUOTE_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n"}
_DOUBLE_QUOTE_ESCAPES |= {"r": "\r", "t": "\t", "v": "\v"}


def _dotenv_value(text: str, position: int, spaced: bool) -> tuple[str, int] | None:
    """The value starting at `position` and where it ends; None when a quote is never closed."""
    quote = text[position : position + 1]
    if quote in ("'", '"'):
        match = (_DOTENV_SINGLE if quote == "'" else _DOTENV_DOUBLE).match(text, position)
        if match is None:
            return None
        if quote == "'":
            value = re.sub(r"\\([\\'])", r"\1", match.group(1))
        else:
            value = re.sub(r"\\([\\'\"abfnrtv])", lambda m: _DOUBLE_QUOTE_ESCAPES[m.group(1)], match.group(1))
        return value, match.end()
    match = _DOTENV_UNQUOTED.match(text, position)
    assert match is not None  # matches the empty string at worst
    raw = match.group(0)
    if spaced and raw.startswith("#"):  # `KEY=  # comment` is an empty value
        return "", match.end()
    return re.sub(r"\s+#.*", "", raw).rstrip(), match.end()


def parse_dotenv(text: str) -> dict[str, str]:
    """KEY=VALUE bindings as python-dotenv reads them; a line it would reject is skipped."""
    values: dict[str, str] = {}
    text = text.removeprefix("\ufeff")
    position = 0
    while position < len(text):
        position = _DOTENV_SPACE.match(text, position).end()  # type: ignore[union-attr]
        if position >= len(text):
            break
        binding = None if text[position] == "#" else _DOTENV_BINDING.match(text, position)
        parsed = None
        if binding is not None and binding.group(3) is not None:
            parsed = _dotenv_value(text, binding.end(), spaced=len(binding.group(3)) > 1)
        end = _DOTENV_LINE_END.match(text, parsed[1]) if parsed else None
        if binding is None or parsed is None or end is None:
            # A comment, a key without `=` or a malformed line: python-dotenv sets nothing for it
            # and goes on after the line it stopped in.
            restart = parsed[1] if parsed else position
            position = _DOTENV_REST_OF_LINE.match(text, restart).end()  # type: ignore[union-attr]
            continue
        values[binding.group(1) or binding.group(2)] = parsed[0]
        position = end.end()
    return values


_DOTENV_VARIABLE = re.compile(r"\$\{(?P<name>[^}:]*)(?::-(?P<default>[^}]*))?\}")


def read_dotenv(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The .env file's bindings, without touching os.environ; `${NAME}` and `${NAME:-default}`
    expand as python-dotenv expands them (earlier lines of the file first, then the environment)."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for key, raw in parse_dotenv(path.read_text(encoding="utf-8")).items():
        known = {**environ, **values}

        def expand(match: re.Match[str], known: dict[str, str] = known) -> str:
            return known.get(match["name"], match["default"] or "")

        values[key] = _DOTENV_VARIABLE.sub(expand, raw)
    return values
