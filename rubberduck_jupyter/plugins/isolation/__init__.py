"""Untrusted plugins in a worker subprocess, reached through an RPC that enforces permissions.

An untrusted plugin runs in its own process (worker.py, serve.py) under resource limits
(RLIMIT_AS 512 MiB, RLIMIT_CPU 30 s, RLIMIT_NOFILE 64 by default). The server sees it as a
proxy module (proxy.py) that `PluginRegistry.admit` takes unchanged, so the registry's
admission, guard, timeouts and disabling apply as for any plugin. Every `ctx` call the
plugin makes crosses the RPC (rpc.py) and is answered by `call_method` on the command's real
`CommandContext` (process.py), so an undeclared permission is refused in the server.
`PluginSupervisor` (supervisor.py) restarts a dead worker with backoff and reports health.

What this does not isolate (docs/plugins.md, Isolation): the worker runs as the same OS user,
so it can read what that user can read and open network connections; `network` and
`read_files` are declared, not blocked by the kernel.

This package imports only the standard library, pluggy, packaging and the plugin core.
"""

from __future__ import annotations

from .process import HandshakeError, PluginTarget, WorkerDied, WorkerLimits
from .rpc import MAX_FRAME_BYTES, ProtocolError, RemoteError
from .supervisor import PluginSupervisor, WorkerUnavailable, admit_isolated, supervisors_for_folder

__all__ = [
    "MAX_FRAME_BYTES",
    "HandshakeError",
    "PluginSupervisor",
    "PluginTarget",
    "ProtocolError",
    "RemoteError",
    "WorkerDied",
    "WorkerLimits",
    "WorkerUnavailable",
    "admit_isolated",
    "supervisors_for_folder",
]
