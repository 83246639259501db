"""Alembic environment: connects as the owner role with the admin client certificate."""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

from fulcrum.kit.config import load_settings
from fulcrum.kit.db import owner_conninfo


def run_migrations_online() -> None:
    dsn = context.config.attributes.get("dsn") or owner_conninfo(load_settings())
    engine = create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        context.configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `fulcrum db migrate`")
run_migrations_online()
