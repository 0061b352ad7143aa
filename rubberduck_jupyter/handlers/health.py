"""GET /rubberduck/api/health: the state of each subsystem, with nothing secret in it;
GET /rubberduck/api/plugins: the plugins and their states."""

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


class PluginsHandler(RubberDuckAPIHandler):
    """GET /rubberduck/api/plugins: every plugin with its version, source, state, declared
    permissions and extension points, and why it is not loaded (the CLI's table as JSON)."""

    auth_resource = "rubberduck:health"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish({"plugins": self.rubberduck.plugins.list()})
