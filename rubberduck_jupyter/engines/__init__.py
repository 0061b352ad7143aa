"""Conversation engines, one module each, and the router that picks one per message."""
