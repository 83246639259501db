"""The event path: decision and change events on NATS JetStream."""
