"""Turn any text a user types into a safe migration name: ASCII words, nothing executable."""

from __future__ import annotations

import re
import unicodedata

from project.errors import UsageError

# Also Alembic's truncate_slug_length: a message this short is never cut mid-word into `..._ver_`.
MAX_MESSAGE_LENGTH = 60


def migration_message(name: str) -> str:
    """Lowercase ASCII words joined by spaces; Alembic slugs it to `words_like_this`."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", folded.lower())
    if not words:
        raise UsageError(
            f"migration name {name!r} has no letters or digits",
            hint='use words that describe the change, e.g. "add email to users"',
        )
    message = " ".join(words)
    if len(message) > MAX_MESSAGE_LENGTH:
        message = message[:MAX_MESSAGE_LENGTH].rsplit(" ", 1)[0] or message[:MAX_MESSAGE_LENGTH]
    return message


REVISION_ARGUMENT = re.compile(r"[0-9A-Za-z_]{1,255}")


def revision_argument(text: str) -> str:
    """A revision id or migration file name from the command line, checked before any lookup."""
    candidate = text.strip().removesuffix(".py")
    if not REVISION_ARGUMENT.fullmatch(candidate):
        raise UsageError(
            f"{text[:80]!r} is not a revision id or migration name",
            hint="use the revision id or file name shown by migrate:status (letters, digits, _)",
        )
    return candidate
