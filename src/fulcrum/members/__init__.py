"""Members of a tenant: dashboard users (Clerk user ids) and their roles."""
