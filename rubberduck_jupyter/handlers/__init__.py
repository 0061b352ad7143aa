"""HTTP and WebSocket handlers: authenticate, authorize, validate, delegate."""
