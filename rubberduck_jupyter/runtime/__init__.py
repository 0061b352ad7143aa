"""Process-level health: event-loop lag and subsystem states."""
