"""The RubberDuck wire protocol: every frame the WebSocket and REST APIs exchange.

One module owns the shapes so the server, the magics and the TypeScript client
(``labextension/src/protocol.ts`` mirrors this file) agree on them. Bump
``PROTOCOL_VERSION`` on any incompatible change; additive fields do not bump it.

Client -> server frames (JSON objects with a ``type``):
  chat   {id, conversation_id, text, context, model?}
  cancel {id}
Server -> client frames:
  hello  {protocol_version, model: {configured, name}, models}   (first frame on a socket)
  chunk  {id, seq, text}
  done   {id, usage, finish_reason, model, cost_usd, cached, attempts}
  error  {id, code, message, retry_after?}          (id is null if the frame had none)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

PROTOCOL_VERSION = 1

MAX_ID_LENGTH = 128
MAX_CONTEXT_STRING = 200_000


class ErrorCode(StrEnum):
    """Machine-readable error codes; the ``message`` beside each says what to do."""

    BAD_JSON = "bad_json"
    BAD_FRAME = "bad_frame"
    FRAME_TOO_LARGE = "frame_too_large"
    UNKNOWN_TYPE = "unknown_type"
    UNSUPPORTED_VERSION = "unsupported_version"
    DUPLICATE_ID = "duplicate_id"
    UNKNOWN_ID = "unknown_id"
    BUSY = "busy"
    NO_MODEL = "no_model"
    MODEL_NOT_ALLOWED = "model_not_allowed"
    PROVIDER_ERROR = "provider_error"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_AUTH = "provider_auth"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    INCOMPLETE = "incomplete"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """A client frame that cannot be accepted; becomes an ``error`` frame."""

    def __init__(self, code: ErrorCode, message: str, frame_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.frame_id = frame_id


# --- client frames -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatContext:
    """What the client knows about where the question was asked."""

    notebook_path: str | None = None
    active_cell: str | None = None
    selection: str | None = None
    error: str | None = None
    kernel_id: str | None = None

    @classmethod
    def from_json(cls, raw: Any, frame_id: str) -> ChatContext:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ProtocolError(ErrorCode.BAD_FRAME, "'context' must be an object", frame_id)
        values: dict[str, str | None] = {}
        for name in ("notebook_path", "active_cell", "selection", "error", "kernel_id"):
            value = raw.get(name)
            if value is not None and not isinstance(value, str):
                raise ProtocolError(
                    ErrorCode.BAD_FRAME, f"'context.{name}' must be a string", frame_id
                )
            if value is not None and len(value) > MAX_CONTEXT_STRING:
                raise ProtocolError(
                    ErrorCode.FRAME_TOO_LARGE,
                    f"'context.{name}' is longer than {MAX_CONTEXT_STRING} characters",
                    frame_id,
                )
            values[name] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    id: str
    conversation_id: str
    text: str
    context: ChatContext = field(default_factory=ChatContext)
    model: str | None = None


@dataclass(frozen=True, slots=True)
class CancelRequest:
    id: str


ClientFrame = ChatRequest | CancelRequest


def _require_str(obj: dict[str, Any], name: str, frame_id: str | None, *, max_len: int) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise ProtocolError(ErrorCode.BAD_FRAME, f"'{name}' must be a non-empty string", frame_id)
    if len(value) > max_len:
        raise ProtocolError(
            ErrorCode.BAD_FRAME, f"'{name}' is longer than {max_len} characters", frame_id
        )
    return value


def parse_client_frame(raw: str | bytes, *, max_bytes: int, max_text_chars: int) -> ClientFrame:
    """Validate one client frame; raise ProtocolError with a precise reason otherwise."""
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise ProtocolError(
            ErrorCode.FRAME_TOO_LARGE,
            f"Frame of {size} bytes exceeds the limit of {max_bytes} bytes",
        )
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, f"Frame is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_FRAME, "Frame must be a JSON object")
    raw_id = obj.get("id")
    frame_id = raw_id if isinstance(raw_id, str) and 0 < len(raw_id) <= MAX_ID_LENGTH else None

    version = obj.get("v", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"Protocol version {version!r} is not supported; this server speaks "
            f"version {PROTOCOL_VERSION}. Reload the page to update the client.",
            frame_id,
        )
    kind = obj.get("type")
    if kind == "chat":
        msg_id = _require_str(obj, "id", frame_id, max_len=MAX_ID_LENGTH)
        conversation_id = _require_str(obj, "conversation_id", msg_id, max_len=MAX_ID_LENGTH)
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ProtocolError(ErrorCode.BAD_FRAME, "'text' must be a non-empty string", msg_id)
        if len(text) > max_text_chars:
            raise ProtocolError(
                ErrorCode.FRAME_TOO_LARGE,
                f"Message of {len(text)} characters exceeds the limit of {max_text_chars}",
                msg_id,
            )
        context = ChatContext.from_json(obj.get("context"), msg_id)
        model = obj.get("model")
        if model is not None and (not isinstance(model, str) or len(model) > MAX_ID_LENGTH):
            raise ProtocolError(ErrorCode.BAD_FRAME, "'model' must be a model name", msg_id)
        return ChatRequest(
            id=msg_id,
            conversation_id=conversation_id,
            text=text,
            context=context,
            model=model or None,
        )
    if kind == "cancel":
        return CancelRequest(id=_require_str(obj, "id", frame_id, max_len=MAX_ID_LENGTH))
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_FRAME, "Frame has no 'type' string", frame_id)
    raise ProtocolError(
        ErrorCode.UNKNOWN_TYPE,
        f"Unknown frame type {kind!r}; expected 'chat' or 'cancel'",
        frame_id,
    )


# --- server frames -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


def hello_frame(*, default_model: str | None, models: list[str]) -> dict[str, Any]:
    return {
        "type": "hello",
        "protocol_version": PROTOCOL_VERSION,
        "model": {"configured": default_model is not None, "name": default_model},
        "models": models,
    }


def chunk_frame(msg_id: str, seq: int, text: str) -> dict[str, Any]:
    return {"type": "chunk", "id": msg_id, "seq": seq, "text": text}


def done_frame(
    msg_id: str,
    usage: Usage,
    finish_reason: str,
    *,
    model: str | None = None,
    cost_usd: float | None = None,
    cached: bool = False,
    attempts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "type": "done",
        "id": msg_id,
        "usage": asdict(usage),
        "finish_reason": finish_reason,
        "model": model,
        "cost_usd": cost_usd,
        "cached": cached,
        "attempts": attempts or [],
    }


def error_frame(
    msg_id: str | None, code: ErrorCode, message: str, *, retry_after: float | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "id": msg_id, "code": str(code), "message": message}
    if retry_after is not None:
        frame["retry_after"] = round(retry_after, 2)
    return frame
