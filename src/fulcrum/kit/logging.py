"""JSON-line logs with timestamp, level, service and trace id; every event is redacted.

They go to stdout (what container runtimes collect), or to a file that rotates by size
when one is configured (``FULCRUM_LOG_FILE``: the dev stack's ``.fulcrum/logs``).

A rotating file has exactly one writer: rotation renames the file under any other process
writing it. So each serving process of a supervised ``fulcrum api`` writes its own numbered
file (:func:`numbered`), and on stdout, which they share, each line is one ``write``, so
lines do not interleave (on a pipe, lines up to 4 KiB are atomic)."""

from __future__ import annotations

import logging
import logging.handlers
import random
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import orjson
import structlog

from fulcrum.kit.redaction import redact
from fulcrum.kit.tracing import current_trace_id


def _add_trace_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event.setdefault("trace_id", current_trace_id.get())
    return event


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {key: redact(value, key) for key, value in event.items()}


def numbered(file: Path, slot: int) -> Path:
    """``api.log`` -> ``api-<slot>.log``: the log file of one serving process."""
    return file.with_name(f"{file.stem}-{slot}{file.suffix}")


def _dumps(event: Any, **_: Any) -> str:
    return orjson.dumps(event, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(
    service: str,
    level: str = "info",
    *,
    file: Path | None = None,
    max_bytes: int = 50 << 20,
    backups: int = 5,
    fields: Mapping[str, Any] | None = None,
) -> None:
    """Route structlog and the standard library (uvicorn, grpc, nats) to JSON lines on
    stdout, or in ``file``, which rotates past ``max_bytes`` keeping ``backups`` old files.
    ``fields`` go in every line (a serving process's slot and pid, to tell its lines from
    the others' on a shared stdout), whichever thread logs."""
    constant = dict(fields or {})

    def add_fields(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in constant.items():
            event.setdefault(key, value)
        return event

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_id,
        add_fields,
        structlog.processors.format_exc_info,
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
    )
    handler: logging.Handler = (
        logging.handlers.RotatingFileHandler(file, maxBytes=max_bytes, backupCount=backups)
        if file is not None
        else logging.StreamHandler(sys.stdout)
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


class AccessSample:
    """Which requests the access log keeps: every error, and ``share`` of the rest (the
    metrics count them all). One line per request would cost a busy API more than its
    decisions do."""

    def __init__(self, share: float) -> None:
        self._share = share

    def keeps(self, *, failed: bool) -> bool:
        return failed or self._share >= 1.0 or random.random() < self._share  # noqa: S311
