"""JetStream consumers (``fulcrum worker``)."""
