"""``/healthz`` (liveness) and ``/readyz`` (PostgreSQL, Redis, NATS) for any process."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fulcrum.runtime import Resources

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    resources: Resources = request.app.state.resources
    checks = await resources.readiness()
    down = [name for name, reason in checks.items() if reason is not None]
    body = {
        "status": "unavailable" if down else "ok",
        "unavailable": down,
        "checks": {name: reason or "ok" for name, reason in checks.items()},
    }
    return JSONResponse(body, status_code=503 if down else 200)
