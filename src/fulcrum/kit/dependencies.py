"""Recognises failures of the data stores, so transports answer 503 / UNAVAILABLE naming the
dependency instead of a bare internal error."""

from __future__ import annotations

import psycopg
import psycopg_pool
import redis

from fulcrum.kit.errors import Unavailable


def unavailable(exc: BaseException) -> Unavailable | None:
    if isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout):
        return Unavailable("postgresql is unavailable; retry later")
    if isinstance(exc, redis.RedisError):
        return Unavailable("redis is unavailable; retry later")
    return None
