"""Server-sent events, incrementally, and the Retry-After header: what the direct
OpenAI-compatible stream (openai_stream.py) needs from HTTP, and nothing more.

The parser works on bytes as they arrive: a read may hold half a line or a dozen events,
and a line may end in LF, CRLF or a lone CR (the three endings the SSE format allows; a
CRLF may be split across two reads). `data:` lines of one event are joined with "\n";
comment lines (`: keep-alive`) and the `id`/`retry` fields are ignored; an event is
dispatched at a blank line. Data stays bytes: `json.loads` takes UTF-8 bytes directly, and
a decode of every chunk would be work on the event loop for nothing.

Bounded: a line, or the data of one event, longer than `MAX_EVENT_BYTES` is an error
(`SSEError`), not a buffer that grows with whatever a broken server sends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# One chat-completion chunk is a few hundred bytes; 1 MiB is far above any real one and
# still a bound on what a server that never sends a newline can make us hold.
MAX_EVENT_BYTES = 1 << 20

_COLON = 58  # ord(":")


class SSEError(ValueError):
    """The byte stream is not server-sent events (or exceeds the size bound)."""


class SSEParser:
    """Feed it bytes; get back the complete events so far, as (event name, data) pairs.

    The event name is b"" when the server sent no `event:` field (OpenAI never does).
    """

    __slots__ = ("_data", "_data_size", "_event", "_partial", "_skip_lf")

    def __init__(self) -> None:
        self._partial = b""  # an unterminated line, waiting for its end
        self._skip_lf = False  # the last read ended in CR: an LF starting the next is its pair
        self._data: list[bytes] = []
        self._data_size = 0
        self._event = b""

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buffer = self._partial + chunk if self._partial else chunk
        self._partial = b""
        if not buffer:
            return []
        # bytes.splitlines splits on exactly LF, CRLF and CR: the SSE line endings.
        lines = buffer.splitlines(keepends=True)
        last = lines[-1]
        if last[-1:] not in (b"\n", b"\r"):
            if len(last) > MAX_EVENT_BYTES:
                raise SSEError(f"an event line longer than {MAX_EVENT_BYTES} bytes")
            self._partial = last
            lines.pop()
        elif last[-1:] == b"\r":
            self._skip_lf = True
        events: list[tuple[bytes, bytes]] = []
        for raw in lines:
            line = raw.rstrip(b"\r\n")
            if not line:
                if self._data:
                    events.append((self._event, b"\n".join(self._data)))
                self._data = []
                self._data_size = 0
                self._event = b""
            elif line[0] != _COLON:  # a line starting with ":" is a comment
                self._field(line)
        return events

    def _field(self, line: bytes) -> None:
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data_size += len(value) + 1
            if self._data_size > MAX_EVENT_BYTES:
                raise SSEError(f"an event's data is longer than {MAX_EVENT_BYTES} bytes")
            self._data.append(value)
        elif name == b"event":
            self._event = value
        # `id`, `retry` and unknown fields mean nothing to a chat completion: ignored, as
        # the format says.


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait, from `retry-after-ms` (OpenAI's precise form) or `Retry-After`
    (delta-seconds or an HTTP date); None when absent or unreadable. Never negative: a
    date in the past means "now"."""
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT; a zone-less one is read as such
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return max(0.0, number)
