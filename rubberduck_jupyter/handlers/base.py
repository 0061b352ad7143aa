"""Shared concerns of every RubberDuck HTTP handler: the app, kernel tokens, JSON errors.

Every REST error leaves here in one shape, ``{"code": ..., "message": ...}``, with a code of
``protocol.ErrorCode``: handlers raise `RubberDuckError`, and `write_error` turns it, any
``web.HTTPError`` (403 from the auth decorators, 404, 405) and any crash into that body.

Kernel tokens (header ``X-RubberDuck-Kernel-Token``) belong to one user each (see
`sessions.identity.KernelTokens`); a request carrying one goes through the same Host and
Origin checks as any Jupyter API request and may do only what `KERNEL_SCOPE` lists.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import User
from jupyter_server.base.call_context import CallContext
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from ..protocol import ErrorCode, ProtocolError, decode_json

if TYPE_CHECKING:
    from ..app import RubberDuckApp

KERNEL_TOKEN_HEADER = "X-RubberDuck-Kernel-Token"

# What a kernel's token may do, as (resource, action) with jupyter_server's actions (GET is
# "read"; POST, PUT, PATCH and DELETE are "write"). The %%duck magics need to chat, read
# health, models and usage, read their user's conversations, search the index and decide on
# their own suggestions. A kernel runs whatever code a notebook holds, so it gets nothing
# that changes settings or destroys history: no indexing start/stop, no preferences, no
# conversation rename or delete. Ownership still applies: every conversation and suggestion
# is checked against the token's user.
KERNEL_SCOPE: frozenset[tuple[str, str]] = frozenset(
    {
        ("rubberduck:chat", "read"),  # models, usage, engines
        ("rubberduck:chat", "write"),  # POST /rubberduck/api/chat
        ("rubberduck:health", "read"),
        ("rubberduck:conversations", "read"),  # list, one, export
        ("rubberduck:index", "read"),  # status and search
        ("rubberduck:suggestions", "read"),
        ("rubberduck:suggestions", "write"),  # apply, reject
    }
)

# The code a bare HTTP status becomes when a handler (or Jupyter, or tornado) gave none.
_STATUS_CODES: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.FORBIDDEN,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.FRAME_TOO_LARGE,
    429: ErrorCode.RATE_LIMITED,
}

_STATUS_MESSAGES: dict[int, str] = {
    401: "Not signed in; sign in to Jupyter again.",
    403: "Not allowed; sign in to Jupyter again or ask the server's admin for access.",
    404: "Not found.",
    405: "This endpoint does not take that HTTP method.",
}


class RubberDuckError(web.HTTPError):
    """A refusal with a protocol code; `write_error` sends it as {"code", "message"}."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        # tornado formats log_message with %-args when it logs: escape a literal '%'.
        super().__init__(status, message.replace("%", "%%"))
        self.code = code
        self.message = message


def error_body(code: ErrorCode | str, message: str) -> str:
    return json.dumps({"code": str(code), "message": message})


class KernelScopeAuthorizer(Authorizer):
    """Allows a kernel's token exactly the (resource, action) pairs of `KERNEL_SCOPE`."""

    def is_authorized(self, handler: Any, user: User, action: str, resource: str) -> bool:
        return (resource, action) in KERNEL_SCOPE


_KERNEL_AUTHORIZER = KernelScopeAuthorizer()


class RubberDuckAPIHandler(ExtensionHandlerMixin, APIHandler):
    """Accepts the usual Jupyter auth, or the scoped token the server gives its kernels."""

    # The RubberDuck user a valid kernel token belongs to; None for Jupyter-authenticated.
    kernel_user: str | None = None

    @property
    def rubberduck(self) -> RubberDuckApp:
        return self.extensionapp  # type: ignore[return-value]

    async def prepare(self) -> None:  # type: ignore[override]
        token = self.request.headers.get(KERNEL_TOKEN_HEADER)
        if token is None:
            await super().prepare()
            return
        # Jupyter's own prepare would resolve the user through the identity provider, which
        # knows nothing of kernel tokens; so run its checks here in its order.
        CallContext.set(CallContext.JUPYTER_HANDLER, self)
        self.current_user = self._jupyter_current_user = None  # type: ignore[assignment]
        if not self.check_host():
            raise RubberDuckError(
                403, ErrorCode.FORBIDDEN, "This server does not answer requests for that Host."
            )
        user = self.rubberduck.kernel_tokens.user_for(token)
        if user is None:
            raise RubberDuckError(403, ErrorCode.FORBIDDEN, "Invalid RubberDuck kernel token.")
        # The origin check applies (kernels send no Origin, so they pass); unlike Jupyter's
        # token, a kernel token with a foreign Origin is refused: no browser page holds one.
        if not self.check_origin():
            raise RubberDuckError(
                403, ErrorCode.FORBIDDEN, "Kernel-token requests from a web page are refused."
            )
        self.kernel_user = user
        self.current_user = self._jupyter_current_user = User(  # type: ignore[assignment]
            username=user, name="kernel"
        )
        self.set_cors_headers()

    def check_xsrf_cookie(self) -> None:
        # No XSRF check for a kernel token, as Jupyter skips it for its own header token: a
        # page on another origin cannot send a custom header without a CORS preflight, which
        # Jupyter refuses unless its admin allowed that origin, and a page cannot read the
        # token, which lives only in the kernel's environment.
        if self.kernel_user is not None:
            return None
        return super().check_xsrf_cookie()  # type: ignore[no-any-return]

    @property
    def authorizer(self) -> Authorizer:  # type: ignore[override]
        if self.kernel_user is not None:
            return _KERNEL_AUTHORIZER
        return super().authorizer  # type: ignore[no-any-return]

    def json_body(self, *, default: str = "{}") -> dict[str, Any]:
        """The request body as a JSON object, refusing what `protocol.decode_json` refuses
        and bodies over the frame limit (no REST body of ours needs more)."""
        limit = self.rubberduck.max_frame_bytes
        if len(self.request.body) > limit:
            raise RubberDuckError(
                413,
                ErrorCode.FRAME_TOO_LARGE,
                f"The body of {len(self.request.body)} bytes exceeds the limit of {limit} bytes.",
            )
        try:
            body = decode_json(self.request.body or default)
        except ProtocolError as exc:
            raise RubberDuckError(400, exc.code, exc.message) from None
        if not isinstance(body, dict):
            raise RubberDuckError(400, ErrorCode.BAD_FRAME, "The body must be a JSON object.")
        return body

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, RubberDuckError):
            code, message = exc.code, exc.message
        elif isinstance(exc, web.HTTPError):
            code = _STATUS_CODES.get(status_code, _default_code(status_code))
            message = _http_error_message(exc) or _STATUS_MESSAGES.get(
                status_code, exc.reason or self._reason
            )
        else:
            # The traceback is in the server log (tornado logged it); the client gets no
            # internals.
            code = _default_code(status_code)
            message = "RubberDuck hit an unexpected error; the server log has details."
        self.set_header("Content-Type", "application/json")
        self.finish(error_body(code, message))


def _default_code(status: int) -> ErrorCode:
    return ErrorCode.INTERNAL if status >= 500 else ErrorCode.BAD_REQUEST


def _http_error_message(exc: web.HTTPError) -> str:
    if not exc.log_message:
        return ""
    try:
        return str(exc.log_message % exc.args)
    except (TypeError, ValueError):
        return str(exc.log_message)
