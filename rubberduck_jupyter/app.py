"""RubberDuckApp: the server extension's configuration, wiring, start and stop."""

from __future__ import annotations

import asyncio
import getpass
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.base.call_context import CallContext
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import ensure_async
from tornado.ioloop import IOLoop
from traitlets import Any as AnyTrait
from traitlets import Bool, CaselessStrEnum, Dict, Float, Int, List, Unicode

from . import __version__
from .context.redact import Redactor
from .index.embedder_config import EmbedderConfig, EmbedderConfigError, build_embedder
from .index.service import IndexService, default_db_path
from .llm.breaker import BreakerBoard
from .llm.cache import ResponseCache
from .llm.client import Timeouts
from .llm.config import ModelsConfig, build_models_config
from .llm.detect import DEFAULT_OLLAMA_URL, detect_ollama, ollama_config
from .llm.ratelimit import FairRateLimiter, Limits
from .llm.retry import RetryPolicy
from .llm.service import WARM_UP_DELAY_S, LLMService, ServiceSettings
from .plugin_host import PluginHost
from .plugin_settings import plugin_settings
from .protocol import PROTOCOL_VERSION
from .runtime import metrics
from .runtime.gil import favour_event_loop
from .runtime.loop_lag import LoopLagMonitor
from .runtime.process import memory
from .runtime.supervisor import Restart, Supervisor
from .sessions.actor import ActorRegistry
from .sessions.identity import KernelTokens, kernel_start_user, user_key
from .sessions.manager import (
    DEFAULT_CONTEXT_TOKENS,
    MAX_HISTORY_TOKENS,
    SessionManager,
    litellm_context_tokens,
)
from .sessions.replay import ReplayHub, ReplayLimits
from .sessions.running import RunningTurns
from .tools.mcp import McpServers

SERVER_URL_ENV = "RUBBERDUCK_SERVER_URL"
NOTEBOOK_PATH_ENV = "RUBBERDUCK_NOTEBOOK_PATH"


def default_conversations_path(data_dir: Path, root: Path) -> Path:
    """One file per project folder, under the Jupyter data dir (outside the project)."""
    import hashlib

    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    name = root.resolve().name or "root"
    return data_dir / "rubberduck" / f"conversations-{name}-{digest}.sqlite3"


KERNEL_TOKEN_ENV = "RUBBERDUCK_KERNEL_TOKEN"


class RubberDuckApp(ExtensionApp):
    name = "rubberduck_jupyter"
    description = "RubberDuck: an AI coding assistant inside JupyterLab"
    load_other_extensions = True

    # --- models -------------------------------------------------------------------------
    models = List(
        Dict(),
        default_value=[],
        config=True,
        help="LiteLLM-style model_list: [{'model_name': ..., 'litellm_params': {'model': ..., "
        "'api_base': ..., 'api_key': 'os.environ/NAME'}}]. Empty: $RUBBERDUCK_MODELS_FILE, "
        "then the one-model shortcut (model / $RUBBERDUCK_MODEL), then detection.",
    )
    fallbacks = AnyTrait(
        None,
        allow_none=True,
        config=True,
        help="Ordered fallbacks per model_name: {'gpt': ['claude', 'local']} or LiteLLM's "
        "[{'gpt': [...]}].",
    )
    models_file = Unicode(
        "",
        config=True,
        help="A LiteLLM config.yaml (or JSON) to read models from when `models` is empty: "
        "model_list, router_settings and litellm_settings (fallbacks, "
        "context_window_fallbacks, num_retries, timeout), as the proxy reads it; keys "
        "RubberDuck does not use are named at start and by doctor. "
        "Empty: $RUBBERDUCK_MODELS_FILE.",
    )
    default_model = Unicode("", config=True, help="model_name used when a user picks none.")
    allowed_models = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help="model_names users may pick; None allows every configured model.",
    )
    model = Unicode(
        "",
        config=True,
        help="One-model shortcut: a litellm name such as 'openai/gpt-4o-mini'. "
        "Empty: $RUBBERDUCK_MODEL.",
    )
    api_base = Unicode(
        "",
        config=True,
        help="With `model`: an OpenAI-compatible endpoint or LiteLLM proxy. "
        "Empty: $RUBBERDUCK_API_BASE.",
    )
    api_key = Unicode(
        "",
        config=True,
        help="With `model`: its key. Prefer the provider's own variable or $RUBBERDUCK_API_KEY. "
        "Never sent to the browser or logged.",
    )
    detect_ollama = Bool(
        True, config=True, help="With no model configured, use a local Ollama if one answers."
    )
    ollama_url = Unicode(DEFAULT_OLLAMA_URL, config=True, help="Where to look for Ollama.")

    # --- timeouts, retries, breakers -----------------------------------------------------
    connect_timeout = Float(10.0, config=True, help="Seconds to open a connection to a model.")
    first_token_timeout = Float(
        60.0, config=True, help="Seconds until the first token; then retry or fail over."
    )
    idle_timeout = Float(30.0, config=True, help="Longest silence between chunks mid-answer.")
    request_timeout = Float(600.0, config=True, help="Seconds one model call may take in all.")
    max_output_tokens = Int(0, config=True, help="Cap on tokens per answer; 0 means no cap.")
    max_attempts = Int(
        2,
        config=True,
        help="Tries per model before failing over (retries only before the first token).",
    )
    retry_base_delay = Float(0.5, config=True, help="First backoff delay in seconds (jittered).")
    max_retry_after = Float(
        20.0, config=True, help="Longest Retry-After honoured; longer waits fail over instead."
    )
    breaker_failure_threshold = Int(
        5, config=True, help="Consecutive failures that open a provider's circuit breaker."
    )
    breaker_reset_timeout = Float(
        30.0, config=True, help="Seconds a breaker stays open before one probe is let through."
    )
    cache_entries = Int(
        128,
        config=True,
        help="Recent answers kept to serve (marked cached) while breakers are open; 0 disables.",
    )
    direct_openai_streaming = Bool(
        True,
        config=True,
        help="Stream `openai/<name>` models (OpenAI, vLLM, llama.cpp, LM Studio, a LiteLLM "
        "proxy) straight over HTTP instead of through litellm (~0.04 ms of CPU per chunk "
        "instead of ~0.6-1 ms; docs/models.md). "
        "Other providers always use litellm. False sends every call through litellm.",
    )

    # --- rate limits ------------------------------------------------------------------
    user_requests_per_minute = Int(0, config=True, help="Per user; 0 = unlimited.")
    user_tokens_per_minute = Int(0, config=True, help="Per user; 0 = unlimited.")
    global_requests_per_minute = Int(0, config=True, help="For the whole server; 0 = unlimited.")
    global_tokens_per_minute = Int(0, config=True, help="For the whole server; 0 = unlimited.")
    rate_limit_queue_size = Int(64, config=True, help="Requests that may wait for capacity.")
    rate_limit_wait = Float(
        20.0, config=True, help="Seconds a request may wait for capacity before 'rate_limited'."
    )

    # --- inline completions (docs/completion.md) ---------------------------------------
    completion_model = Unicode(
        None,
        allow_none=True,
        config=True,
        help="The model of inline completions (ghost text): a configured model_name, or a "
        "litellm model string sent with `api_base`/`api_key`. A small, fast code model. "
        "None turns completions off.",
    )
    completion_fim = CaselessStrEnum(
        ["auto", "true", "false"],
        default_value="auto",
        config=True,
        help="Send completions fill-in-the-middle (prompt + suffix to /completions): 'auto' "
        "for models named like FIM-trained code models (codestral, deepseek-coder, "
        "starcoder, qwen2.5-coder, ...), 'true'/'false' for any model.",
    )
    completion_rate_limit = Int(
        120,
        config=True,
        help="Completions per user per minute, apart from chat's limits; 0 = unlimited.",
    )
    completion_max_tokens = Int(128, config=True, help="Tokens a completion may generate.")
    completion_context_chars = Int(
        6000,
        config=True,
        help="Characters of context beside the cursor's code: kernel variables, project "
        "code from the index, the notebook's earlier cells (nearest first).",
    )
    completion_use_index = Bool(
        True,
        config=True,
        help="Add the project's code from the index to completions when the index is open "
        "(searched within ~10 ms, never waited for).",
    )

    # --- project index ----------------------------------------------------------------
    index_db_path = Unicode(
        "",
        config=True,
        help="DuckDB file of the project index. Empty: one per root folder under the Jupyter "
        "data dir (jupyter --data-dir)/rubberduck/.",
    )
    index_max_file_bytes = Int(2_000_000, config=True, help="Larger files are not indexed.")
    index_on_save = Bool(
        True, config=True, help="Re-index a file shortly after it is saved, once an index exists."
    )
    agent_max_steps = Int(
        12,
        config=True,
        help="The agent stops after this many model calls in one turn (each may call tools).",
    )
    agent_max_tokens = Int(
        120_000,
        config=True,
        help="The agent stops once one turn's model calls have used this many tokens.",
    )
    agent_max_seconds = Float(
        300.0, config=True, help="The agent stops a turn after this many seconds."
    )
    agent_tool_timeout = Float(
        10.0,
        config=True,
        help="Seconds one tool call may take before the agent reports it timed out.",
    )
    agent_run_timeout = Float(
        120.0,
        config=True,
        help="Seconds the agent waits for the user to allow running a cell, and again for "
        "the cell's result, before telling the model the user did not answer (never past "
        "the turn's agent_max_seconds).",
    )
    mcp_servers = Dict(
        default_value={},
        config=True,
        help="MCP servers whose tools the agent may use, by name: {'command': [...], 'env': "
        "{...}, 'cwd': ...} (stdio) or {'url': ..., 'headers': {...}} (streamable HTTP), plus "
        "'permission' (read | write | run; default run), 'tools' (an allow-list) and "
        "'timeout' (seconds per call, default 10; 'start_timeout' for start-up, default "
        "'timeout'). Values may name variables: '${TOKEN}'. Started on "
        "the first agent turn; only read-permission tools are offered for now. On JupyterHub "
        "the admin's list goes in rubberduck_mcp.json in a system config dir (docs/agent.md).",
    )
    mcp_allow_user_servers = Bool(
        True,
        config=True,
        help="Whether the user's own MCP servers (mcp_user_servers_file) are used beside "
        "mcp_servers; they can never replace one of those. An admin's rubberduck_mcp.json "
        "can turn this off for everyone.",
    )
    mcp_user_servers_file = Unicode(
        "",
        config=True,
        help="The user's MCP servers, {'mcp_servers': {name: {...}}} in JSON. Empty: "
        "<jupyter config dir>/rubberduck/mcp.json (jupyter --config-dir).",
    )
    project_rules = Bool(
        True,
        config=True,
        help="Add the project's rules (AGENTS.md at the root, .rubberduck/rules/*.md with "
        "optional `applies_to` globs in front matter) to every engine's system prompt; "
        "`/rules` shows which apply.",
    )
    project_rules_max_chars = Int(
        8_000,
        config=True,
        help="At most this many characters of project rules go into a prompt (AGENTS.md "
        "first, then the rules files by name); the rest are left out and listed by /rules.",
    )
    index_ann_threshold = Int(
        50_000,
        config=True,
        help="From this many chunks on, vector search uses an approximate HNSW graph of int8 "
        "vectors (usearch), saved next to the index as <db>.usearch; below it, search is "
        "exact over float32 vectors. 0 always uses the graph.",
    )
    index_progressive = Bool(
        True,
        config=True,
        help="With a local transformer embedder ('minilm'): index in two tiers, chunks with "
        "BM25 terms and fast static vectors (model2vec) first, so the project is searchable "
        "in seconds, then the transformer's vectors, replacing the static ones batch by "
        "batch. Without model2vec (or before its one-time distillation) the first tier is "
        "BM25 alone. Off: each file is searchable once the transformer has embedded it.",
    )
    index_warm_up = Bool(
        True,
        config=True,
        help="Once an index exists, open it and load its embedder in the background shortly "
        "after the server starts (after litellm's warm-up), so the first chat's retrieval "
        "does not wait for the model to load. Off: the first search loads them.",
    )
    index_watch = Bool(
        True,
        config=True,
        help="Once an index exists, watch the root folder and re-index files changed outside "
        "Jupyter (git checkout, an editor, a script); deleted files leave the index.",
    )
    index_watch_debounce = Float(
        1.0,
        config=True,
        help="Seconds of quiet after the last save or file change before the index refreshes.",
    )
    index_watch_polling = Bool(
        False,
        config=True,
        help="Poll for changes instead of using OS notifications (network file systems). "
        "Polling is also used, with a warning, when notifications cannot be set up.",
    )
    index_embedder = Unicode(
        "minilm",
        config=True,
        help="'minilm' (all-MiniLM-L6-v2, local: int8 ONNX Runtime when onnxruntime and onnx "
        "are installed, else fp32 ONNX, else torch; 'minilm:int8', 'minilm:onnx' or "
        "'minilm:torch' force one, and 'minilm:onnx' and 'minilm:torch' share vectors), "
        "'model2vec' (static, distilled from MiniLM "
        "once and cached; needs the 'static' extra) or 'litellm:<model>' (a provider's "
        "embedding API, e.g. 'litellm:openai/text-embedding-3-small'), or 'none' (no "
        "embedder: keyword search (BM25) alone, with a notice; no torch). Changing it "
        "rebuilds the index.",
    )
    index_embedder_api_base = Unicode(
        "", config=True, help="With 'litellm:<model>': the endpoint (OpenAI-compatible, proxy)."
    )
    index_embedder_api_key = Unicode(
        "",
        config=True,
        help="With 'litellm:<model>': its key, or 'os.environ/NAME'. Empty: the provider's own "
        "variable (e.g. OPENAI_API_KEY). Never logged.",
    )
    index_embedder_window = Int(
        256,
        config=True,
        help="Tokens per chunk, counted with the MiniLM tokenizer (at most 256 for 'minilm').",
    )

    # --- conversations ----------------------------------------------------------------
    conversations_db_path = Unicode(
        "",
        config=True,
        help="SQLite file of conversations, messages, suggestions and preferences. Empty: "
        "(jupyter --data-dir)/rubberduck/conversations-<folder>-<hash>.sqlite3.",
    )
    user_identity = Unicode(
        "auto",
        config=True,
        help="Whose data a request reaches: 'auto' (the Jupyter user on JupyterHub or with a "
        "custom identity provider; the server's owner on a plain token/password server), "
        "'jupyter_user' or 'server_owner'.",
    )
    project_members = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help="Users who may have RubberDuck read and change files of this server's root "
        "(apply suggestions, analyse files) besides its owner. None: everyone the server "
        "authenticates. Conversations stay private to each user either way.",
    )
    session_mailbox_size = Int(
        8, config=True, help="Messages that may wait in one conversation before 'busy'."
    )
    session_idle_timeout = Float(
        300.0, config=True, help="Seconds an idle conversation actor lives before it stops."
    )
    memory_tokens = Int(
        0,
        config=True,
        help="Tokens of conversation history (summary + recent turns) per prompt. 0: half "
        "the model's input window as litellm knows it (8k when unknown), at most 32k.",
    )
    correction_rounds = Int(
        2, config=True, help="Self-correction rounds for generated code (0 disables)."
    )
    partial_save_interval = Float(
        2.0,
        config=True,
        help="Seconds of streaming after which the answer so far is saved, so a crash loses "
        "at most this much of it (0 disables partial saves).",
    )
    partial_save_chunks = Int(
        100, config=True, help="Also save the answer so far after this many chunks (0: time only)."
    )

    # --- plugins (docs/plugins.md) -----------------------------------------------------
    plugins_dir = Unicode(
        "",
        config=True,
        help="A folder of plugins (one *.py file or package directory each), hot-reloaded "
        "when a file changes. Empty: <jupyter config dir>/rubberduck/plugins.",
    )
    plugins_entry_points = Bool(
        True,
        config=True,
        help="Load plugins installed under the 'rubberduck.plugins' entry points.",
    )
    plugins_allow = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        config=True,
        help="Only these plugins load (names; built-ins included); None: every plugin not "
        "denied. An admin's rubberduck_plugins.json in a system config dir is applied on top "
        "and cannot be widened here.",
    )
    plugins_deny = List(
        Unicode(), default_value=[], config=True, help="Plugins that never load, by name."
    )
    plugins_reload = Bool(
        True, config=True, help="Reload a plugin of plugins_dir when its file changes."
    )
    plugin_hook_timeout = Float(
        2.0, config=True, help="Seconds an async hook may take before it is cut off."
    )
    plugin_command_timeout = Float(
        120.0, config=True, help="Seconds a plugin's slash command may take."
    )
    plugin_max_failures = Int(
        3, config=True, help="Consecutive failures after which a plugin is disabled."
    )
    plugins_untrusted = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Plugins that run in a worker subprocess under resource limits, reaching "
        "RubberDuck only through an RPC that grants their declared permissions (names; "
        "['*']: every plugin not built in). An admin's rubberduck_plugins.json can add names.",
    )
    plugin_worker_memory_mib = Int(
        512, config=True, help="Address space of an untrusted plugin's worker (RLIMIT_AS), MiB."
    )
    plugin_worker_cpu_s = Int(
        30, config=True, help="CPU seconds an untrusted plugin's worker may use (RLIMIT_CPU)."
    )
    plugin_worker_open_files = Int(
        64, config=True, help="Open files of an untrusted plugin's worker (RLIMIT_NOFILE)."
    )

    # --- protocol limits and kernels ---------------------------------------------------
    max_frame_bytes = Int(256 * 1024, config=True, help="Largest client frame, in bytes.")
    max_message_chars = Int(100_000, config=True, help="Largest chat message, in characters.")
    max_turns_per_connection = Int(
        4, config=True, help="Answers that may stream at once on one WebSocket."
    )
    # --- resuming after a dropped WebSocket (sessions/replay.py) -----------------------
    resume_grace_seconds = Float(
        60.0,
        config=True,
        help="Seconds a turn runs on after its WebSocket drops, waiting for the client to "
        "reconnect and resume it (then it is cancelled); a finished turn's frames are kept "
        "this long too.",
    )
    resume_max_frames = Int(
        20_000,
        config=True,
        help="Frames of one user's turns kept for resuming; past it the oldest go, and a "
        "resume that needs them gets resume_unavailable.",
    )
    resume_max_bytes = Int(
        4 * 1024 * 1024,
        config=True,
        help="Bytes of serialized frames of one user's turns kept for resuming.",
    )
    resume_max_turns = Int(
        8,
        config=True,
        help="Turns of one user kept for resuming (running or recently finished).",
    )
    export_kernel_env = Bool(
        True,
        config=True,
        help=f"Give kernels started by this server ${SERVER_URL_ENV} and a scoped "
        f"${KERNEL_TOKEN_ENV}, so %%duck works with no setup. The token acts for the user "
        "who started the kernel and reaches only RubberDuck's chat, health, models, usage, "
        "that user's conversations (read) and suggestions (read, apply, reject), and index "
        "status and search; not indexing, preferences, or renaming and deleting "
        "conversations.",
    )

    def build_models_config(self) -> ModelsConfig:
        return build_models_config(
            model_list=self.models,
            fallbacks=self.fallbacks,
            default_model=self.default_model,
            allowed_models=self.allowed_models,
            model=self.model,
            api_base=self.api_base,
            api_key=self.api_key,
            models_file=self.models_file,
        )

    def _set_here(self, name: str) -> bool:
        """Whether the admin set traitlet `name` in Jupyter's config (not its default)."""
        return name in self.config.get(type(self).__name__, {})

    def build_llm_service(self, config: ModelsConfig) -> LLMService:
        # A LiteLLM config's num_retries and timeout apply unless Jupyter's config sets
        # max_attempts or request_timeout itself.
        max_attempts = self.max_attempts
        if config.num_retries is not None and not self._set_here("max_attempts"):
            max_attempts = config.num_retries + 1
        total = self.request_timeout
        if config.timeout is not None and not self._set_here("request_timeout"):
            total = config.timeout
        settings = ServiceSettings(
            timeouts=Timeouts(
                connect=self.connect_timeout,
                first_token=self.first_token_timeout,
                idle=self.idle_timeout,
                total=total,
            ),
            retry=RetryPolicy(
                max_attempts=max_attempts,
                base_delay=self.retry_base_delay,
                max_retry_after=self.max_retry_after,
            ),
            max_output_tokens=self.max_output_tokens or None,
            queue_deadline_s=self.rate_limit_wait,
            direct_openai_streaming=self.direct_openai_streaming,
        )
        limiter = FairRateLimiter(
            global_limits=Limits(
                requests_per_minute=self.global_requests_per_minute,
                tokens_per_minute=self.global_tokens_per_minute,
            ),
            user_limits=Limits(
                requests_per_minute=self.user_requests_per_minute,
                tokens_per_minute=self.user_tokens_per_minute,
            ),
            max_queue=self.rate_limit_queue_size,
        )
        return LLMService(
            config,
            settings=settings,
            limiter=limiter,
            breakers=BreakerBoard(
                failure_threshold=self.breaker_failure_threshold,
                reset_timeout=self.breaker_reset_timeout,
            ),
            cache=ResponseCache(max_entries=self.cache_entries),
            redactor=self.redactor,
        )

    def initialize_settings(self) -> None:
        self.started_at = time.monotonic()
        config = self.build_models_config()
        # One Redactor for every path to a model: the LLM service's door, the API
        # embedder, and the session manager (which maps suggestions back through it).
        self.redactor = Redactor(self._configured_secrets)
        # The long-lived tasks (conversation actors, index refreshes, the loop-lag
        # sampler, the Ollama probe) run under one supervisor; error texts in its health
        # pass the redactor.
        self.supervisor = Supervisor(scrub=self.redactor.text)
        self.llm = self.build_llm_service(config)
        self.open_sockets = 0
        self.running_turns = RunningTurns()
        self.loop_lag = LoopLagMonitor()
        self.kernel_tokens = KernelTokens()
        self._ioloop = IOLoop.current()
        self.kernel_username = os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
        self._background: set[asyncio.Task[None]] = set()
        # The plugin host first: the index's embedders are built-in plugins too.
        self.plugins = self.build_plugin_host()
        self.index = self.build_index_service()
        self.mcp = self.build_mcp_servers()
        self.sessions = self.build_session_manager()
        self.completions = self.build_completion_service(config)
        self.replay = ReplayHub(
            ReplayLimits(
                grace_s=self.resume_grace_seconds,
                max_frames=self.resume_max_frames,
                max_bytes=self.resume_max_bytes,
                max_turns=self.resume_max_turns,
            )
        )
        if self.index_on_save:
            self.serverapp.contents_manager.register_post_save_hook(self._file_saved)
        self._wrap_kernel_start()
        if self.index_watch:
            self.supervisor.report("index_watcher", self._watcher_health)
        # /metrics (jupyter_server's) reads health through one process-wide collector.
        self._metrics_key = metrics.register(self.health)
        IOLoop.current().add_callback(self._start_background)
        if config.configured:
            self.log.info(
                "RubberDuck %s: model %s (%d configured, from %s)",
                __version__,
                config.default,
                len(config.entries),
                config.source,
            )
        else:
            self.log.info("RubberDuck %s: no model configured (set RUBBERDUCK_MODEL)", __version__)
        for note in config.warnings:
            self.log.warning("RubberDuck: %s", note)

    def build_completion_service(self, config: ModelsConfig) -> Any:
        from .completion.service import CompletionService
        from .completion.settings import CompletionSettings, completion_entry, is_fim_model

        entry = completion_entry(
            self.completion_model,
            config,
            api_base=self.api_base,
            api_key=self.api_key,
            env=os.environ,
        )
        settings = CompletionSettings(
            entry=entry,
            fim=is_fim_model(entry, self.completion_fim) if entry else False,
            requests_per_minute=self.completion_rate_limit,
            max_tokens=max(1, self.completion_max_tokens),
            context_chars=self.completion_context_chars,
            use_index=self.completion_use_index,
        )
        return CompletionService(self.llm, settings, index=self.index)

    def build_index_service(self) -> IndexService:
        root = Path(self.serverapp.root_dir)
        db_path = (
            Path(self.index_db_path).expanduser()
            if self.index_db_path
            else default_db_path(Path(jupyter_data_dir()), root)
        )
        embedder = EmbedderConfig(
            spec=self.index_embedder.strip(),
            api_base=self.index_embedder_api_base,
            api_key=self.index_embedder_api_key,
            window=self.index_embedder_window,
            redact=self.redactor.texts,
        )
        try:
            embedder.validate()
        except EmbedderConfigError as exc:
            # The rest of RubberDuck still loads; indexing and search report this error.
            self.log.error("RubberDuck: %s", exc)
        return IndexService(
            root,
            db_path,
            # The index knows only the Embedder protocol: each kind is built by its embedder
            # plugin (a provider's, litellm:<model>, in llm/), found through the registry.
            embedder_factory=partial(
                build_embedder, embedder, factories=self.plugins.embedder_factories
            ),
            max_file_bytes=self.index_max_file_bytes,
            debounce_s=self.index_watch_debounce,
            spawn=self._spawn_transient,
            on_files_changed=self.plugins.files_changed,
            on_indexed=self.plugins.index_updated,
            ann_threshold=self.index_ann_threshold,
            progressive=self.index_progressive and embedder.kind == "minilm",
            # model2vec stands in for MiniLM while it embeds (distilled from the same model).
            static_embedder_factory=partial(
                build_embedder,
                EmbedderConfig(spec="model2vec", window=self.index_embedder_window),
                factories=self.plugins.embedder_factories,
            ),
        )

    def build_session_manager(self) -> SessionManager:
        from .context.retrieval import Retriever
        from .context.rules import ProjectRules
        from .domain.actions import ProjectFiles
        from .domain.models import Project
        from .engines.registry import build_engines
        from .sessions.preferences import PreferenceBook
        from .sessions.store import AsyncConversationStore, ConversationStore

        root = str(Path(self.serverapp.root_dir).resolve())
        db_path = (
            Path(self.conversations_db_path).expanduser()
            if self.conversations_db_path
            else default_conversations_path(Path(jupyter_data_dir()), Path(root))
        )
        store = ConversationStore(db_path)
        interrupted = store.close_unanswered(
            "The server stopped before this message was answered; send it again."
        )
        if interrupted:
            self.log.info("RubberDuck: %d message(s) were left unanswered by a stop", interrupted)
        if store.shared:
            self.log.warning("RubberDuck: another server uses %s (shared)", db_path)
        self.conversations = AsyncConversationStore(store)
        members = None if self.project_members is None else frozenset(self.project_members)
        self.project = Project.for_root(root, self.kernel_username, members)
        # The engines first, from the ports they need, registered as built-in plugins before
        # anyone else's; the manager reads them (and plugins' commands) from the registry.
        preferences = PreferenceBook(self.conversations)
        catalog = self.plugins.catalog()
        engines = build_engines(
            preferences=preferences,
            infos=catalog.infos,
            agent={
                "max_steps": self.agent_max_steps,
                "max_tokens": self.agent_max_tokens,
                "max_seconds": self.agent_max_seconds,
                "tool_timeout_s": self.agent_tool_timeout,
                "tool_source": self.mcp,
                "run_timeout_s": self.agent_run_timeout,
            },
        )
        self.plugins.register_builtins(engines)
        self.plugins.discover()
        for row in self.plugins.list():
            if row["state"] != "loaded":
                self.log.warning(
                    "RubberDuck: plugin %s %s: %s", row["name"], row["state"], row["reason"]
                )
        return SessionManager(
            store=self.conversations,
            model=self.llm,
            has_model=lambda: self.llm.config.configured,
            engines=catalog,
            hooks=self.plugins,
            preferences=preferences,
            project=self.project,
            retriever=Retriever(self.index),
            history_tokens=self._history_tokens,
            # The same size cap as the index: what it would not index, no engine reads.
            files=ProjectFiles(
                self.project,
                on_write=self._project_file_written,
                max_file_bytes=self.index_max_file_bytes,
            ),
            registry=ActorRegistry(
                mailbox_size=self.session_mailbox_size,
                idle_timeout=self.session_idle_timeout,
                supervisor=self.supervisor,
            ),
            correction_rounds=self.correction_rounds,
            partial_save_interval=self.partial_save_interval,
            partial_save_chunks=self.partial_save_chunks,
            redactor=self.redactor,
            rules=(
                ProjectRules(Path(self.serverapp.root_dir), self.project_rules_max_chars)
                if self.project_rules
                else None
            ),
        )

    def build_plugin_host(self) -> PluginHost:
        names = (
            "plugins_dir",
            "plugins_entry_points",
            "plugins_allow",
            "plugins_deny",
            "plugins_reload",
            "plugin_hook_timeout",
            "plugin_command_timeout",
            "plugin_max_failures",
            "plugins_untrusted",
            "plugin_worker_memory_mib",
            "plugin_worker_cpu_s",
            "plugin_worker_open_files",
        )
        host = PluginHost(plugin_settings({name: getattr(self, name) for name in names}))
        host.index_root = Path(self.serverapp.root_dir).resolve()
        return host

    def user_for(self, handler: Any) -> str:
        """The name RubberDuck keys this request's data by (see sessions.identity)."""
        return user_key(handler, mode=self.user_identity, owner=self.kernel_username)

    def _history_tokens(self, model_name: str | None) -> int:
        if self.memory_tokens > 0:
            return self.memory_tokens
        window = None
        entry = self.llm.config.entries.get(model_name or self.llm.config.default or "")
        if entry is not None:
            window = litellm_context_tokens(entry.model)
        return min((window or DEFAULT_CONTEXT_TOKENS) // 2, MAX_HISTORY_TOKENS)

    def _configured_secrets(self) -> list[str]:
        keys = [e.api_key for e in self.llm.config.entries.values() if e.api_key]
        mcp = getattr(self, "mcp", None)  # its env and header values are secrets too
        return keys + (mcp.secrets() if mcp is not None else [])

    def build_mcp_servers(self) -> McpServers:
        """The agent's MCP servers: nothing starts here (the first agent turn starts them)."""
        from jupyter_core.paths import jupyter_config_dir

        from .protocol import NoticeCode
        from .tools.mcp.config import USER_FILE

        user_file = (
            Path(self.mcp_user_servers_file).expanduser()
            if self.mcp_user_servers_file
            else Path(jupyter_config_dir()) / "rubberduck" / USER_FILE
        )
        return McpServers(
            self.mcp_servers,
            allow_user=self.mcp_allow_user_servers,
            user_file=user_file,
            root=str(Path(self.serverapp.root_dir).resolve()),
            notice_code=NoticeCode.MCP_UNAVAILABLE.value,
            redact=self.redactor.text,
        )

    def _file_saved(self, os_path: str, **_: Any) -> None:
        self.index.file_saved(os_path)

    def _project_file_written(self, path: Any) -> None:
        # ProjectFiles writes from a worker thread (an applied suggestion), but the index's
        # refresh timer lives on the loop: IOLoop.add_callback is safe from any thread.
        self._ioloop.add_callback(self.index.file_saved, str(path))

    def _start_background(self) -> None:
        favour_event_loop()
        self.loop_lag.start(spawn=self._spawn_permanent)
        # A second server on the same index file: say so in health from the start.
        probe = asyncio.get_running_loop().create_task(self.index.probe_lock())
        self._background.add(probe)
        probe.add_done_callback(self._background.discard)
        # litellm's import and first-call setup, then the index's embedder, off the loop and
        # before the first chat; one after the other, so the two loads do not fight for the
        # GIL and the cores while the first page loads.
        warm = asyncio.get_running_loop().create_task(self._warm_up(self.llm.warm_up()))
        self._background.add(warm)
        warm.add_done_callback(self._background.discard)
        # detect-secrets' plugins (~80 ms of imports, requests among them) for redaction.
        rules = asyncio.get_running_loop().create_task(self._load_secret_rules())
        self._background.add(rules)
        rules.add_done_callback(self._background.discard)
        if self.index_watch:
            self.index.watch(force_polling=self.index_watch_polling)
        self.plugins.start()
        if not self.llm.config.configured and self.detect_ollama:
            # Transient: a crash retries it with backoff, an answer (even "none") ends it.
            self.supervisor.start_child(
                "ollama_probe", self._adopt_local_ollama, restart=Restart.TRANSIENT
            )

    async def _warm_up(self, llm_warm_up: asyncio.Task[None] | None) -> None:
        if llm_warm_up is not None:
            await llm_warm_up
        if not self.index_warm_up:
            return
        try:
            await asyncio.sleep(WARM_UP_DELAY_S)  # a first chat may already be loading them
            if await self.index.warm_up():
                self.log.debug("RubberDuck: the index and its embedder are loaded")
        except Exception:
            # The first search opens the index again and reports what fails to its user.
            self.log.warning("RubberDuck could not warm the index up", exc_info=True)

    def _spawn_permanent(self, name: str, factory: Any) -> asyncio.Future[None]:
        """A loop that should always run (the event-loop lag sampler)."""
        child = self.supervisor.start_child(name, factory, restart=Restart.PERMANENT)
        assert child.task is not None
        return child.task

    def _spawn_transient(self, name: str, factory: Any) -> asyncio.Future[None]:
        """The index's background jobs, as transient children of the supervisor."""
        child = self.supervisor.start_child(name, factory, restart=Restart.TRANSIENT)
        assert child.task is not None
        return child.task

    def _watcher_health(self) -> dict[str, Any]:
        """The index watcher's thread (it restarts itself) in the supervisor's shape."""
        status = self.index.watch_status()
        state = {"watching": "running", "starting": "running", "error": "backing_off"}.get(
            status["state"], "stopped"
        )
        return {
            "state": state,
            "restart": "permanent",
            "restarts": status.get("restarts", 0),
            "failures": 0,
            "last_error": status.get("error"),
            "last_start": status.get("last_start"),
            "detail": status["state"],
        }

    async def _load_secret_rules(self) -> None:
        from .context.secret_rules import provider_patterns

        await asyncio.to_thread(provider_patterns)

    async def _adopt_local_ollama(self) -> None:
        names = await detect_ollama(self.ollama_url)
        if names and not self.llm.config.configured:
            self.llm.config = ollama_config(self.ollama_url, names)
            self.log.info(
                "RubberDuck: using the local Ollama at %s (%s)", self.ollama_url, names[0]
            )

    def initialize_handlers(self) -> None:
        from .handlers.chat_rest import ChatCancelHandler, ChatStreamHandler
        from .handlers.chat_ws import ChatWebSocketHandler
        from .handlers.complete import CompletionStatusHandler, CompletionWebSocketHandler
        from .handlers.conversations import (
            ConversationExportHandler,
            ConversationHandler,
            ConversationsHandler,
            EnginesHandler,
            PreferencesHandler,
            SuggestionActionHandler,
            SuggestionHandler,
        )
        from .handlers.health import HealthHandler, PluginsHandler
        from .handlers.index import IndexHandler, IndexSearchHandler
        from .handlers.models import ModelsHandler, UsageHandler
        from .handlers.review import CellReviewHandler, NotebookReviewHandler

        # Matched against the percent-encoded path: 128 characters of an id can take 1,536
        # there, so no bound here; an id no frame could have made is simply not found.
        ident = r"[^/]+"
        self.handlers.extend(
            [
                (r"/rubberduck/api/health", HealthHandler),
                (r"/rubberduck/api/plugins", PluginsHandler),
                (r"/rubberduck/api/models", ModelsHandler),
                (r"/rubberduck/api/usage", UsageHandler),
                (r"/rubberduck/api/chat", ChatStreamHandler),
                (r"/rubberduck/api/chat/cancel", ChatCancelHandler),
                (r"/rubberduck/api/index", IndexHandler),
                (r"/rubberduck/api/index/search", IndexSearchHandler),
                (r"/rubberduck/api/conversations", ConversationsHandler),
                (rf"/rubberduck/api/conversations/({ident})", ConversationHandler),
                (rf"/rubberduck/api/conversations/({ident})/export", ConversationExportHandler),
                (r"/rubberduck/api/preferences", PreferencesHandler),
                (r"/rubberduck/api/engines", EnginesHandler),
                (r"/rubberduck/api/review/notebook", NotebookReviewHandler),
                (r"/rubberduck/api/review/cell", CellReviewHandler),
                (rf"/rubberduck/api/suggestions/({ident})", SuggestionHandler),
                (rf"/rubberduck/api/suggestions/({ident})/(apply|reject)", SuggestionActionHandler),
                (r"/rubberduck/ws", ChatWebSocketHandler),
                (r"/rubberduck/api/complete/status", CompletionStatusHandler),
                (r"/rubberduck/api/complete/ws", CompletionWebSocketHandler),
            ]
        )

    def _wrap_kernel_start(self) -> None:
        """Give each kernel its starter's token through the kernel's own `env`.

        Not os.environ: every kernel inherits that, so a token there would act for whoever
        owns the server in every user's kernel. jupyter_server does not tell
        `start_kernel` who asked, but it records the request's handler in its CallContext (a
        contextvar set in prepare), which is still set while that request's coroutine starts
        the kernel; kernels API and sessions API alike.
        """
        if not self.export_kernel_env or self.serverapp is None:
            return
        manager = self.serverapp.kernel_manager
        start = manager.start_kernel

        async def start_kernel(*args: Any, **kwargs: Any) -> Any:
            kwargs["env"] = self.kernel_env(kwargs.get("env"))
            return await ensure_async(start(*args, **kwargs))

        manager.start_kernel = start_kernel
        update_env = getattr(manager, "update_env", None)
        if update_env is not None:
            # A renamed session refreshes the kernel's env from os.environ for its next
            # restart; a token the server inherited must not replace the kernel's own.
            def update_env_keeping_token(*, kernel_id: str, env: dict[str, str]) -> None:
                kept = {k: v for k, v in env.items() if k != KERNEL_TOKEN_ENV}
                update_env(kernel_id=kernel_id, env=kept)

            manager.update_env = update_env_keeping_token

    def kernel_env(self, env: dict[str, str] | None) -> dict[str, str]:
        """The environment of a kernel starting now: `env` (or os.environ, which the
        kernels API lets jupyter_client use) with the server URL and the starter's token."""
        merged = dict(os.environ if env is None else env)
        # A token the server itself inherited (it was started from a kernel) is not ours.
        merged.pop(KERNEL_TOKEN_ENV, None)
        # The port is only final once the HTTP server is bound, so read the URL now.
        merged[SERVER_URL_ENV] = self.serverapp.connection_url
        # jupyter_server names the session's notebook by its absolute path; %duck sends it
        # as context (a suggestion's target), which is a path relative to the root.
        notebook = notebook_below_root(merged.get("JPY_SESSION_NAME"), self.serverapp.root_dir)
        if notebook is not None:
            merged[NOTEBOOK_PATH_ENV] = notebook
        else:
            merged.pop(NOTEBOOK_PATH_ENV, None)
        user = kernel_start_user(
            CallContext.get(CallContext.JUPYTER_HANDLER),
            provider=self.serverapp.identity_provider,
            mode=self.user_identity,
            owner=self.kernel_username,
        )
        if user is None:
            self.log.info(
                "RubberDuck: a kernel started outside a user's request gets no kernel token"
            )
        else:
            merged[KERNEL_TOKEN_ENV] = self.kernel_tokens.token_for(user)
        return merged

    def health(self) -> dict[str, Any]:
        """What GET /rubberduck/api/health and /metrics report (docs/monitoring.md).
        Nothing secret: no keys, no user names, no conversation ids or texts."""
        supervisor = self.supervisor.snapshot()
        llm = self.llm.health()
        sessions = self.sessions.snapshot()
        return {
            "status": "degraded" if supervisor["state"] != "ok" else "ok",
            "version": __version__,
            "protocol_version": PROTOCOL_VERSION,
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "subsystems": {
                "llm": llm,
                "sessions": {
                    "state": "ok",
                    "open_sockets": self.open_sockets,
                    **sessions,
                    # Turns kept for resuming: running, detached (their socket dropped),
                    # frames and bytes held, over all users.
                    "resume": self.replay.snapshot(),
                },
                "index": {
                    "state": self.index.state,
                    "error": self.index.last_error,
                    "open": self.index.is_open,
                    "embedder": self.index_embedder,
                    # Set while searches fall back to keywords because queries cannot embed.
                    "embedder_error": self.index.embedder_error,
                    "watch": self.index.watch_status(),
                },
                "plugins": {"state": "ok", **self.plugins.health()},
                "event_loop": self.loop_lag.snapshot(),
                "supervisor": supervisor,
                "queues": self._queues(sessions, llm["rate_limits"]),
                "process": {"state": "ok", **memory()},
            },
        }

    @staticmethod
    def _queues(sessions: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
        """Every bounded queue's depth beside its capacity, in one place."""
        mailboxes = {
            "waiting": sessions.get("waiting", 0),
            "deepest": sessions.get("deepest_mailbox", 0),
            "capacity_each": sessions.get("mailbox_size"),
        }
        rate_limit = {"queued": limits.get("queued", 0), "capacity": limits.get("max_queue")}
        full = (
            mailboxes["capacity_each"] and mailboxes["deepest"] >= mailboxes["capacity_each"]
        ) or (
            rate_limit["capacity"] is not None
            and rate_limit["queued"] >= rate_limit["capacity"] > 0
        )
        return {
            "state": "full" if full else "ok",
            "session_mailboxes": mailboxes,
            "rate_limit": rate_limit,
        }

    async def stop_extension(self) -> None:
        metrics.unregister(self._metrics_key)  # a stopped server's figures leave /metrics
        for task in list(self._background):
            task.cancel()
        await self.loop_lag.stop()
        # Sessions first: a turn it stops records the server-stop note, not "Stopped."; the
        # hub then only cancels what is left and its timers.
        await self.sessions.close()
        await self.replay.close()
        await self.llm.aclose()
        await self.conversations.aclose()
        await self.index.close()
        await self.plugins.stop()
        await self.mcp.stop()
        await self.supervisor.stop()


def notebook_below_root(session_path: str | None, root_dir: str) -> str | None:
    """`session_path` (jupyter_server's JPY_SESSION_NAME) as a POSIX path relative to the
    root, or None when it is missing or not below the root."""
    if not session_path:
        return None
    try:
        relative = Path(os.path.abspath(session_path)).relative_to(os.path.abspath(root_dir))
    except ValueError:
        return None
    text = relative.as_posix()
    return None if text in ("", ".") else text
