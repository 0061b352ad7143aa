"""GET /rubberduck/api/models and /rubberduck/api/usage: what a user may pick and has spent."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import RubberDuckAPIHandler


class ModelsHandler(RubberDuckAPIHandler):
    auth_resource = "rubberduck:chat"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        # Names, providers and endpoints only: keys never leave the server.
        self.finish(self.rubberduck.llm.models_for_users())


class UsageHandler(RubberDuckAPIHandler):
    auth_resource = "rubberduck:chat"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        # Each user sees only their own usage.
        self.finish(self.rubberduck.llm.ledger.for_user(self.rubberduck.user_for(self)))
