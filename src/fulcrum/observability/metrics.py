"""Every Prometheus metric Fulcrum exports, declared once, with bounded label sets.

Label values come from fixed sets (reasons, actions, route templates, RPC names), never
from caller input, so a hostile client cannot blow up the series count.

``fulcrum api`` may run several serving processes whose metrics are summed on one port
(``observability/multiprocess.py``): counters and histograms add up; each gauge says, with
its ``multiprocess_mode``, how its processes' values combine. The ``live`` modes forget a
process once it died, so a replaced process's last value does not linger.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

AUTH_FAILURES = Counter(
    "fulcrum_auth_failures_total",
    "Requests refused because their credentials were missing or invalid, by reason.",
    ["reason"],
)

KEY_LOOKUPS = Counter(
    "fulcrum_auth_key_lookups_total",
    "API key records read from PostgreSQL (cache misses), by key kind and whether it exists.",
    ["kind", "found"],
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
    "1 while Redis is unreachable and a serving process enforces its conservative local limit.",
    # Any one process degraded is the alert; a sum would count the processes.
    multiprocess_mode="livemax",
)

EVENT_PUBLISH_INFLIGHT = Gauge(
    "fulcrum_event_publish_inflight",
    "Events sent to JetStream and not yet acknowledged by it, in the serving processes.",
    # Each process has its own in flight (its own cap, FULCRUM_EVENTS_MAX_INFLIGHT): the total
    # is what JetStream holds for this server.
    multiprocess_mode="livesum",
)

EVENT_PUBLISH_REFUSED = Counter(
    "fulcrum_event_publish_refused_total",
    "Events not published, so their requests were refused: saturated, disconnected, timeout.",
    ["reason"],
)

DECISION_VOIDS = Counter(
    "fulcrum_decision_voids_total",
    "Refused decisions whose events may have been stored all the same, given a void record.",
)
DECISION_VOIDS_FAILED = Counter(
    "fulcrum_decision_void_failures_total",
    "Refused decisions whose events may have been stored and whose void record could not "
    "be written (PostgreSQL unavailable too): the ledger may show them as if answered.",
)
DECISIONS_UNRECORDED = Counter(
    "fulcrum_decisions_unrecorded_total",
    "Decisions answered without a durable record (only in best-effort audit mode; "
    "stays 0 in the default audit-before-answer mode).",
)

WORKER_PENDING = Gauge(
    "fulcrum_worker_pending_events",
    "Events in JetStream not yet written to the ledger by the worker consumer.",
    # Every process that reads it reads the one durable consumer's backlog: a sum would
    # count it once per process.
    multiprocess_mode="livemax",
)

WORKER_LAG = Gauge(
    "fulcrum_worker_lag_seconds",
    "Age of the oldest event in the last batch the worker wrote while events were pending.",
    # The oldest is the lag, whichever process wrote it.
    multiprocess_mode="livemax",
)

WORKER_WRITTEN = Counter(
    "fulcrum_worker_records_written_total",
    "Ledger records written by the worker, by kind (decision or change).",
    ["kind"],
)

WORKER_SET_ASIDE = Counter(
    "fulcrum_worker_events_set_aside_total",
    "Events the worker could not decode and terminated instead of retrying forever.",
)

LEDGER_VERIFICATION_FAILURES = Counter(
    "fulcrum_ledger_verification_failures_total",
    "Ledger verifications that found a problem (hash, gap, checkpoint, signature).",
)

ANCHORS_PUBLISHED = Counter(
    "fulcrum_worker_anchors_published_total",
    "Signed checkpoints the worker anchored in the FULCRUM_ANCHORS stream.",
)

BUNDLE_CACHE_BUNDLES = Gauge(
    "fulcrum_bundle_cache_bundles",
    "Compiled policy bundles (one per tenant) held in the serving processes' caches.",
    # Each process caches its own copy of a tenant's bundle: the sum is what the server
    # holds in memory (a tenant served by two processes counts twice, as it costs twice).
    multiprocess_mode="livesum",
)

BUNDLE_CACHE_BYTES = Gauge(
    "fulcrum_bundle_cache_bytes",
    "Estimated memory of the cached bundles, together (bounded by FULCRUM_BUNDLE_CACHE_MB "
    "per serving process).",
    # The server's memory is the sum of its processes'; the bound is per process.
    multiprocess_mode="livesum",
)

BUNDLE_CACHE_EVICTIONS = Counter(
    "fulcrum_bundle_cache_evictions_total",
    "Bundles evicted, least recently used first, to keep the cache under its memory bound.",
)

BUNDLE_LOADS = Counter(
    "fulcrum_bundle_loads_total",
    "Bundles read from PostgreSQL and compiled, by reason: miss (first use or evicted) or "
    "stale (the tenant's policies changed).",
    ["reason"],
)
