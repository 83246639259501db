"""Runs the Alembic migrations (``fulcrum db migrate``) as the owner role."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from fulcrum.kit.config import Settings
from fulcrum.kit.db import owner_conninfo

_REPO_ROOT = Path(__file__).resolve().parents[3]


def alembic_config(settings: Settings) -> Config:
    ini = _REPO_ROOT / "alembic.ini"
    if not ini.exists():
        raise FileNotFoundError(f"{ini} not found: run Fulcrum from its source checkout")
    config = Config(str(ini))
    config.attributes["dsn"] = owner_conninfo(settings)
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)
