"""Every Prometheus metric Fulcrum exports, declared once, with bounded label sets."""

from __future__ import annotations

from prometheus_client import Counter

AUTH_FAILURES = Counter(
    "fulcrum_auth_failures_total",
    "Requests refused because their credentials were missing or invalid, by reason.",
    ["reason"],
)
