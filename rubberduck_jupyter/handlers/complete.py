"""Inline completions: GET /rubberduck/api/complete/status and the socket
/rubberduck/api/complete/ws (docs/completion.md has the contract).

The socket takes the chat socket's rules (handlers/chat_ws.py): Jupyter authentication
plus `rubberduck:chat` (completions are model calls on the user's behalf, as chat is), the
origin check of Jupyter's WebSocket handler, and the same frame-size handling
(`_BoundedProtocol`: a frame over `max_frame_bytes` is discarded unbuffered and answered).

One request runs per socket: a new `complete` cancels the one still running (the user
typed again), which bounds a socket to one upstream stream; a `cancel` stops it at once.
Each request ends in exactly one of completion.done, completion.error and
completion.cancelled. A cancel for an id that is not running (it has just finished) gets
no answer: its done frame is already on its way and the client drops it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web, websocket

from ..llm.errors import LLMError
from ..protocol import (
    CancelRequest,
    CompletionRequest,
    ErrorCode,
    ProtocolError,
    completion_cancelled_frame,
    completion_chunk_frame,
    completion_done_frame,
    completion_error_frame,
    completion_hello_frame,
    parse_completion_frame,
)
from .base import RubberDuckAPIHandler
from .chat_ws import RubberDuckSocket

log = logging.getLogger(__name__)


class CompletionStatusHandler(RubberDuckAPIHandler):
    auth_resource = "rubberduck:chat"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(self.rubberduck.completions.status())


class CompletionWebSocketHandler(RubberDuckSocket):
    def initialize(self, name: str, *args: Any, **kwargs: Any) -> None:
        super().initialize(name, *args, **kwargs)
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._task_id: str | None = None

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        self._send(completion_hello_frame(self.extensionapp.completions.status()))

    def on_message(self, message: str | bytes) -> None:
        try:
            if isinstance(message, bytes):
                try:
                    message = message.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ProtocolError(
                        ErrorCode.BAD_JSON, f"The frame is not UTF-8 text ({exc.reason})"
                    ) from None
            frame = parse_completion_frame(message, max_bytes=self.extensionapp.max_frame_bytes)
        except ProtocolError as exc:
            self._send(completion_error_frame(exc.frame_id, exc.code, exc.message))
            return
        if isinstance(frame, CancelRequest):
            if self._task_id == frame.id:
                self._stop_running()
        elif isinstance(frame, CompletionRequest):
            self._stop_running()
            self._task_id = frame.id
            self._task = task = asyncio.ensure_future(self._run(frame))
            # A cancel in the same read as its `complete` cancels the task before its first
            # step, where `_run`'s handler cannot see it: its one end frame is sent here.
            task.add_done_callback(
                lambda t, msg_id=frame.id: (
                    t.cancelled() and self._send(completion_cancelled_frame(msg_id))
                )
            )

    def on_frame_too_large(self, size: int) -> None:
        limit = self.extensionapp.max_frame_bytes
        self._send(
            completion_error_frame(
                None,
                ErrorCode.FRAME_TOO_LARGE,
                f"Frame of {size} bytes exceeds the limit of {limit} bytes; send fewer or "
                "shorter earlier cells.",
            )
        )

    def _stop_running(self) -> None:
        task, self._task, self._task_id = self._task, None, None
        if task is not None and not task.done():
            task.cancel()  # its own handler sends completion.cancelled

    async def _run(self, request: CompletionRequest) -> None:
        app = self.extensionapp
        msg_id = request.id
        try:
            result = await app.completions.complete(
                app.user_for(self),
                request,
                lambda text: self._send(completion_chunk_frame(msg_id, text)),
            )
        except asyncio.CancelledError:
            self._send(completion_cancelled_frame(msg_id))
            return
        except LLMError as exc:
            self._send(
                completion_error_frame(msg_id, exc.code, exc.message, retry_after=exc.retry_after)
            )
            return
        except Exception:
            log.exception("RubberDuck: completion %r failed", msg_id)
            self._send(
                completion_error_frame(
                    msg_id,
                    ErrorCode.INTERNAL,
                    "RubberDuck could not complete this; the server log has details.",
                )
            )
            return
        finally:
            if self._task is asyncio.current_task():
                self._task, self._task_id = None, None
        self._send(completion_done_frame(msg_id, result.text, cached=result.cached))

    def _send(self, frame: dict[str, Any]) -> None:
        if self._closed:
            return
        try:
            self.write_message(json.dumps(frame))
        except websocket.WebSocketClosedError:
            self._closed = True

    def on_close(self) -> None:
        self._closed = True
        # Nobody is left to show it: stop the provider now.
        self._stop_running()
