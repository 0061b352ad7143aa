"""The RubberDuck wire protocol: every frame the WebSocket and REST APIs exchange.

One module owns the shapes so the server, the magics and the TypeScript client
(``labextension/src/protocol.ts`` mirrors this file) agree on them. Bump
``PROTOCOL_VERSION`` on any incompatible change; additive fields do not bump it.

Client -> server frames (JSON objects with a ``type``):
  chat   {id, conversation_id, text, context, model?, engine?}
         context.mentions: what the user attached with `@` (see Mention); additive, v1
  cancel {id}
  resume {id, after}   (after a dropped socket: the turn's frames with n > after, then live)
  approve    {id, approval_id, decision}   (the user's answer to an `approval`; additive, v1)
  run_result {id, approval_id, status, execution_count, outputs, error}   (after running)
  chat's context.agent: {can_run, auto_apply}: what the sidebar does for the agent (v1)
Server -> client frames:
  hello      {protocol_version, model: {configured, name}, models, engines}   (first frame)
  route      {id, engine, reason, forced, confidence}     (which engine answers, and why)
  step       {id, step, title, status}                    (a reasoning step starts/finishes)
  chunk      {id, seq, text, step?}     (text of the answer, or of reasoning step `step`)
  citations  {id, citations: [{n, path, kind, cell?, start_line?, end_line?, title, score}]}
  correction {id, round, findings, fixed}                 (a self-correction round)
  suggestion {id, suggestion: {...}}                      (a change the user may apply)
  task       {id, task: {goal, steps, current}}           (multi-step task state)
  notice     {id, code, message}                          (e.g. answering without a model)
  done       {id, usage, finish_reason, model, cost_usd, cached, attempts, engine,
              conversation_id, message_id}
  error      {id, code, message, retry_after?}          (id is null if the frame had none)
  approval   {id, approval_id, kind, title, path, cell_index, cell_id, source,
              suggestion_ids, auto?, tool?}   (the agent asks to run a cell, or, kind
              "tool", to call an MCP tool {server, name, permission}; additive, v1)
  approval.closed {id, approval_id, reason}   (answered, timeout, cancelled: clear the card)
  step's optional `tool` {name, arguments, cell_index, path, answer_at} on "started"
  plugins    {engines, changed?: {name, state, reason, version}}   (a plugin's state changed
             at run time: disabled, reloaded, a reload failed; additive, v1; outside turns)
On the WebSocket, every frame of a turn (route ... done/error) also carries ``n``: 1, 2, ...
per turn, the position a ``resume`` continues after (sessions/replay.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

PROTOCOL_VERSION = 1

MAX_ID_LENGTH = 128
MAX_CONTEXT_STRING = 200_000
# A notebook cell's position: far above any real notebook (the largest seen have ~10^4
# cells), far below SQLite's 64-bit INTEGER, which a bigger Python int would overflow.
MAX_CELL_INDEX = 1_000_000
# Ids travel into log lines, SQLite and the sidebar's DOM: no control characters (C0, DEL,
# C1), so an id cannot forge a log line or hide behind a terminal escape.
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f]")


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
    NOT_FOUND = "not_found"
    UNKNOWN_ENGINE = "unknown_engine"
    INTERNAL = "internal"
    # REST-only codes: every RubberDuck REST error body is {"code", "message"}.
    BAD_REQUEST = "bad_request"
    BAD_PATH = "bad_path"
    BAD_QUERY = "bad_query"
    FORBIDDEN = "forbidden"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    EMBEDDER_UNAVAILABLE = "embedder_unavailable"
    # A resume for a turn (or frames of it) the server no longer keeps.
    RESUME_UNAVAILABLE = "resume_unavailable"


class NoticeCode(StrEnum):
    """Codes of `notice` frames: information beside an answer, never its end."""

    NO_MODEL = "no_model"
    NO_INDEX = "no_index"
    INDEX_UNAVAILABLE = "index_unavailable"
    KEYWORD_SEARCH_ONLY = "keyword_search_only"
    FILE_REFUSED = "file_refused"
    SUGGESTION_UNPARSABLE = "suggestion_unparsable"
    SUGGESTION_WITHHELD = "suggestion_withheld"
    AGENT_NO_TOOLS = "agent_no_tools"  # the model cannot call tools: another engine answers
    AGENT_LIMIT = "agent_limit"  # the agent stopped at its step, token or time bound
    MCP_UNAVAILABLE = "mcp_unavailable"  # an MCP server failed or timed out: its tools are missing


class ProtocolError(Exception):
    """A client frame that cannot be accepted; becomes an ``error`` frame."""

    def __init__(self, code: ErrorCode, message: str, frame_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.frame_id = frame_id


# --- client frames -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KernelVariable:
    """One variable of the user's kernel, as the client or the server's inspector saw it."""

    name: str
    type: str
    summary: str = ""  # shape, columns, a short repr: whatever fits in a line or two


MAX_VARIABLES = 200
CELL_TYPES = ("code", "markdown", "raw")  # nbformat's
_CONTEXT_STRINGS = ("notebook_path", "active_cell", "selection", "error", "kernel_id", "cell_id")


@dataclass(frozen=True, slots=True)
class AgentAbilities:
    """What the sidebar does for the agent (context.agent): `can_run`, it runs cells of
    the open notebook and answers `approval` frames (without it the agent offers no run
    tools); `auto_apply`, the user switched on "auto-apply edits"."""

    can_run: bool = False
    auto_apply: bool = False

    @classmethod
    def from_json(cls, raw: Any, frame_id: str) -> AgentAbilities:
        if raw is None:
            return cls()
        if not isinstance(raw, dict) or not all(
            isinstance(raw.get(k, False), bool) for k in ("can_run", "auto_apply")
        ):
            raise ProtocolError(
                ErrorCode.BAD_FRAME,
                "'context.agent' must be an object with boolean 'can_run' and 'auto_apply'",
                frame_id,
            )
        return cls(bool(raw.get("can_run", False)), bool(raw.get("auto_apply", False)))


@dataclass(frozen=True, slots=True)
class ChatContext:
    """What the client knows about where the question was asked."""

    notebook_path: str | None = None
    active_cell: str | None = None
    selection: str | None = None
    error: str | None = None
    kernel_id: str | None = None
    cell_index: int | None = None  # the active cell's position in the notebook, 0-based
    cell_id: str | None = None  # its nbformat id, when the notebook has ids
    cell_type: str | None = None  # "code", "markdown" or "raw" (added to version 1)
    variables: tuple[KernelVariable, ...] = ()
    mentions: tuple[Mention, ...] = ()  # what `@` attached, in the order of the text
    agent: AgentAbilities = field(default_factory=AgentAbilities)

    @classmethod
    def from_json(cls, raw: Any, frame_id: str) -> ChatContext:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ProtocolError(ErrorCode.BAD_FRAME, "'context' must be an object", frame_id)
        values: dict[str, Any] = {}
        for name in _CONTEXT_STRINGS:
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
        cell_index = raw.get("cell_index")
        if cell_index is not None and (
            not isinstance(cell_index, int)
            or isinstance(cell_index, bool)
            or not 0 <= cell_index <= MAX_CELL_INDEX
        ):
            raise ProtocolError(
                ErrorCode.BAD_FRAME,
                f"'context.cell_index' must be an integer from 0 to {MAX_CELL_INDEX}",
                frame_id,
            )
        values["cell_index"] = cell_index
        cell_type = raw.get("cell_type")
        if cell_type is not None and cell_type not in CELL_TYPES:
            raise ProtocolError(
                ErrorCode.BAD_FRAME,
                "'context.cell_type' must be one of " + ", ".join(CELL_TYPES),
                frame_id,
            )
        values["cell_type"] = cell_type
        values["variables"] = _parse_variables(raw.get("variables"), frame_id)
        values["mentions"] = _parse_mentions(raw.get("mentions"), frame_id)
        values["agent"] = AgentAbilities.from_json(raw.get("agent"), frame_id)
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in _CONTEXT_STRINGS}
        out["cell_index"] = self.cell_index
        out["cell_type"] = self.cell_type
        out["variables"] = [asdict(v) for v in self.variables]
        out["mentions"] = [m.to_json() for m in self.mentions]
        if self.agent != AgentAbilities():
            out["agent"] = {"can_run": self.agent.can_run, "auto_apply": self.agent.auto_apply}
        return {k: v for k, v in out.items() if v not in (None, [])}


def _parse_variables(raw: Any, frame_id: str) -> tuple[KernelVariable, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_VARIABLES:
        raise ProtocolError(
            ErrorCode.BAD_FRAME,
            f"'context.variables' must be a list of at most {MAX_VARIABLES} objects",
            frame_id,
        )
    out = []
    for item in raw:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k, ""), str) and len(item.get(k, "")) <= 2000
            for k in ("name", "type", "summary")
        ):
            raise ProtocolError(
                ErrorCode.BAD_FRAME,
                "each of 'context.variables' needs string 'name', 'type', 'summary' "
                "(at most 2000 characters each)",
                frame_id,
            )
        if item.get("name"):
            out.append(
                KernelVariable(
                    name=item["name"], type=item.get("type", ""), summary=item.get("summary", "")
                )
            )
    return tuple(out)


# --- mentions: `@df`, `@df:values`, `@src/etl.py`, `@cell:4` ----------------------------

MENTION_KINDS = ("variable", "file", "cell")
# A message names a handful of things; twenty is far above use and bounds the prompt.
MAX_MENTIONS = 20
MAX_MENTION_NAME = 2_000  # names, types, paths: a line, like KernelVariable's fields
MAX_MENTION_COLUMNS = 200  # columns/dtypes listed per data frame (wider ones say "…")
MAX_MENTION_VALUES = 8_000  # a variable's values, only when asked for with `:values`
MAX_MENTION_SOURCE = 20_000  # a cell's source, the same cap the client gives the active cell
MAX_MENTION_DIMS = 32  # numpy's own limit on array dimensions is 64


@dataclass(frozen=True, slots=True)
class Mention:
    """One thing the user attached with `@`.

    variable: the kernel's description of it (name, type, shape, columns, dtypes; values
      only when the user asked with `@name:values`); file: a path relative to the server's
      root, which the server resolves (mentions.py); cell: a cell of the active notebook,
      numbered from 1 as the sidebar shows it, with its source as the editor holds it.
    """

    kind: str
    name: str = ""
    type: str = ""
    summary: str = ""
    shape: tuple[int, ...] = ()
    columns: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    values: str | None = None
    path: str = ""
    cell: int | None = None
    cell_type: str = ""
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for key in ("name", "type", "summary", "path", "cell_type"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        for key in ("shape", "columns", "dtypes"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        for key in ("values", "cell", "source"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def _mention_error(index: int, detail: str, frame_id: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_FRAME, f"'context.mentions[{index}]' {detail}", frame_id)


def _mention_string(item: dict[str, Any], key: str, limit: int, i: int, frame_id: str) -> str:
    value = item.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _mention_error(i, f"'{key}' must be a string", frame_id)
    if len(value) > limit:
        raise _mention_error(i, f"'{key}' is longer than {limit} characters", frame_id)
    return value


def _mention_strings(item: dict[str, Any], key: str, i: int, frame_id: str) -> tuple[str, ...]:
    value = item.get(key)
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or len(value) > MAX_MENTION_COLUMNS
        or not all(isinstance(v, str) and len(v) <= MAX_MENTION_NAME for v in value)
    ):
        raise _mention_error(
            i,
            f"'{key}' must be a list of at most {MAX_MENTION_COLUMNS} strings "
            f"of at most {MAX_MENTION_NAME} characters",
            frame_id,
        )
    return tuple(value)


def _parse_mention(item: Any, i: int, frame_id: str) -> Mention:
    if not isinstance(item, dict):
        raise _mention_error(i, "must be an object", frame_id)
    kind = item.get("kind")
    if kind not in MENTION_KINDS:
        raise _mention_error(i, f"needs 'kind', one of {', '.join(MENTION_KINDS)}", frame_id)
    text = {
        key: _mention_string(item, key, MAX_MENTION_NAME, i, frame_id)
        for key in ("name", "type", "summary", "path", "cell_type")
    }
    shape = item.get("shape")
    if shape is not None and (
        not isinstance(shape, list)
        or len(shape) > MAX_MENTION_DIMS
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise _mention_error(
            i,
            f"'shape' must be a list of at most {MAX_MENTION_DIMS} sizes (integers >= 0)",
            frame_id,
        )
    values = item.get("values")
    if values is not None:
        values = _mention_string(item, "values", MAX_MENTION_VALUES, i, frame_id)
    source = item.get("source")
    if source is not None:
        source = _mention_string(item, "source", MAX_MENTION_SOURCE, i, frame_id)
    cell = item.get("cell")
    if cell is not None and (
        not isinstance(cell, int) or isinstance(cell, bool) or not 1 <= cell <= MAX_CELL_INDEX
    ):
        raise _mention_error(
            i, f"'cell' must be a cell number from 1 to {MAX_CELL_INDEX}", frame_id
        )
    if kind == "variable" and not text["name"]:
        raise _mention_error(i, "of kind 'variable' needs its 'name'", frame_id)
    if kind == "file" and not text["path"]:
        raise _mention_error(i, "of kind 'file' needs its 'path'", frame_id)
    if kind == "cell" and (cell is None or source is None):
        raise _mention_error(i, "of kind 'cell' needs its 'cell' number and 'source'", frame_id)
    return Mention(
        kind=kind,
        shape=tuple(shape or ()),
        columns=_mention_strings(item, "columns", i, frame_id),
        dtypes=_mention_strings(item, "dtypes", i, frame_id),
        values=values,
        cell=cell,
        source=source,
        **text,
    )


def _parse_mentions(raw: Any, frame_id: str) -> tuple[Mention, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_MENTIONS:
        raise ProtocolError(
            ErrorCode.BAD_FRAME,
            f"'context.mentions' must be a list of at most {MAX_MENTIONS} objects",
            frame_id,
        )
    return tuple(_parse_mention(item, i, frame_id) for i, item in enumerate(raw))


@dataclass(frozen=True, slots=True)
class ChatRequest:
    id: str
    conversation_id: str
    text: str
    context: ChatContext = field(default_factory=ChatContext)
    model: str | None = None
    engine: str | None = None  # force an engine by name; slash commands in `text` also do


@dataclass(frozen=True, slots=True)
class CancelRequest:
    id: str


@dataclass(frozen=True, slots=True)
class ResumeRequest:
    """Continue turn `id` on this socket after frame number `after` (0: from its start)."""

    id: str
    after: int


# Far above any turn's frame count (a 100k-token answer is ~10^5 frames), far below a
# 64-bit integer: a bigger `after` is a client bug, refused before it reaches a comparison.
MAX_RESUME_AFTER = 1_000_000_000

# --- the agent's approvals (client -> server) ---------------------------------------

APPROVAL_DECISIONS = ("allow", "allow_turn", "allow_conversation", "deny")
RUN_STATUSES = ("ok", "error", "aborted")
OUTPUT_TYPES = ("stream", "execute_result", "display_data")
# The client trims each output's text to 4,000 characters and keeps 20 outputs; a frame
# past these is a client bug, refused so it is fixed rather than silently cut.
MAX_RUN_OUTPUTS = 20
MAX_RUN_OUTPUT_CHARS = 4_000
MAX_TRACEBACK_LINES = 200
MAX_ERROR_CHARS = 4_000
MAX_EXECUTION_COUNT = 10**9


@dataclass(frozen=True, slots=True)
class ApproveRequest:
    """The user's answer to approval `approval_id` of turn `id`."""

    id: str
    approval_id: str
    decision: str  # one of APPROVAL_DECISIONS


@dataclass(frozen=True, slots=True)
class RunOutput:
    output_type: str
    text: str


@dataclass(frozen=True, slots=True)
class RunError:
    ename: str
    evalue: str
    traceback: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunResultRequest:
    """What running (or interrupting) the approved cell gave, from the client."""

    id: str
    approval_id: str
    status: str  # one of RUN_STATUSES
    execution_count: int | None = None
    outputs: tuple[RunOutput, ...] = ()
    error: RunError | None = None


def _bounded_string(value: Any, name: str, limit: int, frame_id: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(ErrorCode.BAD_FRAME, f"'{name}' must be a string", frame_id)
    if len(value) > limit:
        raise ProtocolError(
            ErrorCode.FRAME_TOO_LARGE,
            f"'{name}' is longer than {limit} characters; trim it before sending",
            frame_id,
        )
    return value


def _parse_run_result(obj: dict[str, Any], msg_id: str, approval_id: str) -> RunResultRequest:
    status = obj.get("status")
    if status not in RUN_STATUSES:
        raise ProtocolError(
            ErrorCode.BAD_FRAME, "'status' must be one of " + ", ".join(RUN_STATUSES), msg_id
        )
    count = obj.get("execution_count")
    if count is not None and (
        not isinstance(count, int)
        or isinstance(count, bool)
        or not 0 <= count <= MAX_EXECUTION_COUNT
    ):
        raise ProtocolError(
            ErrorCode.BAD_FRAME, "'execution_count' must be a non-negative integer or null", msg_id
        )
    raw_outputs = obj.get("outputs") or []
    if not isinstance(raw_outputs, list) or len(raw_outputs) > MAX_RUN_OUTPUTS:
        raise ProtocolError(
            ErrorCode.BAD_FRAME,
            f"'outputs' must be a list of at most {MAX_RUN_OUTPUTS} objects",
            msg_id,
        )
    outputs = []
    for i, raw in enumerate(raw_outputs):
        if not isinstance(raw, dict) or raw.get("output_type") not in OUTPUT_TYPES:
            raise ProtocolError(
                ErrorCode.BAD_FRAME,
                f"'outputs[{i}].output_type' must be one of " + ", ".join(OUTPUT_TYPES),
                msg_id,
            )
        text = _bounded_string(
            raw.get("text", ""), f"outputs[{i}].text", MAX_RUN_OUTPUT_CHARS, msg_id
        )
        outputs.append(RunOutput(raw["output_type"], text))
    error = None
    raw_error = obj.get("error")
    if raw_error is not None:
        if not isinstance(raw_error, dict):
            raise ProtocolError(ErrorCode.BAD_FRAME, "'error' must be an object or null", msg_id)
        traceback = raw_error.get("traceback") or []
        if not isinstance(traceback, list) or len(traceback) > MAX_TRACEBACK_LINES:
            raise ProtocolError(
                ErrorCode.BAD_FRAME,
                f"'error.traceback' must be a list of at most {MAX_TRACEBACK_LINES} strings",
                msg_id,
            )
        error = RunError(
            ename=_bounded_string(raw_error.get("ename", ""), "error.ename", MAX_ID_LENGTH, msg_id),
            evalue=_bounded_string(
                raw_error.get("evalue", ""), "error.evalue", MAX_ERROR_CHARS, msg_id
            ),
            traceback=tuple(
                _bounded_string(line, "error.traceback[]", MAX_ERROR_CHARS, msg_id)
                for line in traceback
            ),
        )
    return RunResultRequest(
        id=msg_id,
        approval_id=approval_id,
        status=status,
        execution_count=count,
        outputs=tuple(outputs),
        error=error,
    )


ClientFrame = ChatRequest | CancelRequest | ResumeRequest | ApproveRequest | RunResultRequest


def _is_valid_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_LENGTH
        and _CONTROL_CHARS.search(value) is None
    )


def _require_id(obj: dict[str, Any], name: str, frame_id: str | None) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise ProtocolError(ErrorCode.BAD_FRAME, f"'{name}' must be a non-empty string", frame_id)
    if len(value) > MAX_ID_LENGTH:
        raise ProtocolError(
            ErrorCode.BAD_FRAME, f"'{name}' is longer than {MAX_ID_LENGTH} characters", frame_id
        )
    if _CONTROL_CHARS.search(value):
        raise ProtocolError(
            ErrorCode.BAD_FRAME,
            f"'{name}' holds a control character; use printable characters only",
            frame_id,
        )
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _clean_id(obj: Any) -> str | None:
    """The frame's id when it is itself valid, so a refusal can still name its turn."""
    if not isinstance(obj, dict):
        return None
    value = obj.get("id")
    if not _is_valid_id(value):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return str(value)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode_json(raw: str | bytes) -> Any:
    """json.loads for untrusted input, raising ProtocolError(BAD_JSON) with a precise reason.

    Refuses what the standard decoder lets through but later breaks us: nesting deep enough
    to raise RecursionError, NaN/Infinity, and lone surrogates (``"\\ud800"``), which decode
    to a str that cannot be encoded as UTF-8 for SQLite, a log line or the socket. The
    surrogate check re-encodes the decoded value once, in C, so it costs O(n).
    """
    try:
        obj = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_JSON, "JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, f"Not valid JSON: {exc}") from None
    if isinstance(raw, str) and _SURROGATE_ESCAPE.search(raw) is None and _utf8(raw):
        # Valid UTF-8 text decodes to a lone surrogate only through a \\uD800-\\uDFFF
        # escape; without one the re-encode below has nothing to find (it costs ~1.4 ms
        # for a 200 kB completion frame with 50 cells, the regex and encode ~0.1 ms).
        return obj
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError(
            ErrorCode.BAD_JSON,
            "JSON holds a lone surrogate (\\ud800-\\udfff); send UTF-8 text",
            _clean_id(obj),
        ) from None
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_JSON, "JSON is nested too deeply") from None
    return obj


def parse_client_frame(raw: str | bytes, *, max_bytes: int, max_text_chars: int) -> ClientFrame:
    """Validate one client frame; raise ProtocolError with a precise reason otherwise."""
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise ProtocolError(
            ErrorCode.FRAME_TOO_LARGE,
            f"Frame of {size} bytes exceeds the limit of {max_bytes} bytes",
        )
    obj = decode_json(raw)
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_FRAME, "Frame must be a JSON object")
    raw_id = obj.get("id")
    frame_id = raw_id if _is_valid_id(raw_id) else None

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
        msg_id = _require_id(obj, "id", frame_id)
        conversation_id = _require_id(obj, "conversation_id", msg_id)
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
        engine = obj.get("engine")
        if engine is not None and (not isinstance(engine, str) or len(engine) > MAX_ID_LENGTH):
            raise ProtocolError(ErrorCode.BAD_FRAME, "'engine' must be an engine name", msg_id)
        return ChatRequest(
            id=msg_id,
            conversation_id=conversation_id,
            text=text,
            context=context,
            model=model or None,
            engine=engine or None,
        )
    if kind == "cancel":
        return CancelRequest(id=_require_id(obj, "id", frame_id))
    if kind == "resume":
        msg_id = _require_id(obj, "id", frame_id)
        after = obj.get("after")
        if (
            not isinstance(after, int)
            or isinstance(after, bool)
            or not 0 <= after <= MAX_RESUME_AFTER
        ):
            raise ProtocolError(
                ErrorCode.BAD_FRAME,
                f"'after' must be an integer from 0 to {MAX_RESUME_AFTER}: the last frame "
                "number 'n' seen of this turn",
                msg_id,
            )
        return ResumeRequest(id=msg_id, after=after)
    if kind == "approve":
        msg_id = _require_id(obj, "id", frame_id)
        approval_id = _require_id(obj, "approval_id", msg_id)
        decision = obj.get("decision")
        if decision not in APPROVAL_DECISIONS:
            raise ProtocolError(
                ErrorCode.BAD_FRAME,
                "'decision' must be one of " + ", ".join(APPROVAL_DECISIONS),
                msg_id,
            )
        return ApproveRequest(id=msg_id, approval_id=approval_id, decision=decision)
    if kind == "run_result":
        msg_id = _require_id(obj, "id", frame_id)
        return _parse_run_result(obj, msg_id, _require_id(obj, "approval_id", msg_id))
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_FRAME, "Frame has no 'type' string", frame_id)
    raise ProtocolError(
        ErrorCode.UNKNOWN_TYPE,
        f"Unknown frame type {kind!r}; expected 'chat', 'cancel', 'resume', 'approve' or "
        "'run_result'",
        frame_id,
    )


# --- server frames -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


def hello_frame(
    *,
    default_model: str | None,
    models: list[str],
    engines: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "type": "hello",
        "protocol_version": PROTOCOL_VERSION,
        "model": {"configured": default_model is not None, "name": default_model},
        "models": models,
        "engines": engines or [],
    }


def plugins_frame(
    *, engines: list[dict[str, Any]], changed: dict[str, str] | None = None
) -> dict[str, Any]:
    """To every open chat socket when a plugin's state changes: the engines (and so the
    slash commands) now offered, and which plugin changed to what, and why."""
    frame: dict[str, Any] = {"type": "plugins", "engines": engines}
    if changed is not None:
        frame["changed"] = changed
    return frame


def chunk_frame(msg_id: str, seq: int, text: str, *, step: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "chunk", "id": msg_id, "seq": seq, "text": text}
    if step is not None:
        frame["step"] = step
    return frame


def route_frame(
    msg_id: str, *, engine: str, reason: str, forced: bool, confidence: float
) -> dict[str, Any]:
    return {
        "type": "route",
        "id": msg_id,
        "engine": engine,
        "reason": reason,
        "forced": forced,
        "confidence": round(confidence, 2),
    }


def step_frame(
    msg_id: str, step: str, title: str, status: str, *, tool: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`status` is "started" or "finished"; the step's text comes as chunks with `step`.
    `tool` (an agent's tool call, on "started"): {name, arguments, cell_index (1-based or
    null), path (the notebook's or null), answer_at (characters of the answer before it)}."""
    frame: dict[str, Any] = {
        "type": "step",
        "id": msg_id,
        "step": step,
        "title": title,
        "status": status,
    }
    if tool is not None:
        frame["tool"] = tool
    return frame


def approval_frame(
    msg_id: str,
    approval_id: str,
    *,
    kind: str,
    title: str,
    path: str | None,
    cell_index: int | None,
    cell_id: str | None,
    source: str,
    suggestion_ids: list[str],
    auto: bool = False,
    tool: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The agent asks to run (or interrupt) a cell, or (kind "tool") to call an MCP
    server's write/run tool: `tool` names it ({server, name, permission}), `source` holds
    its arguments as JSON, and the decision alone answers it (no run_result). `auto`:
    allowed for the turn or conversation already, so the client does not ask (for a cell
    it still runs it and answers with run_result)."""
    frame: dict[str, Any] = {
        "type": "approval",
        "id": msg_id,
        "approval_id": approval_id,
        "kind": kind,
        "title": title,
        "path": path,
        "cell_index": cell_index,
        "cell_id": cell_id,
        "source": source,
        "suggestion_ids": suggestion_ids,
    }
    if auto:
        frame["auto"] = True
    if tool is not None:
        frame["tool"] = tool
    return frame


def approval_closed_frame(msg_id: str, approval_id: str, reason: str) -> dict[str, Any]:
    """`reason`: "answered", "timeout" or "cancelled"."""
    return {"type": "approval.closed", "id": msg_id, "approval_id": approval_id, "reason": reason}


def citations_frame(msg_id: str, citations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "citations", "id": msg_id, "citations": citations}


def correction_frame(
    msg_id: str, round_no: int, findings: list[dict[str, Any]], fixed: bool
) -> dict[str, Any]:
    return {
        "type": "correction",
        "id": msg_id,
        "round": round_no,
        "findings": findings,
        "fixed": fixed,
    }


def suggestion_frame(msg_id: str, suggestion: dict[str, Any]) -> dict[str, Any]:
    return {"type": "suggestion", "id": msg_id, "suggestion": suggestion}


def task_frame(msg_id: str, task: dict[str, Any]) -> dict[str, Any]:
    return {"type": "task", "id": msg_id, "task": task}


# A notice that the user can act on carries the front-end command that does it, so the
# client renders a button instead of telling people to find a control themselves.
NOTICE_ACTIONS: dict[str, dict[str, str]] = {
    NoticeCode.NO_INDEX: {"command": "rubberduck:index-project", "label": "Index this project"},
}


def notice_frame(msg_id: str, code: str, message: str) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "notice", "id": msg_id, "code": code, "message": message}
    if code in NOTICE_ACTIONS:
        frame["action"] = dict(NOTICE_ACTIONS[code])
    return frame


def done_frame(
    msg_id: str,
    usage: Usage,
    finish_reason: str,
    *,
    model: str | None = None,
    cost_usd: float | None = None,
    cached: bool = False,
    attempts: list[dict[str, Any]] | None = None,
    engine: str | None = None,
    conversation_id: str | None = None,
    message_id: str | None = None,
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
        "engine": engine,
        "conversation_id": conversation_id,
        "message_id": message_id,
    }


def error_frame(
    msg_id: str | None, code: ErrorCode, message: str, *, retry_after: float | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "id": msg_id, "code": str(code), "message": message}
    if retry_after is not None:
        frame["retry_after"] = round(retry_after, 2)
    return frame


# --- inline completions (/rubberduck/api/complete/ws; docs/completion.md) ----------------
#
# client -> server: complete {id, path, language, prefix, suffix, cells, variables,
#                             multiline, max_lines}, cancel {id}
# server -> client: completion.chunk {id, text}, then exactly one of
#                   completion.done {id, text, cached}, completion.error {id, code, message,
#                   retry_after}, completion.cancelled {id}

# What the client sends at most (it trims each cell to 4,000 characters and sends 50): a
# little above, so an honest client is never refused, and a bound on what is parsed.
MAX_COMPLETION_CELLS = 50
MAX_COMPLETION_CELL_CHARS = 8_000
MAX_COMPLETION_TEXT = 100_000  # prefix and suffix, each
MAX_COMPLETION_LINES = 100
MAX_COMPLETION_PATH = 4_096
MAX_COMPLETION_LANGUAGE = 64


@dataclass(frozen=True, slots=True)
class CompletionCell:
    cell_type: str
    source: str


@dataclass(frozen=True, slots=True)
class CompletionVariable:
    name: str
    type: str = ""
    shape: str = ""


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One ghost-text request; `cells` are the notebook's earlier cells, nearest first."""

    id: str
    prefix: str
    suffix: str = ""
    path: str = ""
    language: str = "python"
    cells: tuple[CompletionCell, ...] = ()
    variables: tuple[CompletionVariable, ...] = ()
    multiline: bool = True
    max_lines: int = 10


CompletionClientFrame = CompletionRequest | CancelRequest


def _completion_string(obj: dict[str, Any], name: str, limit: int, frame_id: str) -> str:
    value = obj.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProtocolError(ErrorCode.BAD_FRAME, f"'{name}' must be a string", frame_id)
    if len(value) > limit:
        raise ProtocolError(
            ErrorCode.FRAME_TOO_LARGE, f"'{name}' is longer than {limit} characters", frame_id
        )
    return value


def _completion_cells(raw: Any, frame_id: str) -> tuple[CompletionCell, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_COMPLETION_CELLS:
        raise ProtocolError(
            ErrorCode.BAD_FRAME,
            f"'cells' must be a list of at most {MAX_COMPLETION_CELLS} objects, nearest first",
            frame_id,
        )
    out = []
    for item in raw:
        if (
            not isinstance(item, dict)
            or item.get("cell_type", "code") not in CELL_TYPES
            or not isinstance(item.get("source", ""), str)
        ):
            raise ProtocolError(
                ErrorCode.BAD_FRAME,
                "each of 'cells' needs 'cell_type' (code, markdown or raw) and a string 'source'",
                frame_id,
            )
        source = item.get("source", "")
        if len(source) > MAX_COMPLETION_CELL_CHARS:
            raise ProtocolError(
                ErrorCode.FRAME_TOO_LARGE,
                f"a cell's 'source' is longer than {MAX_COMPLETION_CELL_CHARS} characters; trim it",
                frame_id,
            )
        out.append(CompletionCell(cell_type=item.get("cell_type", "code"), source=source))
    return tuple(out)


def _completion_variables(raw: Any, frame_id: str) -> tuple[CompletionVariable, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_VARIABLES:
        raise ProtocolError(
            ErrorCode.BAD_FRAME,
            f"'variables' must be a list of at most {MAX_VARIABLES} objects",
            frame_id,
        )
    out = []
    for item in raw:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k) or "", str) and len(item.get(k) or "") <= 2000
            for k in ("name", "type", "shape")
        ):
            raise ProtocolError(
                ErrorCode.BAD_FRAME,
                "each of 'variables' needs string 'name', 'type', 'shape' "
                "(at most 2000 characters each)",
                frame_id,
            )
        if item.get("name"):
            out.append(
                CompletionVariable(
                    name=item["name"], type=item.get("type") or "", shape=item.get("shape") or ""
                )
            )
    return tuple(out)


def parse_completion_frame(raw: str | bytes, *, max_bytes: int) -> CompletionClientFrame:
    """Validate one frame of the completion socket; ProtocolError with the reason otherwise."""
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise ProtocolError(
            ErrorCode.FRAME_TOO_LARGE,
            f"Frame of {size} bytes exceeds the limit of {max_bytes} bytes",
        )
    obj = decode_json(raw)
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_FRAME, "Frame must be a JSON object")
    frame_id = _clean_id(obj)
    version = obj.get("v", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"Protocol version {version!r} is not supported; this server speaks "
            f"version {PROTOCOL_VERSION}. Reload the page to update the client.",
            frame_id,
        )
    kind = obj.get("type")
    if kind == "cancel":
        return CancelRequest(id=_require_id(obj, "id", frame_id))
    if kind != "complete":
        if not isinstance(kind, str):
            raise ProtocolError(ErrorCode.BAD_FRAME, "Frame has no 'type' string", frame_id)
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE,
            f"Unknown frame type {kind!r}; expected 'complete' or 'cancel'",
            frame_id,
        )
    msg_id = _require_id(obj, "id", frame_id)
    if not isinstance(obj.get("prefix"), str):
        raise ProtocolError(ErrorCode.BAD_FRAME, "'prefix' must be a string", msg_id)
    multiline = obj.get("multiline", True)
    if not isinstance(multiline, bool):
        raise ProtocolError(ErrorCode.BAD_FRAME, "'multiline' must be true or false", msg_id)
    max_lines = obj.get("max_lines", 10)
    if (
        not isinstance(max_lines, int)
        or isinstance(max_lines, bool)
        or not 1 <= max_lines <= MAX_COMPLETION_LINES
    ):
        raise ProtocolError(
            ErrorCode.BAD_FRAME,
            f"'max_lines' must be an integer from 1 to {MAX_COMPLETION_LINES}",
            msg_id,
        )
    return CompletionRequest(
        id=msg_id,
        prefix=_completion_string(obj, "prefix", MAX_COMPLETION_TEXT, msg_id),
        suffix=_completion_string(obj, "suffix", MAX_COMPLETION_TEXT, msg_id),
        path=_completion_string(obj, "path", MAX_COMPLETION_PATH, msg_id),
        language=_completion_string(obj, "language", MAX_COMPLETION_LANGUAGE, msg_id) or "python",
        cells=_completion_cells(obj.get("cells"), msg_id),
        variables=_completion_variables(obj.get("variables"), msg_id),
        multiline=multiline,
        max_lines=max_lines,
    )


def completion_chunk_frame(msg_id: str, text: str) -> dict[str, Any]:
    return {"type": "completion.chunk", "id": msg_id, "text": text}


def completion_hello_frame(status: dict[str, Any]) -> dict[str, Any]:
    """The completion socket's first frame, as the chat socket's: the protocol version the
    server speaks and the completion status (`GET .../complete/status`'s body), so a client
    knows on connect whether completions are on, and every socket answers its opener."""
    return {"type": "hello", "protocol_version": PROTOCOL_VERSION, "completion": status}


def completion_done_frame(msg_id: str, text: str, *, cached: bool) -> dict[str, Any]:
    """The final, trimmed completion: the client shows this text, not the chunks'."""
    return {"type": "completion.done", "id": msg_id, "text": text, "cached": cached}


def completion_error_frame(
    msg_id: str | None, code: ErrorCode, message: str, *, retry_after: float | None = None
) -> dict[str, Any]:
    return {
        "type": "completion.error",
        "id": msg_id,
        "code": str(code),
        "message": message,
        "retry_after": None if retry_after is None else round(retry_after, 2),
    }


def completion_cancelled_frame(msg_id: str) -> dict[str, Any]:
    return {"type": "completion.cancelled", "id": msg_id}
