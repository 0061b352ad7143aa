"""Reads a LiteLLM proxy `config.yaml` as it is, and says what in it RubberDuck does not use.

An admin who runs a LiteLLM proxy already has this file; pasting it (or naming it with
`models_file`) must give RubberDuck the same models and the same failover. What RubberDuck
reads:

- `model_list`: every entry; several entries with one `model_name` are that name's
  deployments, tried in the file's order (RubberDuck fails over, it does not balance load).
- `fallbacks`, `context_window_fallbacks`, `default_fallbacks`: at the top level, under
  `router_settings` or under `litellm_settings` (LiteLLM accepts all three places; a model's
  list under `router_settings` wins over `litellm_settings`, the top level over both).
- `router_settings.num_retries` / `litellm_settings.num_retries` (retries after the first
  try) and `router_settings.timeout` / `litellm_settings.request_timeout` (seconds per call).
- `environment_variables`: values that `os.environ/NAME` references fall back to.
- RubberDuck's own keys: `default_model`, `allowed_models`.

Every other key is reported, with the RubberDuck setting that does its job where there is
one: at start in the server log and by `jupyter rubberduck doctor`. Nothing is ignored
silently, because a key that seems to work and does not (fallbacks that never fail over) is
worse than an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ModelConfigError

_FALLBACK_KEYS = ("fallbacks", "context_window_fallbacks", "default_fallbacks")
_TOP_LEVEL_USED = {
    "model_list",
    *_FALLBACK_KEYS,
    "default_model",
    "allowed_models",
    "router_settings",
    "litellm_settings",
    "environment_variables",
}
_ROUTER_USED = {*_FALLBACK_KEYS, "num_retries", "timeout"}
_LITELLM_USED = {*_FALLBACK_KEYS, "num_retries", "request_timeout"}
_ENTRY_USED = {"model_name", "litellm_params"}

# Why a known key does nothing here, and what does its job in RubberDuck.
_REASONS: dict[str, str] = {
    "general_settings": "the proxy's own settings (master key, database, UI); RubberDuck is "
    "a client of the proxy",
    "routing_strategy": "RubberDuck tries a model's deployments in order; load balancing "
    "across users is the proxy's job",
    "allowed_fails": "RubberDuck's circuit breakers use breaker_failure_threshold",
    "cooldown_time": "RubberDuck's circuit breakers use breaker_reset_timeout",
    "retry_policy": "RubberDuck retries transient failures max_attempts times per model",
    "stream_timeout": "RubberDuck's streaming timeouts are first_token_timeout and idle_timeout",
    "redis_host": "shared state for several proxy instances; RubberDuck's limits are per "
    "user server (user_requests_per_minute, ...)",
    "redis_port": "shared state for several proxy instances",
    "redis_password": "shared state for several proxy instances",
    "rpm": "per-deployment load balancing is the proxy's job; RubberDuck's own limits are "
    "user_requests_per_minute and global_requests_per_minute",
    "tpm": "per-deployment load balancing is the proxy's job; RubberDuck's own limits are "
    "user_tokens_per_minute and global_tokens_per_minute",
    "max_parallel_requests": "the proxy's concurrency limit per deployment",
    "order": "deployments are tried in the file's order",
    "weight": "deployments are tried in the file's order, not weighted",
    "model_info": "metadata for the proxy's /model/info; RubberDuck reads a model's context "
    "window from litellm's model map",
    "drop_params": "RubberDuck sends only the parameters it needs",
    "set_verbose": "RubberDuck logs through the Jupyter server's log",
    "success_callback": "RubberDuck records usage and cost itself (GET /rubberduck/api/usage)",
    "failure_callback": "RubberDuck records failures in health and /metrics",
    "callbacks": "RubberDuck records usage and cost itself (GET /rubberduck/api/usage)",
    "cache": "RubberDuck keeps its own small answer cache for open breakers (cache_entries)",
}

# litellm_params that configure LiteLLM's Router rather than the call: not sent to a model.
ROUTER_ONLY_PARAMS = frozenset(
    {"rpm", "tpm", "max_parallel_requests", "order", "weight", "model_info"}
)


@dataclass(frozen=True)
class FileSettings:
    """What a LiteLLM-shaped config gives RubberDuck, and the keys it leaves unused."""

    model_list: list[Mapping[str, Any]] = field(default_factory=list)
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    context_window_fallbacks: dict[str, list[str]] = field(default_factory=dict)
    default_fallbacks: list[str] = field(default_factory=list)
    default_model: str = ""
    allowed_models: list[str] | None = None
    num_retries: int | None = None
    timeout: float | None = None
    environment: dict[str, str] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)


def parse_fallbacks(raw: Any) -> dict[str, list[str]]:
    """LiteLLM writes fallbacks as [{"a": ["b", "c"]}]; a plain {"a": [...]} works too."""
    if not raw:
        return {}
    items = raw if isinstance(raw, list) else [raw]
    fallbacks: dict[str, list[str]] = {}
    for item in items:
        if not isinstance(item, Mapping):
            raise ModelConfigError("fallbacks must map a model_name to a list of model_names")
        for name, targets in item.items():
            if isinstance(targets, str):
                targets = [targets]
            if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
                raise ModelConfigError(f"fallbacks for {name!r} must be a list of model_names")
            fallbacks[str(name)] = list(targets)
    return fallbacks


def _unused(path: str, key: str) -> str:
    reason = _REASONS.get(key)
    return f"{path} is not used by RubberDuck" + (f" ({reason})" if reason else "")


def _section(data: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ModelConfigError(f"{where}: {name} must be a mapping")
    return value


def _merged_fallbacks(key: str, *sections: Mapping[str, Any]) -> dict[str, list[str]]:
    """A model's list from the first section that names it (sections in priority order)."""
    merged: dict[str, list[str]] = {}
    for section in reversed(sections):
        merged.update(parse_fallbacks(section.get(key)))
    return merged


def _names(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ModelConfigError(f"{what} must be a list of model_names")
    return list(value)


def _number(value: Any, what: str, *, integer: bool) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ModelConfigError(f"{what} must be a number of at least 0, not {value!r}")
    return int(value) if integer else float(value)


def model_list_unused(model_list: Sequence[Any]) -> list[str]:
    """Per key, once: the entry and litellm_params keys of `model_list` that go nowhere."""
    entry_keys: dict[str, int] = {}
    param_keys: dict[str, int] = {}
    for raw in model_list:
        if not isinstance(raw, Mapping):
            continue
        for key in raw:
            if key not in _ENTRY_USED:
                entry_keys[str(key)] = entry_keys.get(str(key), 0) + 1
        params = raw.get("litellm_params")
        if isinstance(params, Mapping):
            for key in params:
                if key in ROUTER_ONLY_PARAMS:
                    param_keys[str(key)] = param_keys.get(str(key), 0) + 1
    notes = [
        _unused(f"model_list[].{key} ({count} entr{'y' if count == 1 else 'ies'})", key)
        for key, count in entry_keys.items()
    ]
    notes += [
        _unused(
            f"model_list[].litellm_params.{key} ({count} entr{'y' if count == 1 else 'ies'})",
            key,
        )
        for key, count in param_keys.items()
    ]
    return notes


def read_litellm_config(data: Mapping[str, Any], where: str) -> FileSettings:
    """`data` is the parsed file; `where` names it in messages."""
    router = _section(data, "router_settings", where)
    settings = _section(data, "litellm_settings", where)
    environment = _section(data, "environment_variables", where)
    unused = [_unused(str(key), str(key)) for key in data if key not in _TOP_LEVEL_USED]
    unused += [_unused(f"router_settings.{k}", str(k)) for k in router if k not in _ROUTER_USED]
    unused += [_unused(f"litellm_settings.{k}", str(k)) for k in settings if k not in _LITELLM_USED]
    model_list = data.get("model_list") or []
    if not isinstance(model_list, list):
        raise ModelConfigError(f"{where}: model_list must be a list")
    unused += model_list_unused(model_list)

    default_fallbacks: list[str] = []
    for section, name in (
        (data, ""),
        (router, "router_settings."),
        (settings, "litellm_settings."),
    ):
        if section.get("default_fallbacks") is not None:
            default_fallbacks = _names(section["default_fallbacks"], f"{name}default_fallbacks")
            break
    num_retries = _number(
        router.get("num_retries", settings.get("num_retries")), "num_retries", integer=True
    )
    timeout = _number(
        router.get("timeout", settings.get("request_timeout")), "timeout", integer=False
    )
    allowed = data.get("allowed_models")
    return FileSettings(
        model_list=list(model_list),
        fallbacks=_merged_fallbacks("fallbacks", data, router, settings),
        context_window_fallbacks=_merged_fallbacks(
            "context_window_fallbacks", data, router, settings
        ),
        default_fallbacks=default_fallbacks,
        default_model=str(data.get("default_model") or ""),
        allowed_models=None if allowed is None else _names(allowed, "allowed_models"),
        num_retries=None if num_retries is None else int(num_retries),
        timeout=timeout,
        environment={str(k): str(v) for k, v in environment.items() if v is not None},
        unused=unused,
    )
