"""WebSocket /rubberduck/ws: chat turns and cancels for the sidebar.

Each socket runs its turns as tasks so a cancel can arrive while an answer streams. Bad
frames are answered with an error frame and the socket stays open.
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
        # Tornado drops the connection over this size; keep it well above our own limit so
        # a merely oversized frame gets a readable error and the socket survives.
        return max(4 * self.extensionapp.max_frame_bytes, 1 << 20)

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
        app = self.extensionapp
        try:
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
