"""RubberDuckApp: the server extension's configuration, wiring, start and stop."""

from __future__ import annotations

import getpass
import os
import secrets
import time
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop
from traitlets import Bool, Float, Int, Unicode

from . import __version__
from .llm.client import LiteLLMClient
from .llm.settings import resolve_model_settings
from .protocol import PROTOCOL_VERSION
from .runtime.loop_lag import LoopLagMonitor
from .sessions.chat import ChatService

SERVER_URL_ENV = "RUBBERDUCK_SERVER_URL"
KERNEL_TOKEN_ENV = "RUBBERDUCK_KERNEL_TOKEN"


class RubberDuckApp(ExtensionApp):
    name = "rubberduck_jupyter"
    description = "RubberDuck: an AI coding assistant inside JupyterLab"
    load_other_extensions = True

    model = Unicode(
        "",
        config=True,
        help="litellm model name, e.g. 'openai/gpt-4o-mini' or 'ollama/llama3.1'. "
        "Empty: use $RUBBERDUCK_MODEL; if that is empty too, no model is configured.",
    )
    api_base = Unicode(
        "",
        config=True,
        help="Base URL of an OpenAI-compatible server or LiteLLM proxy. "
        "Empty: use $RUBBERDUCK_API_BASE, else the provider's default.",
    )
    api_key = Unicode(
        "",
        config=True,
        help="API key for the model. Prefer the provider's variable (OPENAI_API_KEY, ...) "
        "or $RUBBERDUCK_API_KEY. Never sent to the browser or logged.",
    )
    request_timeout = Float(120.0, config=True, help="Seconds a model call may take in all.")
    max_output_tokens = Int(0, config=True, help="Cap on tokens per answer; 0 means no cap.")
    max_frame_bytes = Int(256 * 1024, config=True, help="Largest client frame accepted, in bytes.")
    max_message_chars = Int(
        100_000, config=True, help="Largest chat message accepted, in characters."
    )
    max_turns_per_connection = Int(
        4, config=True, help="Answers that may stream at once on one WebSocket."
    )
    export_kernel_env = Bool(
        True,
        config=True,
        help=f"Give kernels started by this server ${SERVER_URL_ENV} and a scoped "
        f"${KERNEL_TOKEN_ENV}, so %%duck works with no setup. The token reaches only "
        "RubberDuck's chat and health endpoints.",
    )

    def initialize_settings(self) -> None:
        self.started_at = time.monotonic()
        model_settings = resolve_model_settings(
            model=self.model,
            api_base=self.api_base,
            api_key=self.api_key,
            request_timeout=self.request_timeout,
            max_output_tokens=self.max_output_tokens,
        )
        self.llm = LiteLLMClient(model_settings)
        self.chat_service = ChatService(self.llm)
        self.open_sockets = 0
        self.loop_lag = LoopLagMonitor()
        self.kernel_token = secrets.token_urlsafe(32)
        self.kernel_username = os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
        self._export_kernel_env()
        IOLoop.current().add_callback(self.loop_lag.start)
        if model_settings.configured:
            self.log.info("RubberDuck %s: model %s", __version__, model_settings.model)
        else:
            self.log.info("RubberDuck %s: no model configured (set RUBBERDUCK_MODEL)", __version__)

    def initialize_handlers(self) -> None:
        from .handlers.chat_rest import ChatStreamHandler
        from .handlers.chat_ws import ChatWebSocketHandler
        from .handlers.health import HealthHandler

        self.handlers.extend(
            [
                (r"/rubberduck/api/health", HealthHandler),
                (r"/rubberduck/api/chat", ChatStreamHandler),
                (r"/rubberduck/ws", ChatWebSocketHandler),
            ]
        )

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        # The port is only final once the HTTP server is bound (port retries), so refresh.
        self._export_kernel_env()
        await super()._start_jupyter_server_extension(serverapp)

    def _export_kernel_env(self) -> None:
        if not self.export_kernel_env or self.serverapp is None:
            return
        # Kernels inherit the server's environment (the session manager copies os.environ).
        os.environ[SERVER_URL_ENV] = self.serverapp.connection_url
        os.environ[KERNEL_TOKEN_ENV] = self.kernel_token

    def health(self) -> dict[str, Any]:
        settings = self.llm.settings
        return {
            "status": "ok",
            "version": __version__,
            "protocol_version": PROTOCOL_VERSION,
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "subsystems": {
                "llm": {
                    "state": self.llm.state,
                    "model": settings.model,
                    "api_base": settings.public_api_base(),
                },
                "sessions": {
                    "state": "ok",
                    "active_turns": self.chat_service.active_turns,
                    "open_sockets": self.open_sockets,
                    "conversations": len(self.chat_service.memory),
                },
                "event_loop": self.loop_lag.snapshot(),
            },
        }

    async def stop_extension(self) -> None:
        await self.loop_lag.stop()
        if os.environ.get(KERNEL_TOKEN_ENV) == self.kernel_token:
            os.environ.pop(KERNEL_TOKEN_ENV, None)
            os.environ.pop(SERVER_URL_ENV, None)
