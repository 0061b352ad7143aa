"""MCP servers' tools for the agent: config.py (which servers, the hub rules),
connection.py (one server: lazy start, bounded calls, failure and backoff), adapter.py
(an MCP tool as one of ours, `<server>__<tool>`), manager.py (McpServers, the agent's
per-turn tool source). The `mcp` SDK is imported on the first agent turn, never at
server start. The other direction, RubberDuck's read tools as an MCP server, is
rubberduck_jupyter/mcp_server.py (`jupyter rubberduck mcp`)."""

from .config import McpConfigError, McpServerSpec
from .manager import McpServers

__all__ = ["McpConfigError", "McpServerSpec", "McpServers"]
