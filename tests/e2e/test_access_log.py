"""With a sample of 0, the access log keeps every failed request and no successful one;
the request metrics still count them all."""

from __future__ import annotations

import json
import time

import grpc
import httpx

from fulcrum.pb.v1 import decisions_pb2, decisions_pb2_grpc
from tests.support.identity import new_tenant, rest
from tests.support.processes import start_api
from tests.support.stack import LiveStack


def access_lines(text: str) -> list[dict[str, object]]:
    lines = []
    for raw in text.splitlines():
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if event.get("event") == "request" and event.get("logger") == "fulcrum.access":
            lines.append(event)
    return lines


def test_only_errors_are_logged_with_a_sample_of_zero(stack: LiveStack) -> None:
    tenant = new_tenant(stack, "access")
    api = start_api(stack, "api-quiet-log", FULCRUM_ACCESS_LOG_SAMPLE="0")
    try:
        with rest(api, tenant.owner_key) as client:
            for _ in range(5):
                assert client.get("/v1/settings").status_code == 200
        with rest(api, "fk_bogus") as client:
            for _ in range(3):
                assert client.get("/v1/settings").status_code == 401
        with api.channel() as channel:
            stub = decisions_pb2_grpc.DecisionServiceStub(channel)
            ask = decisions_pb2.EvaluateRequest(tool=decisions_pb2.Tool(name="db.query"))
            stub.Evaluate(ask, metadata=(("authorization", f"Bearer {tenant.owner_key}"),))
            try:
                stub.Evaluate(ask, metadata=(("authorization", "Bearer fk_bogus"),))
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
        time.sleep(0.5)  # the last lines reach the log file
        lines = access_lines(api.log_text())
        metrics = httpx.get(f"http://127.0.0.1:{api.metrics_port}/metrics", timeout=10).text
    finally:
        api.stop()
    rest_lines = [line for line in lines if line["transport"] == "rest"]
    grpc_lines = [line for line in lines if line["transport"] == "grpc"]
    assert [line["status"] for line in rest_lines] == [401, 401, 401]
    assert [line["status"] for line in grpc_lines] == ["UNAUTHENTICATED"]
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("fulcrum_requests_total{")
        and 'route="/v1/settings"' in line
        and 'code="200"' in line
        and 'transport="rest"' in line
    ]
    assert [line.rsplit(" ", 1)[1] for line in counted] == ["5.0"]
