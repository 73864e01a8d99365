"""The one object manage.py hands to env.py, under one config.attributes key. Tools built on
Alembic (pytest-alembic, the cookbook recipes) use Alembic's own keys instead: "connection" (an
Engine or a Connection) and "target_metadata"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from manage_migrations.alembic_env.autogen import AutogenOutcome, AutogenRequest
    from manage_migrations.settings import Settings

REQUEST_KEY = "manage.request"


@dataclass(frozen=True)
class EnvRequest:
    settings: Settings
    connection: Any = None  # a Connection (ours), or an Engine or Connection from a tool
    metadata: tuple[MetaData, ...] | None = None
    autogen_request: AutogenRequest | None = None
    autogen_outcome: AutogenOutcome | None = None

    @classmethod
    def from_tool(cls, settings: Settings, attributes: dict[str, Any]) -> EnvRequest:
        """What plain `alembic` or a tool built on it put in config.attributes."""
        metadata = attributes.get("target_metadata")
        if metadata is not None and not isinstance(metadata, list | tuple):
            metadata = (metadata,)
        return cls(settings, attributes.get("connection"), tuple(metadata) if metadata else None)
