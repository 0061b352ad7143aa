"""/rubberduck/api/index: start, stop and watch indexing; /rubberduck/api/index/search."""

from __future__ import annotations

import re
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..context.retrieval import KEYWORD_ONLY, keyword_only_message
from ..index.embedder_config import EmbedderError
from ..index.globs import GlobError
from ..index.service import IndexBusyError, IndexPathError
from ..protocol import ErrorCode
from .base import RubberDuckAPIHandler, RubberDuckError

MAX_TOP_K = 100
# Linux's PATH_MAX and NAME_MAX: longer paths cannot exist, and the OS would answer them with
# ENAMETOOLONG from deep inside the indexer; refuse them here, precisely.
MAX_PATH_CHARS = 4096
MAX_NAME_BYTES = 255
MAX_PATHS = 1000  # one request's folders; a whole project is one path: ""
# A search query is embedded and tokenized on every call: keep it to what a person types.
MAX_QUERY_CHARS = 2000
MAX_GLOB_CHARS = 1000


def check_relative_path(raw: Any) -> str:
    """A client's relative path that can be handed to the file system, or bad_path."""
    if not isinstance(raw, str):
        raise RubberDuckError(400, ErrorCode.BAD_PATH, "Each path must be a string.")
    shown = raw[:60] + ("..." if len(raw) > 60 else "")
    if "\x00" in raw:
        raise RubberDuckError(400, ErrorCode.BAD_PATH, f"{shown!r} contains a NUL character.")
    if len(raw) > MAX_PATH_CHARS or any(
        len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in raw.split("/")
    ):
        raise RubberDuckError(
            400,
            ErrorCode.BAD_PATH,
            f"{shown!r} is too long for a path ({MAX_PATH_CHARS} characters, "
            f"{MAX_NAME_BYTES} bytes per name at most).",
        )
    return raw


class IndexHandler(RubberDuckAPIHandler):
    auth_resource = "rubberduck:index"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(self.rubberduck.index.status())

    @web.authenticated
    @authorized
    async def post(self) -> None:
        paths = self.json_body().get("paths", [])
        if not isinstance(paths, list) or len(paths) > MAX_PATHS:
            raise RubberDuckError(
                400,
                ErrorCode.BAD_FRAME,
                f"'paths' must be a list of at most {MAX_PATHS} paths relative to the root.",
            )
        checked = [check_relative_path(p) for p in paths]
        # `scope`: the folders to index from now on (saved beside the index, used by
        # re-index and the watcher); [] is the whole project. Absent: keep the saved one.
        scope = self.json_body().get("scope")
        if scope is not None and (not isinstance(scope, list) or len(scope) > MAX_PATHS):
            raise RubberDuckError(
                400,
                ErrorCode.BAD_FRAME,
                f"'scope' must be a list of at most {MAX_PATHS} paths relative to the root.",
            )
        if scope is not None and checked:
            raise RubberDuckError(
                400, ErrorCode.BAD_FRAME, "Give 'paths' (index once) or 'scope', not both."
            )
        checked_scope = None if scope is None else [check_relative_path(p) for p in scope]
        try:
            await self.rubberduck.index.start(checked, scope=checked_scope)
        except IndexPathError as exc:
            raise RubberDuckError(400, ErrorCode.BAD_PATH, str(exc)) from None
        except (OSError, ValueError) as exc:
            # What the OS refuses about a path (a name it cannot store, a loop of symlinks).
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise RubberDuckError(
                400, ErrorCode.BAD_PATH, f"That path cannot be read: {reason}."
            ) from None
        except IndexBusyError as exc:
            raise RubberDuckError(409, ErrorCode.BUSY, str(exc)) from None
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
            raise RubberDuckError(400, ErrorCode.BAD_QUERY, "Give a query: ?q=...")
        if len(query) > MAX_QUERY_CHARS:
            raise RubberDuckError(
                400, ErrorCode.BAD_QUERY, f"The query is over {MAX_QUERY_CHARS} characters."
            )
        try:
            top_k = int(self.get_argument("top_k", "10"))
        except ValueError:
            top_k = 0
        if not 1 <= top_k <= MAX_TOP_K:
            raise RubberDuckError(400, ErrorCode.BAD_QUERY, f"top_k must be 1..{MAX_TOP_K}")
        mode = self.get_argument("mode", "hybrid")
        if mode not in {"hybrid", "vector", "bm25"}:
            raise RubberDuckError(400, ErrorCode.BAD_QUERY, "mode must be hybrid, vector or bm25")
        path_glob = self.get_argument("path", None)
        if path_glob is not None and (len(path_glob) > MAX_GLOB_CHARS or "\x00" in path_glob):
            raise RubberDuckError(
                400,
                ErrorCode.BAD_QUERY,
                f"'path' must be a glob of at most {MAX_GLOB_CHARS} characters, without NUL.",
            )
        try:
            hits, degraded = await self.rubberduck.index.find(
                query,
                top_k=top_k,
                path_glob=path_glob,
                kinds=self.get_arguments("kind") or None,
                mode=mode,
            )
        except EmbedderError as exc:
            raise RubberDuckError(503, ErrorCode.EMBEDDER_UNAVAILABLE, str(exc)) from None
        except IndexBusyError as exc:
            # Another server holds the index file; the message says which and what to do.
            raise RubberDuckError(409, ErrorCode.BUSY, str(exc)) from None
        except GlobError as exc:
            # index.globs refuses an empty glob or a reversed range such as '[z-a]'.
            raise RubberDuckError(
                400, ErrorCode.BAD_QUERY, f"'path' is not a usable glob: {exc}."
            ) from None
        except re.error as exc:
            # A glob whose character class cannot compile, such as '[z-a]'.
            raise RubberDuckError(
                400, ErrorCode.BAD_QUERY, f"'path' is not a usable glob: {exc.msg}."
            ) from None
        body: dict[str, Any] = {"query": query, "hits": [hit.to_json() for hit in hits]}
        if degraded is not None:
            # A hybrid search whose query could not be embedded: keyword hits, and why.
            body["notice"] = {"code": KEYWORD_ONLY, "message": keyword_only_message(degraded)}
        self.finish(body)
