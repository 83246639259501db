"""Shared plumbing: configuration, secrets, TLS material, database sessions, logging."""
