"""Fails at import: the handshake must carry the reason."""

import rubberduck_no_such_module_xyz  # noqa: F401
