"""Every Prometheus metric Fulcrum exports, declared once, with bounded label sets.

Label values come from fixed sets (reasons, actions, route templates, RPC names), never
from caller input, so a hostile client cannot blow up the series count.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

AUTH_FAILURES = Counter(
    "fulcrum_auth_failures_total",
    "Requests refused because their credentials were missing or invalid, by reason.",
    ["reason"],
)

REQUESTS = Counter(
    "fulcrum_requests_total",
    "Requests answered, by transport, route template or RPC, and status code.",
    ["transport", "route", "code"],
)

REQUEST_DURATION = Histogram(
    "fulcrum_request_duration_seconds",
    "Time to answer a request, by transport and route template or RPC.",
    ["transport", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

DECISIONS = Counter(
    "fulcrum_decisions_total",
    "Decisions answered, by action.",
    ["action"],
)

DECISION_EVALUATION = Histogram(
    "fulcrum_decision_evaluation_seconds",
    "Time the engine took to evaluate one decision (bundle in memory, no I/O).",
    buckets=(1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.01),
)

RATE_LIMITED = Counter(
    "fulcrum_rate_limited_total",
    "Requests refused by a rate limit, by the limit that refused them (tenant or key).",
    ["limit"],
)

RATE_LIMIT_DEGRADED = Gauge(
    "fulcrum_rate_limit_degraded",
    "1 while Redis is unreachable and this process enforces its conservative local limit.",
)
