"""Process-level concerns: event-loop lag, the GIL switch interval, the supervisor of
long-lived tasks, process memory and the /metrics collector. Below sessions/ (which
runs its actors under the supervisor); imports no session, engine or handler."""
