"""Chat turns and the conversations they belong to, kept per user."""
