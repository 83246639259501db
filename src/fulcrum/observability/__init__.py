"""Metrics (one module declares them all)."""
