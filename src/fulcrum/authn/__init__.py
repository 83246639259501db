"""Authentication: credentials (API keys, session tokens, platform keys) into principals.

It sits above the domains, whose records it reads to authenticate; the vocabulary it
produces (``auth``: principal, scopes, key format) is what every layer below may use."""
