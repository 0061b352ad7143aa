"""The agent's tools: one small module per tool, each a typed JSON schema, a permission
(`read`, `write`, `run`) and an async handler; a registry of them and a dispatcher that
validates a model's arguments, times each call out and truncates what goes back.

Read tools look (the notebook on disk, project files, the index, the variables the client
sent); write tools never write: each becomes a CodeSuggestion the user approves, after the
review gate (gate.py). `run` tools (running a cell) and MCP servers are the next steps."""
