"""Shared concerns of every RubberDuck HTTP handler: the app, kernel tokens, JSON errors."""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import User
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

if TYPE_CHECKING:
    from ..app import RubberDuckApp

KERNEL_TOKEN_HEADER = "X-RubberDuck-Kernel-Token"


class KernelScopeAuthorizer(Authorizer):
    """What a kernel's token may do: talk to RubberDuck, nothing else in Jupyter."""

    def is_authorized(self, handler: Any, user: User, action: str, resource: str) -> bool:
        return resource.startswith("rubberduck:")


_KERNEL_AUTHORIZER = KernelScopeAuthorizer()


class RubberDuckAPIHandler(ExtensionHandlerMixin, APIHandler):
    """Accepts the usual Jupyter auth, or the scoped token the server gives its kernels."""

    _kernel_authenticated = False

    @property
    def rubberduck(self) -> RubberDuckApp:
        return self.extensionapp  # type: ignore[return-value]

    async def prepare(self) -> None:  # type: ignore[override]
        token = self.request.headers.get(KERNEL_TOKEN_HEADER)
        if token is None:
            await super().prepare()
            return
        expected = self.rubberduck.kernel_token
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            self.current_user = self._jupyter_current_user = None  # type: ignore[assignment]
            self.set_status(403)
            self.finish_json_error(403, "forbidden", "Invalid RubberDuck kernel token.")
            return
        self._kernel_authenticated = True
        self.current_user = self._jupyter_current_user = User(  # type: ignore[assignment]
            username=self.rubberduck.kernel_username, name="kernel"
        )

    @property
    def authorizer(self) -> Authorizer:  # type: ignore[override]
        if self._kernel_authenticated:
            return _KERNEL_AUTHORIZER
        return super().authorizer  # type: ignore[no-any-return]

    def finish_json_error(self, status: int, code: str, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"type": "error", "id": None, "code": code, "message": message}))
