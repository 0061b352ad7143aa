# Example RubberDuck configuration. Copy to ~/.jupyter/jupyter_server_config.py (one user)
# or to a system config dir such as /etc/jupyter/ (an admin, for every user of a hub).
# Every value here can also come from the environment; these traitlets win over it.
c = get_config()  # noqa: F821  (provided by Jupyter when it loads this file)

# Models in LiteLLM's model_list shape (see docs/models.md). Keys come from the server's
# environment through "os.environ/NAME" and never reach the browser or the logs.
c.RubberDuckApp.models = [
    {
        "model_name": "fast",
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "os.environ/OPENAI_API_KEY"},
    },
    {
        "model_name": "local",
        "litellm_params": {"model": "ollama/qwen2.5-coder:7b", "api_base": "http://127.0.0.1:11434"},
    },
]
c.RubberDuckApp.fallbacks = {"fast": ["local"]}
c.RubberDuckApp.default_model = "fast"
c.RubberDuckApp.allowed_models = ["fast", "local"]  # None: users may pick any

# Or a LiteLLM proxy's config.yaml as it is (model_list, router_settings' fallbacks,
# context_window_fallbacks, num_retries, timeout); unused keys are named at start:
# c.RubberDuckApp.models_file = "/etc/jupyter/litellm_config.yaml"

# Or the one-model shortcut instead of `models` (also $RUBBERDUCK_MODEL / _API_BASE / _API_KEY):
# c.RubberDuckApp.model = "openai/team-default"
# c.RubberDuckApp.api_base = "https://litellm-proxy.internal.example/v1"

# Timeouts, retries and breakers.
c.RubberDuckApp.connect_timeout = 10.0
c.RubberDuckApp.first_token_timeout = 60.0
c.RubberDuckApp.idle_timeout = 30.0
c.RubberDuckApp.request_timeout = 600.0
c.RubberDuckApp.max_attempts = 2
c.RubberDuckApp.max_retry_after = 20.0
c.RubberDuckApp.breaker_failure_threshold = 5
c.RubberDuckApp.breaker_reset_timeout = 30.0
c.RubberDuckApp.max_output_tokens = 0  # cap per answer; 0 = provider default

# Rate limits (0 = unlimited), fair across users.
c.RubberDuckApp.user_requests_per_minute = 20
c.RubberDuckApp.user_tokens_per_minute = 100_000
c.RubberDuckApp.global_requests_per_minute = 0
c.RubberDuckApp.global_tokens_per_minute = 0
c.RubberDuckApp.rate_limit_wait = 20.0

# Inline completions (ghost text in cells and files; docs/completion.md): a small, fast
# code model; None turns them off. Their rate limit is their own, apart from chat's.
c.RubberDuckApp.completion_model = None  # e.g. "openai/qwen2.5-coder:1.5b" (Ollama)
c.RubberDuckApp.completion_fim = "auto"  # auto | true | false
c.RubberDuckApp.completion_rate_limit = 120  # per user per minute; 0 = unlimited
c.RubberDuckApp.completion_max_tokens = 128
c.RubberDuckApp.completion_context_chars = 6000
c.RubberDuckApp.completion_use_index = True

# Limits on what clients may send.
c.RubberDuckApp.max_frame_bytes = 262144
c.RubberDuckApp.max_message_chars = 100000
c.RubberDuckApp.max_turns_per_connection = 4

# Resuming after a dropped WebSocket: how long a turn waits for its client to come back
# (then it is cancelled), and what is kept for it per user.
c.RubberDuckApp.resume_grace_seconds = 60.0
c.RubberDuckApp.resume_max_frames = 20000
c.RubberDuckApp.resume_max_bytes = 4 * 1024 * 1024
c.RubberDuckApp.resume_max_turns = 8

# Give kernels the server URL and a scoped token so %%duck works with no setup.
c.RubberDuckApp.export_kernel_env = True

# The project index (docs/index.md).
c.RubberDuckApp.index_on_save = True  # re-index files saved through Jupyter
c.RubberDuckApp.index_watch = True  # ...and files changed on disk by git, editors, scripts
c.RubberDuckApp.index_watch_debounce = 1.0  # seconds of quiet before a refresh
c.RubberDuckApp.index_watch_polling = False  # True on network file systems without inotify
c.RubberDuckApp.index_embedder = "minilm"  # or "model2vec", or "litellm:<model>":
# c.RubberDuckApp.index_embedder = "litellm:openai/text-embedding-3-small"
# c.RubberDuckApp.index_embedder_api_key = "os.environ/OPENAI_API_KEY"
# c.RubberDuckApp.index_embedder_api_base = "http://127.0.0.1:11434/v1"  # e.g. Ollama, vLLM
c.RubberDuckApp.index_embedder_window = 256  # tokens per chunk
c.RubberDuckApp.index_progressive = True  # searchable in seconds (BM25 + model2vec), MiniLM after
c.RubberDuckApp.index_warm_up = True  # load an index's model after start, not at the 1st chat

# Project rules: AGENTS.md and .rubberduck/rules/*.md (docs/engines.md).
c.RubberDuckApp.project_rules = True
c.RubberDuckApp.project_rules_max_chars = 8_000  # whole rules, in order, up to this size

# The agent, /agent (docs/agent.md).
c.RubberDuckApp.agent_max_steps = 12  # model calls per turn
c.RubberDuckApp.agent_max_tokens = 120_000  # tokens per turn
c.RubberDuckApp.agent_max_seconds = 300.0  # wall time per turn
c.RubberDuckApp.agent_tool_timeout = 10.0  # seconds per tool call
# MCP servers' tools for the agent (docs/agent.md#mcp); on JupyterHub the admin's list
# goes in rubberduck_mcp.json in a system config dir instead.
# c.RubberDuckApp.mcp_servers = {
#     "github": {"command": ["github-mcp-server", "stdio"], "permission": "read",
#                "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}"}},
#     "docs": {"url": "https://mcp.example.com/mcp", "permission": "read",
#              "headers": {"Authorization": "Bearer ${DOCS_MCP_TOKEN}"}, "timeout": 15},
# }
c.RubberDuckApp.mcp_allow_user_servers = True  # also the user's <config dir>/rubberduck/mcp.json
c.RubberDuckApp.agent_run_timeout = 120.0  # seconds to wait for a run's approval, then its result

# Conversations, engines and memory (docs/engines.md).
# c.RubberDuckApp.conversations_db_path = "/srv/rubberduck/conversations.sqlite3"
c.RubberDuckApp.user_identity = "auto"  # "jupyter_user" on a shared server, "server_owner"
c.RubberDuckApp.project_members = None  # or ["alice", "bob"]: who may apply changes to files
c.RubberDuckApp.session_mailbox_size = 8  # messages waiting per conversation
c.RubberDuckApp.memory_tokens = 0  # 0: half the model's input window (8k when unknown)
c.RubberDuckApp.correction_rounds = 2  # re-prompts when generated code fails its checks

# Plugins (docs/plugins.md): a folder, installed packages, who may load.
# c.RubberDuckApp.plugins_dir = "/srv/rubberduck/plugins"  # default: <config dir>/rubberduck/plugins
c.RubberDuckApp.plugins_entry_points = True  # packages with a "rubberduck.plugins" entry point
c.RubberDuckApp.plugins_allow = None  # or ["doc", "tests", "pandas-review"]: only these load
c.RubberDuckApp.plugins_deny = []  # e.g. ["multi_step"]: never load (built-ins included)
c.RubberDuckApp.plugins_reload = True  # reload a plugin of plugins_dir when its file changes
c.RubberDuckApp.plugin_hook_timeout = 2.0  # seconds an async hook may take
c.RubberDuckApp.plugin_command_timeout = 120.0  # seconds a plugin's slash command may take
c.RubberDuckApp.plugin_max_failures = 3  # consecutive failures before a plugin is disabled
