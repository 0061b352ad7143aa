"""Talks to the RubberDuck server's streaming chat endpoint with nothing but the stdlib."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

CHAT_PATH = "rubberduck/api/chat"
KERNEL_TOKEN_HEADER = "X-RubberDuck-Kernel-Token"


class DuckError(Exception):
    """Something the user can fix: the message says what."""


@dataclass(frozen=True)
class ServerAddress:
    url: str
    kernel_token: str | None = field(default=None, repr=False)
    jupyter_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerAddress:
        environ = os.environ if env is None else env
        url = environ.get("RUBBERDUCK_SERVER_URL", "").strip()
        if not url:
            raise DuckError(
                "RubberDuck does not know which Jupyter server to ask. Kernels started by "
                "JupyterLab with RubberDuck installed know it automatically; elsewhere set "
                "RUBBERDUCK_SERVER_URL (e.g. http://127.0.0.1:8888/) and RUBBERDUCK_TOKEN."
            )
        return cls(
            url=url if url.endswith("/") else url + "/",
            kernel_token=environ.get("RUBBERDUCK_KERNEL_TOKEN") or None,
            jupyter_token=environ.get("RUBBERDUCK_TOKEN") or None,
        )

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.kernel_token:
            headers[KERNEL_TOKEN_HEADER] = self.kernel_token
        elif self.jupyter_token:
            headers["Authorization"] = f"token {self.jupyter_token}"
        return headers


class DuckClient:
    def __init__(self, address: ServerAddress, *, timeout: float = 300.0) -> None:
        self.address = address
        self.timeout = timeout

    def stream_chat(
        self,
        text: str,
        *,
        conversation_id: str,
        context: dict[str, object] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield the server's frames (chunk, then done or error) as they arrive."""
        body = {
            "type": "chat",
            "v": 1,
            "id": uuid.uuid4().hex,
            "conversation_id": conversation_id,
            "text": text,
            "context": context or {},
        }
        request = urllib.request.Request(
            self.address.url + CHAT_PATH,
            data=json.dumps(body).encode(),
            headers=self.address.headers(),
            method="POST",
        )
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise DuckError(_http_error_message(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise DuckError(
                f"Could not reach the RubberDuck server at {self.address.url}: {exc}. "
                "Is JupyterLab still running?"
            ) from None
        with response:
            for line in response:
                if line.strip():
                    yield json.loads(line)


def _http_error_message(exc: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(exc.read()).get("message", "")
    except (ValueError, AttributeError):
        detail = ""
    if exc.code in (401, 403):
        return (
            "The RubberDuck server refused this kernel's credentials (HTTP "
            f"{exc.code}). Restart the kernel from JupyterLab, or set RUBBERDUCK_TOKEN. {detail}"
        ).strip()
    if exc.code == 404:
        return (
            "This Jupyter server has no RubberDuck endpoint. Is the rubberduck_jupyter "
            "server extension enabled? (`jupyter server extension list`)"
        )
    return f"RubberDuck answered HTTP {exc.code}: {detail or exc.reason}"
