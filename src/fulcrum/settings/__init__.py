"""Tenant settings (scope settings:read / settings:manage)."""
