"""One MCP server, as this process holds it: started on demand, its tools listed once,
its calls bounded, and taken down (then retried with backoff) when it fails.

The SDK's client is an anyio context (a task group around the transport), which must
be entered and left by one task: each connection has an owner task that opens the
client, lists the tools, and waits until it is told to close. Calls come from the turns'
tasks, on the open session (JSON-RPC multiplexes them). Start-up and every call run
under the server's timeout; a server that hangs, exits or breaks its pipe is marked
failed, its owner closes it in the background (the SDK's stdio shutdown takes up to ~6 s
for a stuck process: no turn waits for it), and the next start waits 5 s, then 10, 20...
up to 5 minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from ..base import ToolError
from .config import McpServerSpec

log = logging.getLogger(__name__)

State = Literal["idle", "starting", "ready", "failed", "stopped"]

BACKOFF_FIRST_S = 5.0
BACKOFF_MAX_S = 300.0
# A server lists its tools in pages; a listing that never ends is cut here.
MAX_LIST_PAGES = 20
# Time the owner gets to close the client at stop before it is cancelled.
CLOSE_WAIT_S = 8.0


class McpUnavailable(ToolError):
    """The server is not there (failed, timed out, exited); said to the model as a tool
    error, to the user as a notice."""


async def load_sdk() -> None:
    """Import the SDK (~0.5 s here) in a thread, so the first agent turn does not freeze
    the event loop; later calls find it in sys.modules."""
    await asyncio.to_thread(importlib.import_module, "mcp.client.client")


class McpConnection:
    def __init__(
        self,
        spec: McpServerSpec,
        *,
        root: str | None = None,
        scrub: Callable[[str], str] = str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.root = root
        self.scrub = scrub  # what an error says passes here first (secrets out)
        self.clock = clock
        self.state: State = "idle"
        self.tools: list[Any] = []  # mcp_types.Tool, those the allow-list lets through
        self.error = ""
        self.failures = 0
        self.retry_at = 0.0
        self.reported = True  # whether a user was told of the current failure
        self._client: Any = None
        self._owner: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._closing = asyncio.Event()

    # --- life ------------------------------------------------------------------------

    def start(self) -> asyncio.Future[None] | None:
        """Starts the server when it is idle, or failed and its backoff is over. The
        future resolves (never raises) when it is ready or has failed; None: nothing to
        wait for (ready already, stopped, or waiting out its backoff)."""
        if self.state == "starting":
            return self._ready
        if self.state in ("ready", "stopped"):
            return None
        if self.state == "failed" and self.clock() < self.retry_at:
            return None
        if self._owner is not None and not self._owner.done():
            return None  # the failed one is still closing: the next turn tries again
        self.state = "starting"
        self._closing = asyncio.Event()
        self._ready = asyncio.get_running_loop().create_future()
        self._owner = asyncio.create_task(self._own(), name=f"rubberduck-mcp-{self.spec.name}")
        return self._ready

    async def _own(self) -> None:
        # The start-up bound is a timer, not a timeout around the start: when it fires the
        # waiting turn hears at once, and the SDK's clean-up of a stuck process (up to
        # ~6 s) goes on in this task, in the background.
        watchdog = asyncio.get_running_loop().call_later(self.spec.start_timeout_s, self._timed_out)
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    await load_sdk()
                    client = await self._open(stack)
                    tools = await self._list(client)
                finally:
                    watchdog.cancel()
                if self.state != "starting":
                    return  # stopped while it started
                self._client = client
                self.tools = [t for t in tools if self.spec.allows(t.name)]
                self.state = "ready"
                self.failures = 0
                self.error = ""
                self._resolve()
                log.info(
                    "RubberDuck: MCP server %s (%s) started: %d tool(s)",
                    self.spec.name,
                    self.spec.where(),
                    len(self.tools),
                )
                await self._closing.wait()
        except asyncio.CancelledError:
            # Not by stop() or the start-up timer (they set the state first): the SDK's
            # task group, when its transport died.
            if self.state in ("starting", "ready"):
                self._fail("its connection was cancelled")
            raise
        except BaseException as exc:  # ExceptionGroups from the SDK's task groups too
            if self.state in ("starting", "ready"):
                self._fail(f"it failed: {describe(exc)}")
            else:
                log.debug("RubberDuck: MCP server %s closed with %s", self.spec.name, describe(exc))
        finally:
            self._client = None
            self._resolve()

    def _timed_out(self) -> None:
        if self.state == "starting" and self._owner is not None:
            self._fail(f"it did not start within {self.spec.start_timeout_s:g} s")
            self._owner.cancel()

    async def _open(self, stack: contextlib.AsyncExitStack) -> Any:
        from mcp import Client, StdioServerParameters

        spec = self.spec
        if spec.url:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            # Headers (a token) live in our own HTTP client, never in a URL or a log line.
            http = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers=dict(spec.headers),
                    timeout=httpx2.Timeout(spec.timeout_s, read=max(spec.timeout_s, 300.0)),
                )
            )
            server: Any = streamable_http_client(spec.url, http_client=http)
        else:
            server = StdioServerParameters(
                command=spec.command[0],
                args=list(spec.command[1:]),
                env=dict(spec.env) or None,
                cwd=spec.cwd or self.root,
            )
        # Our own bounds (the start-up timer, each call's timeout) come first; the SDK's
        # read timeout is a backstop above both.
        backstop = max(spec.timeout_s, spec.start_timeout_s) + 1.0
        client = Client(server, read_timeout_seconds=backstop, cache=None)
        return await stack.enter_async_context(client)

    async def _list(self, client: Any) -> list[Any]:
        tools: list[Any] = []
        cursor = None
        for _ in range(MAX_LIST_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    def _resolve(self) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def _fail(self, reason: str) -> None:
        if self.state == "stopped":
            return
        self.state = "failed"
        self.error = self.scrub(reason)
        self.failures += 1
        delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self.failures - 1))
        self.retry_at = self.clock() + delay
        self.reported = False
        self.tools = []
        self._client = None
        self._closing.set()
        self._resolve()
        log.warning(
            "RubberDuck: MCP server %s (%s) is unavailable: %s; next try in %g s",
            self.spec.name,
            self.spec.where(),
            self.error,
            delay,
        )

    async def stop(self) -> None:
        """Closes it (server stop); waits a bounded time for the owner, then cancels."""
        self.state = "stopped"
        self._closing.set()
        owner = self._owner
        if owner is None or owner.done():
            return
        _done, pending = await asyncio.wait({owner}, timeout=CLOSE_WAIT_S)
        for task in pending:
            task.cancel()

    # --- calls -------------------------------------------------------------------------

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """The server's CallToolResult. A failure of the server (timeout, exit, broken
        pipe) marks it failed and raises McpUnavailable; an error the server answers
        (unknown tool, bad arguments) raises ToolError. Cancellation (Stop) passes."""
        client = self._client
        if self.state != "ready" or client is None:
            raise McpUnavailable(self.unavailable())
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED

        try:
            async with asyncio.timeout(self.spec.timeout_s):
                return await client.call_tool(tool, arguments)
        except TimeoutError:
            self._fail(f"a call to {tool} took longer than {self.spec.timeout_s:g} s")
        except MCPError as exc:
            if exc.code != CONNECTION_CLOSED:
                raise ToolError(self.scrub(f"{self.spec.name} answered: {exc.message}")) from None
            self._fail(f"it exited during a call to {tool}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(f"a call to {tool} failed: {describe(exc)}")
        raise McpUnavailable(self.unavailable())

    def unavailable(self) -> str:
        why = f": {self.error}" if self.error else ""
        return f"the MCP server {self.spec.name} is unavailable{why}"


def describe(exc: BaseException) -> str:
    """An exception as one line, the first leaf of an ExceptionGroup (the SDK's task
    groups wrap what failed)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
