"""The decision workload the ledger and decision-path benchmarks share: a small policy set
(a deny regex, require_approval, warn on cost, allowed reads, a shadow candidate) and the
tools and queries their requests draw from."""

from __future__ import annotations

from typing import Any

POLICIES: list[dict[str, Any]] = [
    {
        "name": "bench guardrails",
        "priority": 10,
        "rules": [
            {
                "id": "no-destructive-sql",
                "target": {"tools": ["db.query", "db.exec"]},
                "when": {
                    "field": "tool.args.query",
                    "op": "regex",
                    "value": r"(?i)drop\s+table|truncate",
                },
                "action": "deny",
                "reason": "destructive SQL needs a human",
            },
            {
                "id": "prod-writes",
                "target": {"tools": ["db.exec", "files.write"]},
                "when": {"field": "context.env", "op": "eq", "value": "prod"},
                "action": "require_approval",
                "reason": "writes to production are approved first",
            },
            {
                "id": "expensive",
                "when": {"field": "cost.estimate", "op": "gt", "value": 50},
                "action": "warn",
                "reason": "costly call",
            },
            {
                "id": "reads",
                "target": {"tools": ["files.read", "db.query", "http.get"]},
                "action": "allow",
                "reason": "reads are fine",
            },
        ],
    },
    {
        "name": "bench candidate",
        "mode": "shadow",
        "rules": [
            {
                "id": "no-http",
                "target": {"tools": ["http.*"]},
                "action": "deny",
                "reason": "candidate: no outbound HTTP",
            },
        ],
    },
]
TOOLS = ["files.read", "files.write", "db.query", "db.exec", "http.get", "http.post", "mail.send"]
QUERIES = ["select * from orders where id = $1", "DROP TABLE users", "update t set x = 1"]
