"""Campaigns: definitions (the When/Who/What document), schedules, runs and their
materialization into the outbox, rendering at send time, and the lifecycle an operator drives.

Modules: definition (parsing and validating a campaign document), schedule (run times),
render (Liquid bodies, previews, linked content), crud (create, update, schedule, pause, resume,
stop, duplicate, delete, list, show), runs and materialize (starting a run, the safety check,
set-based materialization, counts). Live campaigns (issue 14), variants and conversions (15) and
the compliance preflight (16) build on these."""
