"""WebSocket /rubberduck/ws: chat turns and cancels for the sidebar.

Each socket runs its turns as tasks so a cancel can arrive while an answer streams. Bad
frames are answered with an error frame and the socket stays open: unparseable or invalid
frames get their precise code, a text frame that is not UTF-8 gets ``bad_json``, and a
handler bug gets ``internal`` (the traceback goes to the server log only).

Frame sizes: a frame up to ``max_frame_bytes`` (256 KiB by default) is read and parsed. A
bigger one, up to `MAX_WIRE_MESSAGE_BYTES`, is read off the socket in 64 KiB pieces and
thrown away unbuffered, then answered with ``frame_too_large``: the socket stays usable and
such a frame costs no more memory than a piece. Above that cap tornado closes the socket
with 1009 "message too big" without reading the payload, so nobody can make the server
read forever. Worst case per socket: one accepted frame (``max_frame_bytes`` in the read
buffer, its unmasked copy and its decoded str, ~3x) plus one 64 KiB piece.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import ensure_async
from tornado import web, websocket
from tornado.iostream import StreamClosedError

from ..protocol import (
    CancelRequest,
    ChatRequest,
    ErrorCode,
    ProtocolError,
    Usage,
    done_frame,
    error_frame,
    hello_frame,
    parse_client_frame,
)

log = logging.getLogger(__name__)

# Past this, tornado refuses a message with close code 1009 instead of reading it: reading
# and discarding a bigger one would only spend bandwidth and time. 16 MiB is 64x the
# default frame limit, so a client that pastes a big notebook still hears
# `frame_too_large` and keeps its socket.
MAX_WIRE_MESSAGE_BYTES = 16 * 1024 * 1024
_DISCARD_PIECE = 64 * 1024
# Reads of at most this many bytes are frame headers (<= 8) or control-frame payloads
# (<= 125, RFC 6455 5.5): those are never discarded.
_CONTROL_PAYLOAD_MAX = 125
_OPCODE_TEXT, _OPCODE_BINARY = 0x1, 0x2


class _BoundedProtocol(websocket.WebSocketProtocol13):
    """Tornado's RFC 6455 protocol, with two refusals answered instead of fatal.

    A payload that would take the message over `accept_bytes` is read and discarded in
    pieces, and the message is handed to ``handler.on_frame_too_large(size)``; a text
    frame that is not UTF-8 goes to ``handler.on_message`` as bytes (which the handler
    answers with ``bad_json``) instead of dropping the connection. This leans on tornado's
    `_read_bytes` / `_handle_message` hooks (read in tornado 6.6); the server tests of
    frame sizes (tests/security/test_bad_input.py) fail if a tornado upgrade moves them.
    """

    def __init__(self, handler: Any, params: Any, *, accept_bytes: int) -> None:
        super().__init__(handler, False, params)
        self._accept_bytes = accept_bytes
        self._dropped = 0  # payload bytes of the current message thrown away unread

    async def _read_bytes(self, n: int) -> bytes:
        buffered = len(self._fragmented_message_buffer or b"")
        if n <= _CONTROL_PAYLOAD_MAX or (not self._dropped and buffered + n <= self._accept_bytes):
            return await super()._read_bytes(n)
        if self._dropped + buffered + n > self.params.max_message_size:
            # Fragments each under tornado's cap that add up to more than it.
            self.close(1009, "message too big")
            raise StreamClosedError()
        remaining = n
        pieces = 0
        while remaining > 0:  # each read takes >= 1 byte or raises StreamClosedError
            piece = await self.stream.read_bytes(min(remaining, _DISCARD_PIECE), partial=True)
            remaining -= len(piece)
            pieces += 1
            if pieces % 16 == 0:
                await asyncio.sleep(0)  # buffered data completes reads inline: let others run
        self._wire_bytes_in += n
        self._dropped += n
        return b""

    def _handle_message(self, opcode: int, data: bytes) -> Any:
        if opcode not in (_OPCODE_TEXT, _OPCODE_BINARY) or self.client_terminated:
            return super()._handle_message(opcode, data)
        if self._dropped:
            size, self._dropped = self._dropped + len(data), 0
            return self._run_callback(self.handler.on_frame_too_large, size)
        if opcode == _OPCODE_TEXT and not self._frame_compressed:
            self._message_bytes_in += len(data)
            try:
                text: str | bytes = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data  # on_message refuses it as bad_json; the socket stays
            return self._run_callback(self.handler.on_message, text)
        return super()._handle_message(opcode, data)


class ChatWebSocketHandler(
    ExtensionHandlerMixin, WebSocketMixin, websocket.WebSocketHandler, JupyterHandler
):
    auth_resource = "rubberduck:chat"

    def initialize(self, name: str, *args: Any, **kwargs: Any) -> None:
        super().initialize(name, *args, **kwargs)
        self._turns: dict[str, asyncio.Task[None]] = {}
        self._closed = False
        self._counted = False

    @property
    def max_message_size(self) -> int:  # type: ignore[override]
        # Tornado closes with 1009 over this size; below it, _BoundedProtocol discards what
        # exceeds max_frame_bytes and the frame gets a readable frame_too_large.
        return max(MAX_WIRE_MESSAGE_BYTES, self.extensionapp.max_frame_bytes)

    def get_compression_options(self) -> None:
        # Off, as tornado's default: discarding a compressed payload unread would desync
        # the decompressor's shared window, and compression buys little on localhost.
        return None

    def get_websocket_protocol(self) -> websocket.WebSocketProtocol | None:
        protocol = super().get_websocket_protocol()
        if not isinstance(protocol, websocket.WebSocketProtocol13):
            return protocol
        return _BoundedProtocol(
            self, protocol.params, accept_bytes=self.extensionapp.max_frame_bytes
        )

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "execute", self.auth_resource)
        )
        if not allowed:
            raise web.HTTPError(403)
        await super().get(*args, **kwargs)  # type: ignore[misc]

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        app = self.extensionapp
        app.open_sockets += 1
        self._counted = True
        config = app.llm.config
        from ..engines.registry import engine_list

        self._send(
            hello_frame(
                default_model=config.default,
                models=config.allowed_names(),
                engines=engine_list(app.sessions.engines),
            )
        )

    async def on_message(self, message: str | bytes) -> None:
        # Whatever goes wrong here must not reach tornado, which would drop the socket.
        try:
            self._handle(message)
        except Exception:
            log.exception("RubberDuck: a WebSocket frame could not be handled")
            self._send(
                error_frame(
                    None,
                    ErrorCode.INTERNAL,
                    "RubberDuck could not handle this frame; the server log has details.",
                )
            )

    def _handle(self, message: str | bytes) -> None:
        app = self.extensionapp
        try:
            if isinstance(message, bytes):
                # Binary frames are read as UTF-8 JSON too; json.loads would also guess
                # UTF-16/32 from bytes, which the protocol does not speak.
                try:
                    message = message.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ProtocolError(
                        ErrorCode.BAD_JSON, f"The frame is not UTF-8 text ({exc.reason})"
                    ) from None
            frame = parse_client_frame(
                message, max_bytes=app.max_frame_bytes, max_text_chars=app.max_message_chars
            )
        except ProtocolError as exc:
            self._send(error_frame(exc.frame_id, exc.code, exc.message))
            return
        if isinstance(frame, CancelRequest):
            self._cancel(frame.id)
        elif isinstance(frame, ChatRequest):
            self._start_turn(frame)

    def on_frame_too_large(self, size: int) -> None:
        limit = self.extensionapp.max_frame_bytes
        self._send(
            error_frame(
                None,
                ErrorCode.FRAME_TOO_LARGE,
                f"Frame of {size} bytes exceeds the limit of {limit} bytes; send less "
                "context (a selection instead of the whole cell or notebook).",
            )
        )

    def _start_turn(self, request: ChatRequest) -> None:
        limit = self.extensionapp.max_turns_per_connection
        if request.id in self._turns:
            self._send(
                error_frame(request.id, ErrorCode.DUPLICATE_ID, "A turn with this id is running.")
            )
            return
        if len(self._turns) >= limit:
            self._send(
                error_frame(
                    request.id,
                    ErrorCode.BUSY,
                    f"{limit} answers are already streaming on this connection; "
                    "wait for one to finish or stop it.",
                )
            )
            return
        self._turns[request.id] = asyncio.create_task(self._run_turn(request))

    async def _run_turn(self, request: ChatRequest) -> None:
        app = self.extensionapp
        try:
            await app.sessions.run_turn(app.user_for(self), request, self._emit)
        except asyncio.CancelledError:
            if not self._closed:
                self._send(done_frame(request.id, Usage(), "cancelled"))
        except Exception:
            # The session layer answers its own failures; this is the net under it, so a
            # turn still ends in exactly one error frame.
            log.exception("RubberDuck: turn %r failed outside the session layer", request.id)
            self._send(
                error_frame(
                    request.id,
                    ErrorCode.INTERNAL,
                    "RubberDuck could not answer; the server log has details.",
                )
            )
        finally:
            self._turns.pop(request.id, None)

    def _cancel(self, msg_id: str) -> None:
        task = self._turns.get(msg_id)
        if task is None:
            self._send(error_frame(msg_id, ErrorCode.UNKNOWN_ID, "No running answer has this id."))
            return
        task.cancel()

    async def _emit(self, frame: dict[str, Any]) -> None:
        self._send(frame)

    def _send(self, frame: dict[str, Any]) -> None:
        if self._closed:
            return
        try:
            self.write_message(json.dumps(frame))
        except websocket.WebSocketClosedError:
            self._closed = True

    def on_close(self) -> None:
        if self._counted:
            self.extensionapp.open_sockets -= 1
            self._counted = False
        self._closed = True
        for task in self._turns.values():
            task.cancel()
