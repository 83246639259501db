"""What every gRPC call leaves behind: its trace context, its request id, a count and a
duration per method and status, and one access-log line."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import grpc

from fulcrum.kit.logging import AccessSample, get_logger
from fulcrum.kit.tracing import TraceContext
from fulcrum.observability.metrics import REQUEST_DURATION, REQUESTS

access_log = get_logger("fulcrum.access")


@dataclass
class CallRecord:
    trace: TraceContext
    code: grpc.StatusCode = grpc.StatusCode.OK
    tenant: str | None = None
    request_id: str = field(default_factory=lambda: secrets.token_hex(8))
    started: float = field(default_factory=time.perf_counter)

    def observe(self, method: str, sample: AccessSample) -> None:
        elapsed = time.perf_counter() - self.started
        REQUESTS.labels(transport="grpc", route=method, code=self.code.name).inc()
        REQUEST_DURATION.labels(transport="grpc", route=method).observe(elapsed)
        if not sample.keeps(failed=self.code is not grpc.StatusCode.OK):
            return
        access_log.info(
            "request",
            transport="grpc",
            route=method,
            status=self.code.name,
            duration_ms=round(elapsed * 1000, 3),
            tenant_id=self.tenant,
            request_id=self.request_id,
            trace_id=self.trace.trace_id,
        )
