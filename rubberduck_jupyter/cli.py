"""`jupyter rubberduck ...`: commands for users and admins outside the browser."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .llm.settings import API_BASE_ENV, API_KEY_ENV, MODEL_ENV, ModelSettings

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


def model_settings_from_config(config: dict[str, Any]) -> tuple[ModelSettings, dict[str, str]]:
    from .llm.settings import resolve_model_settings

    settings = resolve_model_settings(
        model=config.get("model", ""),
        api_base=config.get("api_base", ""),
        api_key=config.get("api_key", ""),
        request_timeout=float(config.get("request_timeout", 30.0)),
    )
    sources = {
        "model": "c.RubberDuckApp.model" if config.get("model") else f"${MODEL_ENV}",
        "api_base": "c.RubberDuckApp.api_base" if config.get("api_base") else f"${API_BASE_ENV}",
    }
    return settings, sources


def check_configuration(settings: ModelSettings, sources: dict[str, str]) -> list[Check]:
    if not settings.configured:
        return [
            Check(
                "model",
                False,
                "no model configured; the assistant will say so instead of answering",
                f"export {MODEL_ENV}=openai/gpt-4o-mini (and OPENAI_API_KEY), or set "
                "c.RubberDuckApp.model in jupyter_server_config.py",
            )
        ]
    checks = [Check("model", True, f"{settings.model} (from {sources['model']})")]
    if settings.api_base:
        checks.append(
            Check("api_base", True, f"{settings.public_api_base()} (from {sources['api_base']})")
        )
    checks.append(check_api_key(settings))
    return checks


def check_api_key(settings: ModelSettings) -> Check:
    model = settings.model or ""
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    key_env = PROVIDER_KEY_ENV.get(provider)
    if settings.api_key:
        return Check("api key", True, "set in RubberDuck config (value hidden)")
    if key_env and os.environ.get(key_env):
        return Check("api key", True, f"${key_env} is set (value hidden)")
    if provider in KEYLESS_PROVIDERS or settings.api_base:
        return Check("api key", True, "none set; this endpoint may not need one")
    if key_env:
        return Check(
            "api key",
            False,
            f"${key_env} is not set",
            f"export {key_env}=... (or {API_KEY_ENV}=...)",
        )
    return Check("api key", True, f"litellm reads the key for '{provider}' from its own variable")


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


def check_model_answers(settings: ModelSettings) -> Check:
    from .llm.client import LiteLLMClient
    from .llm.errors import LLMError

    if not settings.configured:
        return Check("model answers", False, "skipped: no model configured", "see 'model' above")
    client = LiteLLMClient(settings)
    probe = [{"role": "user", "content": "Reply with the single word: pong"}]

    async def ask() -> tuple[str, float]:
        await client.load()
        started = time.perf_counter()
        return await client.complete(probe), time.perf_counter() - started

    try:
        reply, elapsed = asyncio.run(ask())
    except LLMError as exc:
        return Check("model answers", False, f"{exc.code}: {exc.message}", _fix_for(str(exc.code)))
    preview = reply.strip().replace("\n", " ")[:60]
    return Check("model answers", True, f"replied in {elapsed:.1f} s: {preview!r}")


def _fix_for(code: str) -> str:
    return {
        "provider_auth": "check the API key variable for this provider",
        "provider_error": "check that the server at the api_base is running and reachable",
        "timeout": "the model is slow or unreachable; try again or raise request_timeout",
        "rate_limited": "wait and retry, or use another model",
    }.get(code, "run with a different model to compare")


def doctor(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="jupyter rubberduck doctor",
        description="Show RubberDuck's configuration in effect and check that it works.",
    )
    parser.add_argument("--skip-model", action="store_true", help="Do not call the model.")
    args = parser.parse_args(argv)

    settings, sources = model_settings_from_config(load_server_config())
    print(f"RubberDuck doctor (rubberduck-jupyter {__version__}, Python {sys.version.split()[0]})")
    checks = check_configuration(settings, sources)
    checks += [check_server_extension(), check_lab_extension()]
    if not args.skip_model:
        checks.append(check_model_answers(settings))
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        print(f"  [{mark}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            print(f"         fix: {check.fix}")
    failed = [c for c in checks if not c.ok]
    print("All checks passed." if not failed else f"{len(failed)} check(s) need attention.")
    return 1 if failed else 0


COMMANDS = {"doctor": doctor}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"} or args[0] not in COMMANDS:
        print("usage: jupyter rubberduck {doctor} [options]")
        print("  doctor   show the configuration in effect and check that each part works")
        return 0 if args and args[0] in {"-h", "--help"} else 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
