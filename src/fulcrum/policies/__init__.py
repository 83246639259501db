"""Policies: versioned documents with a lifecycle (draft, active, disabled, deleted)."""
