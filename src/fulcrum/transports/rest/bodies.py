"""The base of every REST request body."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictBody(BaseModel):
    """A request body: unknown fields are refused. Values are only typed here; their limits
    are the services' (and ``decisions.requests``'), so both doors refuse the same input with
    the same words. The perimeter bounds the body's size."""

    model_config = ConfigDict(extra="forbid")
