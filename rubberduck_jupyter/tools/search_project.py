"""search_project: the project index (hybrid BM25 + vectors) through the Retriever."""

from __future__ import annotations

from typing import Any

from .base import Permission, Tool, ToolContext, ToolError, ToolResult

MAX_HIT_CHARS = 1_200


async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    if ctx.retriever is None:
        raise ToolError("there is no project index on this server; use read_file instead")
    found = await ctx.retriever.lookup(
        args["query"], user=ctx.user, top_k=args.get("top_k", 5), first_n=ctx.cited + 1
    )
    if not found.citations:
        why = f" ({found.notice[1]})" if found.notice else ""
        return ToolResult(f"No results for {args['query']!r}{why}.")
    # Numbered on from earlier searches of the turn, so each [n] names one source.
    ctx.cited += len(found.citations)
    if ctx.on_citations is not None:
        await ctx.on_citations(found.citations)
    parts = []
    for c in found.citations:
        text = c.text if len(c.text) <= MAX_HIT_CHARS else c.text[:MAX_HIT_CHARS] + "…"
        parts.append(f"[{c.n}] {c.location} ({c.kind})\n{text}")
    return ToolResult("\n\n".join(parts), data={"hits": len(found.citations)})


TOOL = Tool(
    name="search_project",
    description=(
        "Search the user's project (notebooks and code files) for code or text relevant to "
        "a query; returns the best passages with their location."
    ),
    parameters={
        "type": "object",
        "properties": {
            "query": {"type": "string", "maxLength": 2000},
            "top_k": {"type": "integer", "minimum": 1, "maximum": 10},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
    permission=Permission.READ,
    handler=run,
)
