"""Inline code completions (ghost text): context, prompt, guards, cache, the service.

The handler (handlers/complete.py) parses a `complete` frame (protocol.py) and hands it to
`CompletionService.complete`, which answers from the cache when it can, else assembles
the context (context.py, project.py), builds a FIM or chat prompt (prompt.py), streams it
through `LLMService.stream_completion` and trims the result (guards.py). docs/completion.md
describes the whole path, its settings and what is sent.
"""
