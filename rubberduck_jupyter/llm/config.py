"""Which models exist, in what order they fail over, and which a user may pick.

The shape follows LiteLLM's `model_list` (model_name + litellm_params), so a team can reuse
its proxy's config. Sources, first match wins: the `models` traitlet, the file named by
$RUBBERDUCK_MODELS_FILE, the one-model shortcut (`model` / $RUBBERDUCK_MODEL), then
zero-config detection of provider keys in the environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import ModelConfigError
from .litellm_config import (
    ROUTER_ONLY_PARAMS,
    FileSettings,
    model_list_unused,
    parse_fallbacks,
    read_litellm_config,
)

__all__ = ["ModelConfigError", "ModelEntry", "ModelsConfig", "build_models_config"]

MODELS_FILE_ENV = "RUBBERDUCK_MODELS_FILE"
MODEL_ENV = "RUBBERDUCK_MODEL"
API_BASE_ENV = "RUBBERDUCK_API_BASE"
API_KEY_ENV = "RUBBERDUCK_API_KEY"
ENV_REFERENCE = "os.environ/"

# Zero-config: a key in the environment picks a sensible small model of that provider.
DETECTED_PROVIDERS: tuple[tuple[str, str], ...] = (
    ("OPENAI_API_KEY", "openai/gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic/claude-3-5-haiku-latest"),
    ("GEMINI_API_KEY", "gemini/gemini-2.0-flash"),
    ("MISTRAL_API_KEY", "mistral/mistral-small-latest"),
    ("GROQ_API_KEY", "groq/llama-3.1-8b-instant"),
    ("DEEPSEEK_API_KEY", "deepseek/deepseek-chat"),
)

# litellm_params that RubberDuck sets itself or that would let a config file run code.
_RESERVED_PARAMS = {"model", "api_base", "api_key", "messages", "stream", "max_retries"}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    model: str
    api_base: str | None = None
    # Kept out of repr so no log line or traceback that prints an entry shows it.
    api_key: str | None = field(default=None, repr=False)
    api_key_source: str | None = None
    extra_params: Mapping[str, Any] = field(default_factory=dict)
    # Set on the second and later deployments of one model_name (LiteLLM's way to list
    # several endpoints for a name): tried after the first, never offered by that name.
    deployment_of: str | None = None

    @property
    def provider(self) -> str:
        return self.model.split("/", 1)[0] if "/" in self.model else "openai"

    @property
    def breaker_key(self) -> str:
        """One circuit breaker per provider endpoint: entries sharing one fail together."""
        return f"{self.provider}@{self.public_api_base() or 'default'}"

    def public_api_base(self) -> str | None:
        """The endpoint without credentials embedded in the URL, safe to show anyone."""
        if not self.api_base:
            return None
        parts = urlsplit(self.api_base)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    def describe(self) -> dict[str, Any]:
        """What a user may see of a model: never its key."""
        return {
            "name": self.name,
            "model": self.model,
            "provider": self.provider,
            "api_base": self.public_api_base(),
        }


@dataclass(frozen=True)
class ModelsConfig:
    entries: Mapping[str, ModelEntry] = field(default_factory=dict)
    default: str | None = None
    fallbacks: Mapping[str, Sequence[str]] = field(default_factory=dict)
    allowed: Sequence[str] | None = None
    source: str = "none"
    # Tried instead when a model refuses a prompt as too long for its context window.
    context_window_fallbacks: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # Fallbacks of every model that has none of its own.
    default_fallbacks: Sequence[str] = ()
    # From a LiteLLM config: retries after the first try, and seconds per call.
    num_retries: int | None = None
    timeout: float | None = None
    # Keys of the configuration that RubberDuck does not use, each with what to do instead.
    warnings: Sequence[str] = ()

    @property
    def configured(self) -> bool:
        return self.default is not None

    def allowed_names(self) -> list[str]:
        names = [n for n, e in self.entries.items() if e.deployment_of is None]
        if self.allowed is not None:
            names = [n for n in names if n in self.allowed]
        return names

    def choose(self, requested: str | None) -> str | None:
        """The model a request runs on; None when nothing is configured."""
        if not requested:
            return self.default
        if requested not in self.allowed_names():
            raise ModelConfigError(
                f"Model {requested!r} is not available here; choose one of: "
                + ", ".join(self.allowed_names())
            )
        return requested

    def candidates(self, name: str, *, context_window: bool = False) -> list[ModelEntry]:
        """The chosen model and its deployments, then its fallbacks (each with its own
        deployments) in order, each once. `context_window`: only the fallbacks for a prompt
        too long for the model (`context_window_fallbacks`)."""
        if context_window:
            order = list(self.context_window_fallbacks.get(name, ()))
        else:
            order = [name, *self.fallbacks.get(name, self.default_fallbacks)]
        seen: list[str] = []
        for candidate in order:
            for entry in self._deployments(candidate):
                if entry.name not in seen:
                    seen.append(entry.name)
        return [self.entries[n] for n in seen]

    def _deployments(self, name: str) -> list[ModelEntry]:
        return [e for e in self.entries.values() if e.name == name or e.deployment_of == name]


def _resolve_env(value: Any, env: Mapping[str, str]) -> tuple[Any, str]:
    """`os.environ/NAME` → NAME's value (LiteLLM's convention, for any string parameter)."""
    if not isinstance(value, str) or not value.startswith(ENV_REFERENCE):
        return value, ""
    var = value[len(ENV_REFERENCE) :]
    # A missing variable is not an error here: the model fails with provider_auth (or
    # cannot connect) when used, and doctor names the variable.
    return env.get(var) or None, f"${var}"


def _resolve_key(value: Any, entry_name: str, env: Mapping[str, str]) -> tuple[str | None, str]:
    if value is None or value == "":
        return None, ""
    if not isinstance(value, str):
        raise ModelConfigError(f"Model {entry_name!r}: api_key must be a string")
    if value.startswith(ENV_REFERENCE):
        return _resolve_env(value, env)
    return value, "config"


def parse_model_list(
    model_list: Sequence[Mapping[str, Any]], env: Mapping[str, str]
) -> dict[str, ModelEntry]:
    entries: dict[str, ModelEntry] = {}
    count: dict[str, int] = {}
    for index, raw in enumerate(model_list):
        if not isinstance(raw, Mapping):
            raise ModelConfigError(f"model_list[{index}] must be a mapping")
        name = raw.get("model_name")
        params = raw.get("litellm_params")
        if not isinstance(name, str) or not name:
            raise ModelConfigError(f"model_list[{index}] needs a model_name")
        if not isinstance(params, Mapping) or not isinstance(params.get("model"), str):
            raise ModelConfigError(f"Model {name!r} needs litellm_params.model")
        if "#" in name:
            raise ModelConfigError(f"Model {name!r}: a model_name may not contain '#'")
        count[name] = count.get(name, 0) + 1
        key, key_source = _resolve_key(params.get("api_key"), name, env)
        api_base = _resolve_env(params.get("api_base"), env)[0]
        extra = {
            k: _resolve_env(v, env)[0]
            for k, v in params.items()
            if k not in _RESERVED_PARAMS and k not in ROUTER_ONLY_PARAMS
        }
        first = count[name] == 1
        entry_name = name if first else f"{name}#{count[name]}"
        entries[entry_name] = ModelEntry(
            name=entry_name,
            model=str(_resolve_env(params["model"], env)[0] or params["model"]),
            api_base=str(api_base) if api_base else None,
            api_key=key,
            api_key_source=key_source or None,
            extra_params=extra,
            deployment_of=None if first else name,
        )
    return entries


def read_models_file(path: str) -> dict[str, Any]:
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelConfigError(f"Cannot read {MODELS_FILE_ENV}={path}: {exc}") from None
    try:
        if file.suffix.lower() in {".yaml", ".yml"}:
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise ModelConfigError(f"{path} is not valid {file.suffix[1:] or 'JSON'}: {exc}") from None
    if not isinstance(data, Mapping):
        raise ModelConfigError(f"{path} must hold a mapping with a model_list")
    return dict(data)


def _check_names(table: Mapping[str, Sequence[str]], names: Any, what: str) -> None:
    for name, targets in table.items():
        unknown = [t for t in [name, *targets] if t not in names]
        if unknown:
            raise ModelConfigError(f"{what} name unknown models: {', '.join(unknown)}")


def build_models_config(
    *,
    model_list: Sequence[Mapping[str, Any]] = (),
    fallbacks: Any = None,
    default_model: str = "",
    allowed_models: Sequence[str] | None = None,
    model: str = "",
    api_base: str = "",
    api_key: str = "",
    models_file: str = "",
    env: Mapping[str, str] | None = None,
) -> ModelsConfig:
    """`models_file` (else $RUBBERDUCK_MODELS_FILE) is read only when `model_list` is empty;
    what the arguments set wins over the file."""
    environ: Mapping[str, str] = os.environ if env is None else env
    source = "traitlets"
    file = FileSettings()
    path = models_file or environ.get(MODELS_FILE_ENV, "")
    if not model_list and path:
        file = read_litellm_config(read_models_file(path), path)
        model_list = file.model_list
        fallbacks = fallbacks or file.fallbacks
        default_model = default_model or file.default_model
        if allowed_models is None:
            allowed_models = file.allowed_models
        # The file's environment_variables sit under the real environment, which wins.
        environ = {**file.environment, **environ}
        source = f"file:{path}"
        warnings = [f"{path}: {note}" for note in file.unused]
    else:
        warnings = model_list_unused(model_list)
    if not model_list:
        shortcut = (model or environ.get(MODEL_ENV, "")).strip()
        if shortcut:
            params: dict[str, Any] = {"model": shortcut}
            base = (api_base or environ.get(API_BASE_ENV, "")).strip()
            if base:
                params["api_base"] = base
            key = api_key or environ.get(API_KEY_ENV, "")
            if key:
                params["api_key"] = key
            model_list = [{"model_name": shortcut, "litellm_params": params}]
            source = "traitlets" if model else f"${MODEL_ENV}"
    if not model_list:
        detected = [
            {"model_name": name, "litellm_params": {"model": name}}
            for var, name in DETECTED_PROVIDERS
            if environ.get(var)
        ]
        if detected:
            model_list = detected
            source = "detected:" + ",".join(
                var for var, _ in DETECTED_PROVIDERS if environ.get(var)
            )
    entries = parse_model_list(model_list, environ)
    if not entries:
        return ModelsConfig(source="none", warnings=tuple(warnings))
    parsed_fallbacks = parse_fallbacks(fallbacks)
    _check_names(parsed_fallbacks, entries, "fallbacks")
    _check_names(file.context_window_fallbacks, entries, "context_window_fallbacks")
    unknown = [n for n in file.default_fallbacks if n not in entries]
    if unknown:
        raise ModelConfigError(f"default_fallbacks name unknown models: {', '.join(unknown)}")
    default = default_model or next(iter(entries))
    if default not in entries or entries[default].deployment_of is not None:
        raise ModelConfigError(f"default_model {default!r} is not in the model list")
    if allowed_models is not None:
        unknown = [n for n in allowed_models if n not in entries]
        if unknown:
            raise ModelConfigError(f"allowed_models name unknown models: {', '.join(unknown)}")
        if default not in allowed_models:
            raise ModelConfigError(f"default_model {default!r} is not in allowed_models")
    deployments = sorted({e.deployment_of for e in entries.values() if e.deployment_of})
    for name in deployments:
        n = 1 + sum(e.deployment_of == name for e in entries.values())
        warnings.append(
            f"model {name!r} has {n} deployments: RubberDuck tries them in order, one after "
            "another fails (the LiteLLM proxy balances load; RubberDuck does not)"
        )
    return ModelsConfig(
        entries=entries,
        default=default,
        fallbacks=parsed_fallbacks,
        allowed=list(allowed_models) if allowed_models is not None else None,
        source=source,
        context_window_fallbacks=file.context_window_fallbacks,
        default_fallbacks=tuple(file.default_fallbacks),
        num_retries=file.num_retries,
        timeout=file.timeout,
        warnings=tuple(warnings),
    )
