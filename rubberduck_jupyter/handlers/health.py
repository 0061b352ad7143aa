"""GET /rubberduck/api/health: the state of each subsystem, with nothing secret in it."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import RubberDuckAPIHandler


class HealthHandler(RubberDuckAPIHandler):
    auth_resource = "rubberduck:health"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(self.rubberduck.health())
