"""/rubberduck/api/index: start, stop and watch indexing; /rubberduck/api/index/search."""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..index.embedder_config import EmbedderError
from ..index.service import IndexBusyError, IndexPathError
from .base import RubberDuckAPIHandler

MAX_TOP_K = 100


class IndexHandler(RubberDuckAPIHandler):
    auth_resource = "rubberduck:index"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(self.rubberduck.index.status())

    @web.authenticated
    @authorized
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            self.finish_json_error(400, "bad_json", 'The body must be JSON: {"paths": [...]}')
            return
        paths = body.get("paths", []) if isinstance(body, dict) else None
        if not isinstance(paths, list):
            self.finish_json_error(400, "bad_frame", "'paths' must be a list of relative paths")
            return
        try:
            await self.rubberduck.index.start(paths)
        except IndexPathError as exc:
            self.finish_json_error(400, "bad_path", str(exc))
            return
        except IndexBusyError as exc:
            self.finish_json_error(409, "busy", str(exc))
            return
        self.set_status(202)
        self.finish(self.rubberduck.index.status())

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        stopping = self.rubberduck.index.stop()
        self.finish({"stopping": stopping, **self.rubberduck.index.status()})


class IndexSearchHandler(RubberDuckAPIHandler):
    auth_resource = "rubberduck:index"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        query = self.get_argument("q", "").strip()
        if not query:
            self.finish_json_error(400, "bad_query", "Give a query: ?q=...")
            return
        try:
            top_k = int(self.get_argument("top_k", "10"))
        except ValueError:
            top_k = 0
        if not 1 <= top_k <= MAX_TOP_K:
            self.finish_json_error(400, "bad_query", f"top_k must be 1..{MAX_TOP_K}")
            return
        mode = self.get_argument("mode", "hybrid")
        if mode not in {"hybrid", "vector", "bm25"}:
            self.finish_json_error(400, "bad_query", "mode must be hybrid, vector or bm25")
            return
        try:
            hits = await self.rubberduck.index.search(
                query,
                top_k=top_k,
                path_glob=self.get_argument("path", None),
                kinds=self.get_arguments("kind") or None,
                mode=mode,
            )
        except EmbedderError as exc:
            self.finish_json_error(503, "embedder_unavailable", str(exc))
            return
        self.finish({"query": query, "hits": [hit.to_json() for hit in hits]})
