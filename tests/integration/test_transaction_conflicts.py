"""A deadlock or serialization failure, wherever it still happens, is a retryable conflict.

The errors come from the session's real PostgreSQL; the REST door's single error mapping
is exercised on the application's own exception handlers.
"""

from __future__ import annotations

import threading

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fulcrum.kit.dependencies import dependency_error
from fulcrum.kit.errors import Conflict
from fulcrum.transports.rest import errors
from tests.support.stack import LiveStack


def deadlock(stack: LiveStack) -> psycopg.Error:
    """Two transactions each holding the lock the other waits for: PostgreSQL aborts one."""
    a = psycopg.connect(stack.superuser_dsn())
    b = psycopg.connect(stack.superuser_dsn())
    failures: list[psycopg.Error] = []
    holding = threading.Barrier(2)

    def take(conn: psycopg.Connection, first: int, second: int) -> None:
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (first,))
                holding.wait()
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (second,))
        except psycopg.Error as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=take, args=(a, 7001, 7002)),
        threading.Thread(target=take, args=(b, 7002, 7001)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    a.close()
    b.close()
    assert len(failures) == 1, failures
    return failures[0]


def serialization_failure(stack: LiveStack) -> psycopg.Error:
    with psycopg.connect(stack.superuser_dsn(), autocommit=True) as setup:
        setup.execute("CREATE TABLE IF NOT EXISTS conflict_probe (id int PRIMARY KEY, v int)")
        setup.execute("INSERT INTO conflict_probe VALUES (1, 0) ON CONFLICT DO NOTHING")
    with (
        psycopg.connect(stack.superuser_dsn()) as first,
        psycopg.connect(stack.superuser_dsn(), autocommit=True) as second,
    ):
        first.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        first.execute("SELECT v FROM conflict_probe WHERE id = 1")
        second.execute("UPDATE conflict_probe SET v = v + 1 WHERE id = 1")
        with pytest.raises(psycopg.Error) as err:
            first.execute("UPDATE conflict_probe SET v = v + 1 WHERE id = 1")
    with psycopg.connect(stack.superuser_dsn(), autocommit=True) as cleanup:
        cleanup.execute("DROP TABLE conflict_probe")
    return err.value


@pytest.fixture(scope="module")
def conflicts(stack: LiveStack) -> list[psycopg.Error]:
    return [deadlock(stack), serialization_failure(stack)]


def test_postgresql_conflicts_are_retryable_conflicts(conflicts: list[psycopg.Error]) -> None:
    assert [exc.sqlstate for exc in conflicts] == ["40P01", "40001"]
    for exc in conflicts:
        mapped = dependency_error(exc)
        assert isinstance(mapped, Conflict), exc
        assert "retry" in mapped.message


def test_rest_answers_409_for_them(conflicts: list[psycopg.Error]) -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/conflict/{i}")
    async def raise_conflict(i: int) -> None:
        raise conflicts[i]

    # raise_server_exceptions: an exception Starlette re-raises (and would log as
    # "Exception in ASGI application") fails the test instead of becoming a 500.
    with TestClient(app, raise_server_exceptions=True) as client:
        for i in range(len(conflicts)):
            answer = client.get(f"/conflict/{i}")
            assert answer.status_code == 409, answer.text
            assert answer.json()["error"]["code"] == "conflict"
            assert "retry" in answer.json()["error"]["message"]
