"""POST /rubberduck/api/chat: one chat turn streamed back as newline-delimited JSON frames;
POST /rubberduck/api/chat/cancel {"id"}: stop one of the user's running turns.

This is the door for clients that cannot hold a WebSocket easily, such as the %%duck magic
running inside a kernel. The response body carries the same frames as the socket. A turn
stopped through /cancel ends like a stopped sidebar turn, with `done` and finish_reason
"cancelled", so the magic shows what arrived and says it was stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..protocol import (
    MAX_ID_LENGTH,
    ChatRequest,
    ErrorCode,
    ProtocolError,
    Usage,
    done_frame,
    error_frame,
    parse_client_frame,
)
from .base import RubberDuckAPIHandler, RubberDuckError


class ChatStreamHandler(RubberDuckAPIHandler):
    auth_resource = "rubberduck:chat"
    _turn: asyncio.Task[None] | None = None

    @web.authenticated
    @authorized
    async def post(self) -> None:
        app = self.rubberduck
        try:
            frame = parse_client_frame(
                self.request.body,
                max_bytes=app.max_frame_bytes,
                max_text_chars=app.max_message_chars,
            )
            if not isinstance(frame, ChatRequest):
                raise ProtocolError(
                    ErrorCode.BAD_FRAME,
                    "This endpoint takes a 'chat' frame; cancel by closing the request.",
                )
        except ProtocolError as exc:
            self.set_status(400)
            self.finish(error_frame(exc.frame_id, exc.code, exc.message))
            return
        self.set_header("Content-Type", "application/x-ndjson; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        user = app.user_for(self)
        self._turn = asyncio.create_task(app.sessions.run_turn(user, frame, self._emit))
        with app.running_turns.running(user, frame.id, self._turn):
            try:
                await self._turn
            except asyncio.CancelledError:
                if not app.running_turns.stopped_by_user(user, frame.id):
                    return  # the client went away: nobody to tell
                with contextlib.suppress(StreamClosedError):
                    await self._emit(done_frame(frame.id, Usage(), "cancelled"))
        if not self._finished:
            self.finish()

    async def _emit(self, frame: dict[str, Any]) -> None:
        self.write(json.dumps(frame) + "\n")
        # A client that went away is noticed by on_connection_close, which cancels the turn.
        with contextlib.suppress(StreamClosedError):
            await self.flush()

    def on_connection_close(self) -> None:
        # A client that goes away (Ctrl-C in a kernel, interrupt) stops the model call.
        if self._turn is not None and not self._turn.done():
            self._turn.cancel()


class ChatCancelHandler(RubberDuckAPIHandler):
    """Stops the user's running turn `id`, streamed here or on the sidebar's socket."""

    auth_resource = "rubberduck:chat"

    @web.authenticated
    @authorized
    async def post(self) -> None:
        turn_id = self.json_body().get("id")
        if not isinstance(turn_id, str) or not 0 < len(turn_id) <= MAX_ID_LENGTH:
            raise RubberDuckError(
                400, ErrorCode.BAD_FRAME, "Give the running answer's 'id' (a string)."
            )
        app = self.rubberduck
        user = app.user_for(self)
        cancelled = app.running_turns.cancel(user, turn_id) or app.replay.cancel(user, turn_id)
        self.finish({"cancelled": cancelled})
