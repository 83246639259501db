"""Recognises failures of the data stores, so transports answer with a clear error instead
of a bare internal one: 503 / UNAVAILABLE naming a dependency that is down, 409 /
FAILED_PRECONDITION asking to retry when PostgreSQL aborted a transaction that collided
with a concurrent one (deadlock, serialization failure)."""

from __future__ import annotations

import psycopg
import psycopg_pool
import redis

from fulcrum.kit.errors import Conflict, FulcrumError, Unavailable

# SQLSTATE 40P01 and 40001; psycopg files both under OperationalError, so they are
# recognised before the "unavailable" case.
TRANSACTION_CONFLICTS: tuple[type[Exception], ...] = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)


def dependency_error(exc: BaseException) -> FulcrumError | None:
    """The error a transport answers for a data store's exception; None if it is not one."""
    if isinstance(exc, TRANSACTION_CONFLICTS):
        return Conflict("the change collided with a concurrent change; retry")
    if isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout):
        return Unavailable("postgresql is unavailable; retry later")
    if isinstance(exc, redis.RedisError):
        return Unavailable("redis is unavailable; retry later")
    return None
