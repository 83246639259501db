"""Per-tenant and per-key token buckets in Redis, with a local fallback when Redis fails."""
