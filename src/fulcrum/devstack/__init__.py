"""Development and test stack: real PostgreSQL, Redis and NATS JetStream on 127.0.0.1."""
