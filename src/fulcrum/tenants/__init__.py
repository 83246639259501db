"""Platform administration: tenants (never reachable with a tenant's key)."""
