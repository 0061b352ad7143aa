"""Talks to the RubberDuck server's REST API with nothing but the standard library.

Every failure a user can do something about becomes a `DuckError` whose message is one line
saying what to do: the magics print it and never a traceback. The chat stream is read on a
thread of its own (`ChatStream`) so the kernel's main thread can update the cell's output on
a clock and stay interruptible while the server is silent.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

API = "rubberduck/api/"
CHAT_PATH = API + "chat"
KERNEL_TOKEN_HEADER = "X-RubberDuck-Kernel-Token"
# A plain request (models, search, history) that takes longer than this is a server in
# trouble; the chat stream has its own, longer timeout between bytes.
REQUEST_TIMEOUT_S = 30.0
CONNECT_HINT = "run `%duck connect http://HOST:PORT/ --token TOKEN` to point this kernel at one"


class DuckError(Exception):
    """Something the user can fix: the message says what, in one line."""


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
                "This kernel does not know a RubberDuck server (kernels started by JupyterLab "
                f"with RubberDuck know theirs); {CONNECT_HINT}."
            )
        return cls(
            url=normalise_url(url),
            kernel_token=environ.get("RUBBERDUCK_KERNEL_TOKEN") or None,
            jupyter_token=environ.get("RUBBERDUCK_TOKEN") or None,
        )

    @classmethod
    def given(cls, url: str, token: str | None) -> ServerAddress:
        return cls(url=normalise_url(url), jupyter_token=token or None)

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.kernel_token:
            headers[KERNEL_TOKEN_HEADER] = self.kernel_token
        elif self.jupyter_token:
            headers["Authorization"] = f"token {self.jupyter_token}"
        return headers


def normalise_url(url: str) -> str:
    url = url.strip()
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise DuckError(
            f"{url!r} is not a server address; give one like http://127.0.0.1:8888/ "
            "(with the base URL, e.g. http://hub.example/user/alice/, on a JupyterHub)."
        )
    return url if url.endswith("/") else url + "/"


class DuckClient:
    def __init__(self, address: ServerAddress, *, timeout: float = 300.0) -> None:
        self.address = address
        self.timeout = timeout

    # --- plain requests ------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        query = "?" + urllib.parse.urlencode(params, doseq=True) if params else ""
        return self._json("GET", API + path + query)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self._json("POST", API + path, body or {})

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.address.url + path, data=data, headers=self.address.headers(), method=method
        )
        with self._open(request, REQUEST_TIMEOUT_S) as response:
            raw = response.read()
        try:
            return json.loads(raw)
        except ValueError:
            raise DuckError(
                f"{self.address.url} answered {path} with something that is not JSON; is it "
                "a Jupyter server with RubberDuck?"
            ) from None

    def _open(self, request: urllib.request.Request, timeout: float) -> Any:
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise DuckError(http_error_message(exc, self.address.url)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DuckError(
                f"No RubberDuck server answers at {self.address.url} ({reason}). If JupyterLab "
                f"was restarted, restart this kernel; otherwise {CONNECT_HINT}."
            ) from None

    # --- the chat stream -----------------------------------------------------------------

    def open_chat(
        self,
        text: str,
        *,
        conversation_id: str,
        context: dict[str, object] | None = None,
        model: str | None = None,
        turn_id: str | None = None,
    ) -> ChatStream:
        """Starts a turn; the returned stream yields the server's frames as they arrive."""
        body: dict[str, Any] = {
            "type": "chat",
            "v": 1,
            "id": turn_id or uuid.uuid4().hex,
            "conversation_id": conversation_id,
            "text": text,
            "context": context or {},
        }
        if model:
            body["model"] = model
        request = urllib.request.Request(
            self.address.url + CHAT_PATH,
            data=json.dumps(body).encode(),
            headers=self.address.headers(),
            method="POST",
        )
        return ChatStream(body["id"], self._open(request, self.timeout))

    def stream_chat(
        self,
        text: str,
        *,
        conversation_id: str,
        context: dict[str, object] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The frames of one turn, read on the calling thread (for callers with no clock)."""
        stream = self.open_chat(text, conversation_id=conversation_id, context=context)
        with stream:
            yield from stream.lines()


class ChatStream:
    """One turn's NDJSON frames, read by a daemon thread into a bounded queue.

    `next(timeout)` returns a frame, None when nothing came within `timeout`, or raises
    StopIteration at the end. `close()` drops the connection, which makes the server stop
    the model call (as Ctrl-C and interrupting the kernel do).
    """

    _END = object()

    def __init__(self, turn_id: str, response: Any) -> None:
        self.turn_id = turn_id
        self._response = response
        # Bounded: a reader far ahead of a slow output stops reading, and TCP slows the
        # server, instead of frames piling up in the kernel.
        self._frames: queue.Queue[Any] = queue.Queue(maxsize=1024)
        self._reader: threading.Thread | None = None

    def lines(self) -> Iterator[dict[str, Any]]:
        for line in self._response:
            if line.strip():
                yield _frame(line)

    def start(self) -> None:
        self._reader = threading.Thread(target=self._read, name="rubberduck-chat", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for frame in self.lines():
                self._frames.put(frame)
        except Exception as exc:  # the connection dropped, or we closed it
            self._frames.put(exc)
        finally:
            self._frames.put(self._END)

    def next(self, timeout: float | None) -> dict[str, Any] | None:
        try:
            item = self._frames.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is self._END:
            raise StopIteration
        if isinstance(item, Exception):
            if isinstance(item, DuckError):
                raise item
            raise DuckError(
                f"The connection to the RubberDuck server broke mid-answer ({item}); what "
                "arrived is shown, and the answer is in the conversation's history."
            )
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        # Closing a socket another thread reads can raise; it is closed all the same.
        with contextlib.suppress(Exception):
            self._response.close()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _frame(line: bytes) -> dict[str, Any]:
    try:
        frame = json.loads(line)
    except ValueError:
        raise DuckError("The RubberDuck server sent a line that is not JSON.") from None
    if not isinstance(frame, dict):
        raise DuckError("The RubberDuck server sent a frame that is not a JSON object.")
    return frame


def http_error_message(exc: urllib.error.HTTPError, url: str) -> str:
    try:
        detail = str(json.loads(exc.read()).get("message", ""))
    except (ValueError, AttributeError, OSError):
        detail = ""
    if exc.code in (401, 403):
        return (
            f"The RubberDuck server at {url} refused this kernel's credentials (HTTP "
            f"{exc.code}): restart the kernel from JupyterLab, or run `%duck connect {url} "
            "--token TOKEN` with the server's token."
        )
    if exc.code == 404:
        if detail and detail != "Not found.":
            return detail
        return (
            f"The Jupyter server at {url} has no RubberDuck endpoint: enable the "
            "rubberduck_jupyter server extension there (`jupyter server extension list`)."
        )
    if exc.code == 429:
        retry = exc.headers.get("Retry-After") if exc.headers else None
        when = f"try again in {retry} s" if retry else "try again in a moment"
        return f"RubberDuck is rate-limited: {when}. {detail}".strip()
    return f"RubberDuck answered HTTP {exc.code}: {detail or exc.reason}"
