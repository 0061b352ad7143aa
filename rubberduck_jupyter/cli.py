"""`jupyter rubberduck ...`: commands for users and admins outside the browser."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .llm.config import API_KEY_ENV, MODEL_ENV, ModelConfigError, ModelEntry, ModelsConfig

if TYPE_CHECKING:
    from .index.cli import CliWiring

EXTENSION_NAME = "rubberduck_jupyter"
LABEXTENSION_NAME = "rubberduck-jupyter"

# The variable litellm reads for each provider prefix, so doctor can say which is missing.
PROVIDER_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "azure": "AZURE_API_KEY",
    "cohere": "COHERE_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
}
KEYLESS_PROVIDERS = {"ollama", "ollama_chat", "hosted_vllm", "lm_studio", "llamafile"}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def load_server_config() -> dict[str, Any]:
    """The RubberDuckApp section of the jupyter_server_config files in effect."""
    from jupyter_core.application import JupyterApp

    class _ConfigReader(JupyterApp):
        name = "jupyter-rubberduck"
        config_file_name = "jupyter_server_config"

    reader = _ConfigReader()
    reader.load_config_file()
    return dict(reader.config.get("RubberDuckApp", {}))


def models_config_from(config: dict[str, Any]) -> ModelsConfig:
    from .llm.config import build_models_config

    return build_models_config(
        model_list=config.get("models") or [],
        fallbacks=config.get("fallbacks"),
        default_model=config.get("default_model", ""),
        allowed_models=config.get("allowed_models"),
        model=config.get("model", ""),
        api_base=config.get("api_base", ""),
        api_key=config.get("api_key", ""),
        models_file=config.get("models_file", ""),
    )


def check_configuration(config: ModelsConfig) -> list[Check]:
    if not config.configured:
        return [
            Check(
                "model",
                False,
                "no model configured; the assistant will say so instead of answering",
                f"export {MODEL_ENV}=openai/gpt-4o-mini (and OPENAI_API_KEY), or set "
                "c.RubberDuckApp.model in jupyter_server_config.py",
            )
        ]
    checks = [
        Check(
            "models", True, f"{len(config.entries)} from {config.source}; default {config.default}"
        )
    ]
    for entry in config.entries.values():
        where = f" at {entry.public_api_base()}" if entry.api_base else ""
        then = ""
        if entry.deployment_of:
            then = f", a deployment of {entry.deployment_of} tried after the first"
        else:
            fallbacks = config.fallbacks.get(entry.name, config.default_fallbacks)
            then = f", falls back to {', '.join(fallbacks)}" if fallbacks else ""
            wider = config.context_window_fallbacks.get(entry.name)
            if wider:
                then += f"; prompts too long for it go to {', '.join(wider)}"
        checks.append(Check(f"model {entry.name}", True, f"{entry.model}{where}{then}"))
        checks.append(check_api_key(entry))
    return checks


def check_api_key(entry: ModelEntry) -> Check:
    label = f"api key for {entry.name}"
    key_env = PROVIDER_KEY_ENV.get(entry.provider)
    if entry.api_key:
        return Check(label, True, f"from {entry.api_key_source or 'config'} (value hidden)")
    if entry.api_key_source:
        var = entry.api_key_source.lstrip("$")
        return Check(label, False, f"{entry.api_key_source} is not set", f"export {var}=...")
    if key_env and os.environ.get(key_env):
        return Check(label, True, f"${key_env} is set (value hidden)")
    if entry.provider in KEYLESS_PROVIDERS or entry.api_base:
        return Check(label, True, "none set; this endpoint may not need one")
    if key_env:
        return Check(
            label, False, f"${key_env} is not set", f"export {key_env}=... (or {API_KEY_ENV}=...)"
        )
    return Check(label, True, f"litellm reads the key for '{entry.provider}' from its own variable")


def check_server_extension() -> Check:
    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.extension.config import ExtensionConfigManager

    manager = ExtensionConfigManager(read_config_path=jupyter_config_path())
    enabled = manager.get_jpserver_extensions().get(EXTENSION_NAME, False)
    if enabled:
        return Check("server extension", True, f"{EXTENSION_NAME} is enabled")
    return Check(
        "server extension",
        False,
        f"{EXTENSION_NAME} is not enabled",
        f"jupyter server extension enable {EXTENSION_NAME}",
    )


def check_lab_extension() -> Check:
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("labextensions"):
        package = Path(base) / LABEXTENSION_NAME / "package.json"
        if package.is_file():
            return Check("lab extension", True, f"installed in {package.parent}")
    return Check(
        "lab extension",
        False,
        f"{LABEXTENSION_NAME} is not installed in any labextensions folder",
        "reinstall: pip install rubberduck-jupyter (or `make install` in a clone)",
    )


def check_model_answers(config: ModelsConfig) -> list[Check]:
    from .llm.client import LiteLLMGateway, ProviderFailure, Timeouts

    if not config.configured:
        return [Check("model answers", False, "skipped: no model configured", "see above")]
    gateway = LiteLLMGateway()
    timeouts = Timeouts(first_token=30.0)
    probe = [{"role": "user", "content": "Reply with the single word: pong"}]

    async def probe_all() -> list[Check]:
        await gateway.load()
        checks = []
        for entry in config.entries.values():
            label = f"{entry.name} answers"
            started = time.perf_counter()
            try:
                reply = await gateway.complete(entry, probe, timeouts=timeouts)
            except ProviderFailure as failure:
                detail = f"{failure.kind}: {failure.detail}"
                checks.append(Check(label, False, detail, _fix_for(str(failure.kind))))
                continue
            elapsed = time.perf_counter() - started
            preview = reply.strip().replace("\n", " ")[:60]
            checks.append(Check(label, True, f"replied in {elapsed:.1f} s: {preview!r}"))
        return checks

    # One event loop for every probe: litellm keeps loop-bound workers between calls.
    return asyncio.run(probe_all())


def _fix_for(code: str) -> str:
    return {
        "auth": "check the API key variable for this provider",
        "connection_error": "check that the server at the api_base is running and reachable",
        "server_error": "the provider failed; try again later or configure a fallback",
        "first_token_timeout": "the model is slow or unreachable; raise first_token_timeout",
        "rate_limited": "wait and retry, or configure a fallback model",
        "bad_request": "check the model name and its litellm_params",
    }.get(code, "run with a different model to compare")


def check_mcp(settings: dict[str, Any], admin_dirs: list[str] | None = None) -> list[Check]:
    """The MCP servers the agent would use (none is started): where each runs, whose it
    is, its permission; entries that cannot be used, and why."""
    from jupyter_core.paths import jupyter_config_dir

    from .tools.base import Permission
    from .tools.mcp.config import (
        USER_FILE,
        read_admin_files,
        read_user_servers,
        servers_in_effect,
    )

    named = settings.get("mcp_user_servers_file")
    user_path = (
        Path(named).expanduser() if named else Path(jupyter_config_dir()) / "rubberduck" / USER_FILE
    )
    user, unreadable = read_user_servers(user_path)
    specs, problems = servers_in_effect(
        configured=settings.get("mcp_servers") or {},
        allow_user=bool(settings.get("mcp_allow_user_servers", True)),
        user_file=user,
        admin_file=read_admin_files(admin_dirs),
    )
    if unreadable:
        problems.append(unreadable)
    checks = []
    for spec in specs:
        offered = (
            "offered to the agent"
            if spec.permission is Permission.READ
            else "not offered yet (its calls would need your approval)"
        )
        checks.append(
            Check(
                f"mcp server {spec.name}",
                True,
                f"{spec.transport} {spec.where()} ({spec.source}), permission "
                f"{spec.permission.value}: {offered}; starts on the first agent turn",
            )
        )
    for problem in problems:
        # A user's server left out by the hub rules is the policy working, not a fault.
        policy = problem.startswith("the user's MCP server")
        fix = "" if policy else "fix the entry (docs/agent.md#mcp)"
        checks.append(Check("mcp servers", policy, problem, fix))
    return checks


def doctor(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="jupyter rubberduck doctor",
        description="Show RubberDuck's configuration in effect and check that it works.",
    )
    parser.add_argument("--skip-model", action="store_true", help="Do not call the model.")
    args = parser.parse_args(argv)

    print(f"RubberDuck doctor (rubberduck-jupyter {__version__}, Python {sys.version.split()[0]})")
    settings = load_server_config()
    try:
        config = models_config_from(settings)
    except ModelConfigError as exc:
        print(f"  [FAIL] model configuration: {exc}")
        return 1
    checks = check_configuration(config)
    checks += [check_server_extension(), check_lab_extension()]
    checks += check_mcp(settings)
    if not args.skip_model:
        checks += check_model_answers(config)
    for note in config.warnings:
        print(f"  [warn] {note}")
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        print(f"  [{mark}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            print(f"         fix: {check.fix}")
    failed = [c for c in checks if not c.ok]
    print("All checks passed." if not failed else f"{len(failed)} check(s) need attention.")
    return 1 if failed else 0


def _index_wiring() -> CliWiring:
    """What the index commands get from above the index (it imports no llm/, no cli.py)."""
    from .context.redact import Redactor
    from .index.cli import CliWiring
    from .llm.embedder import provider_embedder

    return CliWiring(
        redact=Redactor().texts, provider=provider_embedder, server_settings=load_server_config
    )


def _index(argv: list[str]) -> int:
    from .index.cli import index_command

    return index_command(argv, _index_wiring())


def _search(argv: list[str]) -> int:
    from .index.cli import search_command

    return search_command(argv, _index_wiring())


def _mcp(argv: list[str]) -> int:
    """`jupyter rubberduck mcp`: our read tools as an MCP server (mcp_server.py)."""
    from .mcp_server import mcp_command

    return mcp_command(argv, _index_wiring())


def _plugins(argv: list[str]) -> int:
    """`jupyter rubberduck plugins list [--json]`: what the server would load, and why not."""
    import json

    parser = argparse.ArgumentParser(
        prog="jupyter rubberduck plugins",
        description="List RubberDuck's plugins as the server would load them.",
    )
    parser.add_argument("action", choices=["list"])
    parser.add_argument("--json", action="store_true", help="One JSON array instead of a table.")
    args = parser.parse_args(argv)
    rows = plugin_rows(load_server_config())
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    columns = ("name", "version", "state", "permissions", "source", "reason")
    table = [
        [", ".join(row[c]) if isinstance(row[c], list) else str(row[c] or "") for c in columns]
        for row in rows
    ]
    widths = [
        max([len(c), *(len(r[i]) for r in table)]) if c != "reason" else 0
        for i, c in enumerate(columns)
    ]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0


def plugin_rows(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The plugins list of a server started with `config`: built-ins, then discovery."""
    from .domain.preferences import Preferences
    from .engines.registry import build_engines
    from .plugin_host import PluginHost
    from .plugin_settings import plugin_settings

    class _NoSave:
        async def save(self, user: Any, preferences: Preferences) -> None:
            return None

    host = PluginHost(plugin_settings(config))
    host.register_builtins(build_engines(preferences=_NoSave()))
    host.discover()

    async def isolated() -> None:
        # Untrusted plugins load in their workers, as the server would start them.
        try:
            await host.load_isolated()
        finally:
            await host.stop()

    asyncio.run(isolated())
    return host.list()


COMMANDS = {
    "doctor": doctor,
    "index": _index,
    "search": _search,
    "plugins": _plugins,
    "mcp": _mcp,
}
USAGE = """usage: jupyter rubberduck {doctor,index,search,plugins,mcp} [options]
  doctor   show the configuration in effect and check that each part works
  index    index a project folder (incremental) for search and answers
  search   search the project index ("QUERY" [--top-k N] [--json])
  plugins  list the plugins: name, version, state, permissions, source, reason ("list")
  mcp      serve the project's search, notebook cells and files to other agents over MCP
           (stdio; --http PORT for 127.0.0.1; --root DIR)"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"} or args[0] not in COMMANDS:
        print(USAGE)
        return 0 if args and args[0] in {"-h", "--help"} else 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
