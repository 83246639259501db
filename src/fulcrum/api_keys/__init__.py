"""Tenant API keys: create (secret shown once), read, list, revoke, rotate."""
