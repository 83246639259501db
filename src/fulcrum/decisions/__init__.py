"""The hot path: bundle -> engine -> answer (and, with the event path, the record)."""
