"""Who is calling and what they may do: scopes, roles, API keys, JWTs, principals."""
