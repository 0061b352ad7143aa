"""CompletionService: one ghost-text request, from frame to trimmed text.

Order of work, cheapest first, so a keystroke that can be answered without a model costs
microseconds: the budgeted context (context.py) and its cache key; the cache (cache.py);
the project snippets when the index is open (project.py, at most ~10 ms, off the loop);
the prompt (prompt.py); the model through `LLMService.stream_completion` (redaction,
the completions' own rate limit, breakers, usage); the guards (guards.py) on the result.

A cancel is the caller cancelling the task that awaits `complete`: the model stream is
closed by `aclosing` on the way out (the upstream HTTP response with it).
The stream is also closed early once the raw text has more lines than can be shown
(`max_lines`, or one line when not multiline): what follows would be trimmed anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..llm.errors import LLMError
from ..llm.ratelimit import FairRateLimiter, Limits
from ..protocol import CompletionRequest, ErrorCode
from .cache import CompletionCache
from .context import assemble, project_query, with_snippets
from .guards import trim_completion
from .project import ProjectSnippets
from .prompt import build_prompt
from .settings import NO_MODEL_REASON, CompletionSettings

if TYPE_CHECKING:
    from ..index.service import IndexService
    from ..llm.service import LLMService

# Users whose limiter state is kept; as chat's limiter.
MAX_USERS = 10_000


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    cached: bool
    model: str | None = None
    # Where the time went, for benchmarks/completion.py: seconds of context assembly and
    # project search before the model was asked.
    prepare_s: float = 0.0


class CompletionService:
    def __init__(
        self,
        llm: LLMService,
        settings: CompletionSettings,
        *,
        index: IndexService | None = None,
        limiter: FairRateLimiter | None = None,
        cache: CompletionCache | None = None,
    ) -> None:
        self.llm = llm
        self.settings = settings
        # Its own buckets: completions come at typing speed, and chat must never wait for
        # them (nor they for chat). No global bucket: the provider's own 429 is the global
        # limit, and a queue would only deliver stale completions.
        self.limiter = limiter or FairRateLimiter(
            global_limits=Limits(),
            user_limits=Limits(requests_per_minute=max(0, settings.requests_per_minute)),
            max_queue=0,
            max_users=MAX_USERS,
        )
        self.cache = cache if cache is not None else CompletionCache()
        self.project = ProjectSnippets(index if settings.use_index else None)

    def status(self) -> dict[str, object]:
        return self.settings.status()

    async def complete(
        self, user: str, request: CompletionRequest, on_chunk: Callable[[str], None]
    ) -> Completion:
        """The trimmed completion; raises LLMError (no model, rate limited, provider)."""
        settings = self.settings
        entry = settings.entry
        if entry is None:
            raise LLMError(ErrorCode.NO_MODEL, NO_MODEL_REASON)
        started = time.perf_counter()
        context = assemble(request, settings.context_chars)
        key = "\x00".join(
            (
                entry.name,
                request.path,
                request.language,
                str(request.multiline),
                str(request.max_lines),
                context.key(),
            )
        )
        cached = self.cache.get(user, key, request.prefix, request.suffix)
        if cached is not None:
            return Completion(cached, cached=True, model=entry.name)
        if self.project.ready:
            query = project_query(context.prefix, context.cells[::-1])
            snippets = await self.project.find(query, exclude_path=request.path)
            context = with_snippets(context, snippets, settings.context_chars)
        prompt = build_prompt(
            context,
            fim=settings.fim,
            path=request.path,
            language=request.language,
            multiline=request.multiline,
            max_lines=request.max_lines,
            max_tokens=settings.max_tokens,
        )
        prepare_s = time.perf_counter() - started
        parts: list[str] = []
        newlines = 0
        shown_lines = request.max_lines if request.multiline else 1
        model = entry.name
        pieces = self.llm.stream_completion(
            user=user, entries=[entry], prompt=prompt, limiter=self.limiter
        )
        async with aclosing(pieces):
            async for piece in pieces:
                if piece.finish_reason is not None:
                    model = piece.model_name or model
                    break
                if not piece.text:
                    continue
                parts.append(piece.text)
                on_chunk(piece.text)
                newlines += piece.text.count("\n")
                # Lines past what can be shown (one more line for a leading break): stop
                # the provider instead of paying for text the guards would cut.
                if newlines > shown_lines and "".join(parts).strip():
                    break
        text = trim_completion(
            "".join(parts),
            request.prefix,
            request.suffix,
            multiline=request.multiline,
            max_lines=request.max_lines,
        )
        self.cache.put(user, key, request.prefix, request.suffix, text)
        return Completion(text, cached=False, model=model, prepare_s=prepare_s)
