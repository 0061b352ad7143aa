"""`jupyter rubberduck mcp`: RubberDuck's read tools as an MCP server, so other agents
(Claude Code, Copilot, Cursor) can use our retrieval over a project.

Tools: `search_project` (the project's index, hybrid BM25 + vectors, the same one the
Jupyter server builds), `list_cells` / `read_cell` (a notebook on disk, by path) and
`read_file` (a text file), each read through ProjectFiles: inside the root after
symlinks, no hidden or secret-looking files, the size cap. No variable tools: without
a live kernel there are no variables to read, and starting one would run user code.
Nothing here writes: no write tool is offered, and the index is only searched (a missing
index is reported, never built).

The index file is held open while searches keep coming and closed 10 s after the last,
so a Jupyter server starting on the same root gets its (exclusive) DuckDB lock back
within seconds; while a running server holds it, searches go through that server's REST
API, as `jupyter rubberduck search` does. The embedder loads on the first search and
stays. The SDK and the index load lazily: the server answers `initialize` in about the
SDK's import time (~0.5 s).

Over stdio by default (the client starts it); `--http PORT` serves streamable HTTP on
127.0.0.1 only (DNS-rebinding protection on), for clients that connect to a URL.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .domain.actions import ProjectFiles
    from .index.cli import CliWiring
    from .tools.base import Tool

SERVER_NAME = "rubberduck"
MAX_TOP_K = 10
MAX_HIT_CHARS = 1_200
# One search: embedding the query, DuckDB, the snapshot (a large index: seconds).
SEARCH_TIMEOUT_S = 60.0
# Opening the index costs its snapshot (~0.7 s at 9k chunks here, a search then ~tens of
# ms): held for a burst of searches, released this long after the last so a Jupyter
# server starting on the root is kept out of its index for seconds at most.
INDEX_IDLE_CLOSE_S = 10.0

SEARCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "maxLength": 2000},
        "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K},
        "path": {
            "type": "string",
            "maxLength": 500,
            "description": "Only paths matching this glob, e.g. 'src/**/*.py'.",
        },
    },
    "required": ["query"],
    "additionalProperties": False,
}
NOTEBOOK_FIELD = {
    "type": "string",
    "maxLength": 1000,
    "description": "The notebook's path, relative to the project root.",
}


@dataclass
class ProjectIndex:
    """Searches one root's index. The embedder is kept; the index file is held open only
    while searches keep coming (an agent's burst), then closed, so a Jupyter server on
    the same root gets its lock back (it probes again and recovers)."""

    root: Path
    db: Path
    embedder_settings: Callable[[], Any]  # -> EmbedderConfig
    provider: Any = None  # builds a `litellm:<model>` embedder (llm.embedder)
    _embedder: Any = None
    _store: Any = None
    _searcher: Any = None
    _used: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def search(self, query: str, top_k: int, path_glob: str | None) -> list[dict[str, Any]]:
        """Hits as `SearchHit.to_json()`. Raises LookupError with a message to show."""
        if not self.db.exists():
            raise LookupError(
                f"there is no index for {self.root} yet; build one with `jupyter rubberduck "
                "index` in that folder (or open it in JupyterLab with RubberDuck)"
            )
        from .index.store import IndexLockedError, IndexMismatchError

        try:
            return self._search_here(query, top_k, path_glob)
        except IndexMismatchError as exc:
            raise LookupError(str(exc)) from None
        except IndexLockedError:
            return self._search_through_server(query, top_k, path_glob)

    def _search_here(self, query: str, top_k: int, path_glob: str | None) -> list[dict[str, Any]]:
        from .index.embedder_config import build_embedder
        from .index.search import HybridSearcher
        from .index.store import IndexStore

        # One search at a time: a DuckDB connection is not shared between threads.
        with self._lock:
            if self._embedder is None:
                self._embedder = build_embedder(self.embedder_settings(), self.provider)
            embedder = self._embedder
            if self._searcher is None:
                self._store = IndexStore(
                    self.db, dim=embedder.dim, embedder_id=embedder.id, clear_mismatch=False
                )
                self._searcher = HybridSearcher(self._store, embedder.embed_query)
            self._used = time.monotonic()
            hits = self._searcher.search(query, top_k, path_glob=path_glob)
            return [hit.to_json() for hit in hits]

    def close_if_idle(self, idle_s: float) -> bool:
        """Closes the index file when no search used it for `idle_s`; whether it is closed."""
        with self._lock:
            if self._store is None:
                return True
            if time.monotonic() - self._used < idle_s:
                return False
            store, self._store, self._searcher = self._store, None, None
            store.close()
            return True

    def _search_through_server(
        self, query: str, top_k: int, path_glob: str | None
    ) -> list[dict[str, Any]]:
        import urllib.parse

        from .index.cli import call_server, server_for

        server = server_for(self.root)
        if server is None:
            raise LookupError(
                f"the index {self.db} is in use by another process and no Jupyter server "
                "for this folder answers; try again when it is free"
            )
        params = {"q": query, "top_k": top_k}
        if path_glob:
            params["path"] = path_glob
        path = "rubberduck/api/index/search?" + urllib.parse.urlencode(params)
        return list(call_server(server, "GET", path)["hits"])


def format_hits(query: str, hits: list[dict[str, Any]]) -> str:
    if not hits:
        return f"No results for {query!r}."
    parts = []
    for n, hit in enumerate(hits, 1):
        if "cell" in hit:
            where = f"{hit['path']}, cell {hit['cell']}"
        else:
            where = f"{hit['path']}:{hit.get('start_line')}-{hit.get('end_line')}"
        text = hit["text"]
        if len(text) > MAX_HIT_CHARS:
            text = text[:MAX_HIT_CHARS] + "…"
        parts.append(f"[{n}] {where} ({hit['kind']})\n{text}")
    return "\n\n".join(parts)


class ReadTools:
    """The tools and how each call runs: ours through our dispatcher (the same
    validation, timeout and truncation as in the agent), search over ProjectIndex."""

    def __init__(self, root: Path, index: ProjectIndex, files: ProjectFiles) -> None:
        from .tools import list_cells, read_cell, read_file
        from .tools.base import Permission, Tool, ToolError, ToolResult
        from .tools.dispatch import Dispatcher
        from .tools.registry import ToolRegistry

        self.root = root
        self.index = index
        self.files = files
        self._closer: asyncio.Future[None] | None = None

        async def search(args: dict[str, Any], _ctx: Any) -> ToolResult:
            top_k = int(args.get("top_k", 5))
            try:
                hits = await asyncio.to_thread(
                    self.index.search, args["query"], top_k, args.get("path")
                )
            except LookupError as exc:
                raise ToolError(str(exc)) from None
            finally:
                self._close_when_idle()
            return ToolResult(format_hits(args["query"], hits))

        def on_notebook(tool: Tool) -> Tool:
            # The agent's notebook tools read the request's open notebook; here it is named.
            parameters = dict(tool.parameters)
            parameters["properties"] = {"notebook": NOTEBOOK_FIELD, **parameters["properties"]}
            parameters["required"] = ["notebook", *parameters.get("required", ())]

            async def handler(args: dict[str, Any], ctx: Any) -> ToolResult:
                # The notebook is already the context's (see call).
                return await tool.handler({k: v for k, v in args.items() if k != "notebook"}, ctx)

            return Tool(
                tool.name,
                tool.description.replace(
                    "the user's open notebook", "a notebook of the project"
                ).replace("the open notebook", "a notebook of the project"),
                parameters,
                Permission.READ,
                handler,
            )

        self.registry = ToolRegistry(
            [
                Tool(
                    "search_project",
                    "Search the project (notebooks and code files) through RubberDuck's "
                    "hybrid index (keywords and embeddings); returns the best passages with "
                    "their location.",
                    SEARCH_SCHEMA,
                    Permission.READ,
                    search,
                    timeout_s=SEARCH_TIMEOUT_S,
                ),
                on_notebook(list_cells.TOOL),
                on_notebook(read_cell.TOOL),
                read_file.TOOL,
            ]
        )
        assert all(t.permission is Permission.READ for t in self.registry)
        self.dispatcher = Dispatcher(self.registry)

    def _close_when_idle(self) -> None:
        if self._closer is None or self._closer.done():
            self._closer = asyncio.ensure_future(self._close_later())

    async def _close_later(self) -> None:
        while True:
            await asyncio.sleep(INDEX_IDLE_CLOSE_S)
            if await asyncio.to_thread(self.index.close_if_idle, INDEX_IDLE_CLOSE_S):
                return

    async def call(self, name: str, arguments: dict[str, Any] | None) -> tuple[str, bool]:
        """The answer's text and whether it is an error."""
        import json

        from .llm.client import ToolCall
        from .protocol import ChatContext
        from .tools.base import ToolContext

        args = dict(arguments or {})
        notebook = args.get("notebook")
        ctx = ToolContext(
            context=ChatContext(notebook_path=notebook if isinstance(notebook, str) else None),
            files=self.files,
        )
        call = ToolCall(id="mcp", name=name, arguments=json.dumps(args))
        outcome = await self.dispatcher.run(call, ctx)
        return outcome.result.text, not outcome.result.ok


def build_server(tools: ReadTools) -> Any:
    """The low-level MCP server over `tools` (our schemas as they are)."""
    import mcp_types as types
    from mcp.server.lowlevel import Server

    from . import __version__

    listed = [
        types.Tool(
            name=t.name,
            description=t.description,
            input_schema=dict(t.parameters),
            annotations=types.ToolAnnotations(
                read_only_hint=True, destructive_hint=False, open_world_hint=False
            ),
        )
        for t in tools.registry
    ]

    async def list_tools(_ctx: Any, _params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        text, error = await tools.call(params.name, params.arguments)
        return types.CallToolResult(content=[types.TextContent(text=text)], is_error=error)

    return Server(
        SERVER_NAME,
        version=__version__,
        instructions=(
            f"RubberDuck's read-only tools over the project at {tools.root}: search it, "
            "list and read notebook cells, read files. Paths are relative to that root."
        ),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_stdio(server: Any) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def serve_http(server: Any, port: int) -> None:
    import uvicorn

    # 127.0.0.1 only, and the SDK's DNS-rebinding guard: a web page cannot reach it.
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    await uvicorn.Server(config).serve()


def mcp_command(argv: list[str], wiring: CliWiring) -> int:
    """`jupyter rubberduck mcp [--root DIR] [--db FILE] [--embedder SPEC] [--http PORT]`."""
    parser = argparse.ArgumentParser(
        prog="jupyter rubberduck mcp",
        description="Serve RubberDuck's read tools (project search, notebook cells, files) "
        "to other agents over MCP: stdio by default, or streamable HTTP on 127.0.0.1.",
    )
    parser.add_argument("--root", default=".", help="The project folder (default: here).")
    parser.add_argument("--db", help="The index database (default: the server's for --root).")
    parser.add_argument(
        "--embedder",
        help="The index's embedder (default: the server's index_embedder, else minilm); "
        "it must be the one the index was built with.",
    )
    parser.add_argument("--embedder-api-base", help="With litellm:<model>: the endpoint.")
    parser.add_argument(
        "--http", type=int, metavar="PORT", help="Serve streamable HTTP on 127.0.0.1:PORT/mcp."
    )
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    if not root.is_dir():
        print(f"{root} is not a folder", file=sys.stderr)
        return 2
    tools = read_tools(root, args, wiring)
    server = build_server(tools)
    try:
        if args.http:
            asyncio.run(serve_http(server, args.http))
        else:
            asyncio.run(serve_stdio(server))
    except KeyboardInterrupt:
        pass
    finally:
        tools.index.close_if_idle(0.0)
    return 0


def read_tools(root: Path, args: argparse.Namespace, wiring: CliWiring) -> ReadTools:
    from .domain.actions import ProjectFiles
    from .domain.models import Project
    from .index.cli import embedder_config

    try:
        settings = wiring.server_settings() if wiring.server_settings is not None else {}
    except Exception:  # an unreadable config file: the flags and defaults still work
        settings = {}
    if args.db:
        db = Path(args.db).expanduser()
    elif settings.get("index_db_path"):
        db = Path(settings["index_db_path"]).expanduser()
    else:
        from jupyter_core.paths import jupyter_data_dir

        from .index.service import default_db_path

        db = default_db_path(Path(jupyter_data_dir()), root)
    max_bytes = int(settings.get("index_max_file_bytes") or 2_000_000)
    project = Project.for_root(str(root), owner="mcp")
    files = ProjectFiles(project, max_file_bytes=max_bytes)
    index = ProjectIndex(root, db, lambda: embedder_config(args, wiring), wiring.provider)
    return ReadTools(root, index, files)
