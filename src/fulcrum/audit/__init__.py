"""The audit trail of administrative changes and decisions."""
