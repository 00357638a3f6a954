"""The engine: one per database. Holds the lease, dispatches the outbox, runs scheduled jobs."""
