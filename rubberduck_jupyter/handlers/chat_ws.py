"""WebSocket /rubberduck/ws: chat turns, cancels and resumes for the sidebar.

Turns run as tasks in the user's `ReplayHub` (sessions/replay.py), so a cancel can arrive
while an answer streams and a turn outlives a dropped socket: this socket is only where its
frames go now. A closed socket leaves its turns running for `resume_grace_seconds`; a
`resume {id, after}` on a new socket of the same user replays what was missed and attaches
it, and a turn nobody resumes in time is cancelled. Bad
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
    ApproveRequest,
    CancelRequest,
    ChatRequest,
    ErrorCode,
    ProtocolError,
    ResumeRequest,
    RunResultRequest,
    Usage,
    done_frame,
    error_frame,
    hello_frame,
    parse_client_frame,
)
from ..sessions.approvals import ApprovalRefused
from ..sessions.replay import Emit, ResumeRefused, Runner, TurnRunning

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


class RubberDuckSocket(
    ExtensionHandlerMixin, WebSocketMixin, websocket.WebSocketHandler, JupyterHandler
):
    """What every RubberDuck WebSocket shares: Jupyter authentication, the
    `auth_resource` authorized for "execute", and frames bounded by max_frame_bytes."""

    auth_resource = "rubberduck:chat"

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


class ChatWebSocketHandler(RubberDuckSocket):
    def initialize(self, name: str, *args: Any, **kwargs: Any) -> None:
        super().initialize(name, *args, **kwargs)
        self._closed = False
        self._counted = False

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
        # A plugin disabled, reloaded or failing to reload: the sidebar's command list and a
        # notice follow without a reconnect.
        self._stop_plugin_frames = app.plugins.listen(self._send)

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
        elif isinstance(frame, ResumeRequest):
            self._resume(frame)
        elif isinstance(frame, ChatRequest):
            self._start_turn(frame)
        elif isinstance(frame, ApproveRequest | RunResultRequest):
            self._approval_answer(frame)

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
        app = self.extensionapp
        user = app.user_for(self)
        if app.replay.running(user, request.id) is not None:
            self._send(
                error_frame(request.id, ErrorCode.DUPLICATE_ID, "A turn with this id is running.")
            )
            return
        limit = app.max_turns_per_connection
        if app.replay.attached_running(self) >= limit:
            self._send(
                error_frame(
                    request.id,
                    ErrorCode.BUSY,
                    f"{limit} answers are already streaming on this connection; "
                    "wait for one to finish or stop it.",
                )
            )
            return
        try:
            app.replay.start(user, request.id, _turn_runner(app, user, request), self, self._sink)
        except TurnRunning:
            self._send(
                error_frame(request.id, ErrorCode.DUPLICATE_ID, "A turn with this id is running.")
            )

    def _resume(self, request: ResumeRequest) -> None:
        app = self.extensionapp
        try:
            app.replay.resume(app.user_for(self), request.id, request.after, self, self._sink)
        except ResumeRefused:
            # The same answer for another user's id as for one that is gone: nothing leaks.
            self._send(
                error_frame(
                    request.id,
                    ErrorCode.RESUME_UNAVAILABLE,
                    "The server no longer has the rest of this answer (it ended or was "
                    f"stopped more than {app.resume_grace_seconds:g} s ago, was too long to "
                    "keep, or the server restarted). What was saved is in the conversation's "
                    "history; send the message again for a full answer.",
                )
            )
        except ValueError as exc:
            self._send(error_frame(request.id, ErrorCode.BAD_FRAME, str(exc)))

    def _approval_answer(self, frame: ApproveRequest | RunResultRequest) -> None:
        """The user's answer to an agent's approval, from any of their sockets; looked up
        under this socket's user only, so another user's approval is simply unknown."""
        approvals = self.extensionapp.sessions.approvals
        user = self.extensionapp.user_for(self)
        try:
            if isinstance(frame, ApproveRequest):
                approvals.answer(user, frame)
            else:
                approvals.result(user, frame)
        except ApprovalRefused as exc:
            code = ErrorCode.UNKNOWN_ID if exc.unknown else ErrorCode.BAD_FRAME
            self._send(error_frame(frame.id, code, exc.message))

    def _cancel(self, msg_id: str) -> None:
        app = self.extensionapp
        if not app.replay.cancel(app.user_for(self), msg_id):
            self._send(error_frame(msg_id, ErrorCode.UNKNOWN_ID, "No running answer has this id."))

    def _sink(self, text: str) -> bool:
        if self._closed:
            return False
        try:
            self.write_message(text)
        except websocket.WebSocketClosedError:
            self._closed = True
            return False
        return True

    def _send(self, frame: dict[str, Any]) -> None:
        self._sink(json.dumps(frame))

    def on_close(self) -> None:
        stop = getattr(self, "_stop_plugin_frames", None)
        if stop is not None:
            stop()
        if self._counted:
            self.extensionapp.open_sockets -= 1
            self._counted = False
        self._closed = True
        # Not cancelled: the turns run on for the grace period, for a resume to pick up.
        self.extensionapp.replay.detach(self)


def _turn_runner(app: Any, user: str, request: ChatRequest) -> Runner:
    """The turn's coroutine function. Module-level, holding no socket: the turn outlives
    the socket that asked for it."""

    async def run(emit: Emit) -> None:
        try:
            await app.sessions.run_turn(user, request, emit)
        except asyncio.CancelledError:
            # Its open approvals first: every tab clears the card before the turn ends.
            await app.sessions.approvals.close_turn(user, request.id)
            await emit(done_frame(request.id, Usage(), "cancelled"))
        except Exception:
            # The session layer answers its own failures; this is the net under it, so a
            # turn still ends in exactly one error frame.
            log.exception("RubberDuck: turn %r failed outside the session layer", request.id)
            await emit(
                error_frame(
                    request.id,
                    ErrorCode.INTERNAL,
                    "RubberDuck could not answer; the server log has details.",
                )
            )

    return run
