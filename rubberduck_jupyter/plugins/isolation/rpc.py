"""The wire between the server and an isolation worker: framed JSON and typed errors.

Framing: each message is a 4-byte big-endian length followed by that many bytes of UTF-8
JSON holding one object with a type field `t`. Length-prefixed rather than newline-delimited
because the reader knows the size before it buffers anything, so an oversized frame is
refused after 4 bytes instead of after megabytes of a line that never ends. Measured on the
2-core dev machine (benchmarks/plugins_rpc.py, 2,000 calls): a no-op command through the
registry costs 0.15-0.2 ms p50 / 0.22-0.35 ms p95 isolated against 0.03 ms in-process, a
tenth of the 2 ms goal, so a binary format would buy nothing.

Messages (ids are per direction, chosen by the sender):

| t | direction | fields |
|---|---|---|
| `hello` | worker -> server, once | `ok`, then `spec`, `commands`, `hooks`, `pid`, or `error` |
| `call` | server -> worker | `id`, `op` ("command" or "hook"), `name`, `args` / `kwargs`, `ctx` |
| `cancel` | server -> worker | `id` of a call; the worker cancels it and answers its `result` |
| `result` | worker -> server | `id`, `ok`, `value` or `error` |
| `ctx` | worker -> server | `id`, `call` (the command's id), `method`, `args`, `kwargs` |
| `ctx_result` | server -> worker | `id`, `ok`, `value` or `error` |

An error is `{"type": "ValueError", "message": "..."}`; a `PermissionRefused` also carries
`plugin`, `method` and `permission` so the worker raises the very same exception (same
message) inside the plugin.

This module is shared by both sides and imports only the standard library and the plugin
core's context (for PermissionRefused).
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
from typing import Any

from ..context import PermissionRefused
from ..spec import PluginSpecError

# Exit codes of the worker that the supervisor turns into reasons (signals arrive as negative
# return codes). Part of the wire contract, so kept here beside the frames.
EXIT_MEMORY = 86  # a MemoryError: the RLIMIT_AS limit was hit
EXIT_PROTOCOL = 87  # the server sent a frame the worker cannot read
# SIGXCPU arrives at the soft CPU limit; if the plugin catches or ignores it, the kernel's
# SIGKILL at the hard limit ends the process this many CPU seconds later.
CPU_HARD_GRACE_S = 2

# The largest single message either side accepts. The biggest legitimate payloads are a
# project file's text (ctx.read_file) and a model answer (ctx.ask), both well under 1 MiB in
# practice; 4 MiB leaves 4x headroom while bounding what a runaway or hostile worker can make
# the server buffer (one frame at a time per worker, so at most 4 MiB per worker).
MAX_FRAME_BYTES = 4 * 1024 * 1024
_HEADER = struct.Struct(">I")
HEADER_BYTES = _HEADER.size

# Message types each side may receive; anything else is a protocol error.
TO_WORKER = frozenset({"call", "cancel", "ctx_result"})
FROM_WORKER = frozenset({"hello", "result", "ctx"})

# Remote exception type names become local classes of that name (below); the name must look
# like a Python identifier and the cache is bounded so a hostile worker cannot grow it.
_TYPE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MAX_REMOTE_TYPES = 256
# Builtins the worker re-raises as themselves inside the plugin, so `except ValueError`
# in plugin code works for a server-side ValueError (bad top_k, a mode not in SUGGEST_MODES).
_BUILTIN_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        LookupError,
        PermissionError,
        FileNotFoundError,
        IsADirectoryError,
        TimeoutError,
        RuntimeError,
    )
}


class ProtocolError(Exception):
    """A frame that breaks the protocol: too large, truncated, not JSON, unknown type."""


class RemoteError(Exception):
    """An exception raised on the other side, carried by type name and message.

    `remote_error()` returns an instance of a subclass *named after the remote type*, so the
    hook guard's message reads `/x raised ValueError: boom`, the same as in-process.
    """

    remote_type: str = "RemoteError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.remote_message = message


_remote_types: dict[str, type[RemoteError]] = {}


def remote_error(type_name: str, message: str) -> RemoteError:
    """A `RemoteError` whose class is named `type_name` (when it is a sane identifier)."""
    if not isinstance(type_name, str) or not _TYPE_NAME_RE.match(type_name):
        return RemoteError(str(message))
    cls = _remote_types.get(type_name)
    if cls is None:
        if len(_remote_types) >= _MAX_REMOTE_TYPES:
            cls = RemoteError
        else:
            cls = type(type_name, (RemoteError,), {"remote_type": type_name})
            _remote_types[type_name] = cls
    return cls(str(message))


def error_payload(exc: BaseException) -> dict[str, Any]:
    """The wire form of an exception."""
    if isinstance(exc, RemoteError):
        out: dict[str, Any] = {"type": exc.remote_type, "message": exc.remote_message}
    else:
        out = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, PermissionRefused):
        out.update(plugin=exc.plugin, method=exc.method, permission=exc.permission)
    elif isinstance(exc, PluginSpecError):
        out.update(plugin=exc.plugin, field=exc.field, problem=exc.problem)
    return out


def raise_payload(error: object) -> BaseException:
    """The local exception for a wire error: PermissionRefused and PluginSpecError rebuilt
    exactly, common builtins as themselves, anything else as a `RemoteError` subclass."""
    if not isinstance(error, dict):
        return ProtocolError(f"an error frame's 'error' is not an object: {error!r:.200}")
    kind = str(error.get("type", "RemoteError"))
    message = str(error.get("message", ""))
    if kind == "PermissionRefused" and all(
        isinstance(error.get(k), str) for k in ("plugin", "method", "permission")
    ):
        return PermissionRefused(error["plugin"], error["method"], error["permission"])
    if kind == "PluginSpecError" and all(
        isinstance(error.get(k), str) for k in ("plugin", "field", "problem")
    ):
        return PluginSpecError(error["plugin"], error["field"], error["problem"])
    builtin = _BUILTIN_ERRORS.get(kind)
    if builtin is not None:
        return builtin(message)
    return remote_error(kind, message)


def encode(message: dict[str, Any]) -> bytes:
    """One frame; raises `ProtocolError` when the message is over MAX_FRAME_BYTES and
    `TypeError`/`ValueError` when it is not JSON (a plugin returned a set, say)."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    data = body.encode()
    if len(data) > MAX_FRAME_BYTES:
        raise ProtocolError(
            f"a {message.get('t', '?')} frame of {len(data)} bytes is over the "
            f"{MAX_FRAME_BYTES} byte limit; return less data per call"
        )
    return _HEADER.pack(len(data)) + data


def decode(data: bytes, allowed: frozenset[str]) -> dict[str, Any]:
    """A frame's body as a message; `ProtocolError` naming what is wrong."""
    try:
        message = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"a frame is not JSON ({exc}): {data[:80]!r}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a frame is not a JSON object: {data[:80]!r}")
    kind = message.get("t")
    if kind not in allowed:
        raise ProtocolError(
            f"a frame has type {kind!r}; expected one of {', '.join(sorted(allowed))}"
        )
    return message


async def read_frame(
    reader: asyncio.StreamReader, allowed: frozenset[str]
) -> dict[str, Any] | None:
    """The next message, or None at a clean end of stream (between frames)."""
    try:
        header = await reader.readexactly(HEADER_BYTES)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise ProtocolError(f"the stream ended inside a frame header ({exc.partial!r})") from None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(
            f"a frame announces {size} bytes, over the {MAX_FRAME_BYTES} byte limit "
            f"(header {header!r}; something wrote raw bytes to the RPC channel?)"
        )
    try:
        data = await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError(
            f"the stream ended inside a frame ({len(exc.partial)} of {size} bytes)"
        ) from None
    return decode(data, allowed)
