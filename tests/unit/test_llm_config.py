from __future__ import annotations

import json
from pathlib import Path

import pytest

from rubberduck_jupyter.llm.config import ModelConfigError, build_models_config

MODEL_LIST = [
    {
        "model_name": "smart",
        "litellm_params": {
            "model": "openai/gpt-4o",
            "api_key": "os.environ/TEAM_OPENAI_KEY",
            "temperature": 0.2,
        },
    },
    {
        "model_name": "local",
        "litellm_params": {"model": "ollama/llama3.1", "api_base": "http://127.0.0.1:11434"},
    },
]


def test_model_list_with_env_key_reference_and_fallbacks() -> None:
    config = build_models_config(
        model_list=MODEL_LIST,
        fallbacks=[{"smart": ["local"]}],
        env={"TEAM_OPENAI_KEY": "sk-team-secret"},
    )
    assert config.default == "smart"
    smart = config.entries["smart"]
    assert smart.api_key == "sk-team-secret"
    assert smart.api_key_source == "$TEAM_OPENAI_KEY"
    assert smart.extra_params == {"temperature": 0.2}
    assert "sk-team-secret" not in repr(smart)
    assert "sk-team-secret" not in json.dumps(smart.describe())
    assert [e.name for e in config.candidates("smart")] == ["smart", "local"]
    assert [e.name for e in config.candidates("local")] == ["local"]


def test_allowlist_limits_what_users_pick() -> None:
    config = build_models_config(
        model_list=MODEL_LIST, default_model="local", allowed_models=["local"], env={}
    )
    assert config.allowed_names() == ["local"]
    assert config.choose(None) == "local"
    with pytest.raises(ModelConfigError, match="not available"):
        config.choose("smart")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fallbacks": {"smart": ["nope"]}}, "unknown models: nope"),
        ({"default_model": "nope"}, "default_model 'nope'"),
        ({"allowed_models": ["local"]}, "not in allowed_models"),
        ({"model_list": [{"model_name": "x", "litellm_params": {}}]}, "litellm_params.model"),
        ({"model_list": [{"model_name": "a#1", "litellm_params": {"model": "m"}}]}, "'#'"),
    ],
)
def test_bad_configs_name_the_problem(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    args = {"model_list": MODEL_LIST, "env": {}} | kwargs
    with pytest.raises(ModelConfigError, match=message):
        build_models_config(**args)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_models_file_from_environment(tmp_path: Path, suffix: str) -> None:
    data = {"model_list": MODEL_LIST, "fallbacks": {"smart": ["local"]}, "default_model": "local"}
    path = tmp_path / f"models{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(data))
    else:
        import yaml

        path.write_text(yaml.safe_dump(data))
    config = build_models_config(env={"RUBBERDUCK_MODELS_FILE": str(path)})
    assert config.source == f"file:{path}"
    assert config.default == "local"
    assert config.fallbacks == {"smart": ["local"]}


def test_unreadable_models_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text("{not json")
    with pytest.raises(ModelConfigError, match="not valid json"):
        build_models_config(env={"RUBBERDUCK_MODELS_FILE": str(path)})


def test_shortcut_and_precedence() -> None:
    env = {"RUBBERDUCK_MODEL": "ollama/qwen", "RUBBERDUCK_API_BASE": "http://h:1"}
    from_env = build_models_config(env=env)
    assert from_env.default == "ollama/qwen"
    assert from_env.entries["ollama/qwen"].api_base == "http://h:1"
    assert from_env.source == "$RUBBERDUCK_MODEL"
    from_traitlet = build_models_config(model="openai/gpt-4o-mini", env=env)
    assert from_traitlet.default == "openai/gpt-4o-mini"
    assert build_models_config(model_list=MODEL_LIST, env=env).default == "smart"


def test_zero_config_detects_provider_keys() -> None:
    config = build_models_config(env={"ANTHROPIC_API_KEY": "sk-ant-x", "PATH": "/bin"})
    assert config.default == "anthropic/claude-3-5-haiku-latest"
    assert config.source == "detected:ANTHROPIC_API_KEY"
    assert not build_models_config(env={"PATH": "/bin"}).configured


def test_public_api_base_drops_credentials() -> None:
    config = build_models_config(
        model_list=[
            {
                "model_name": "proxy",
                "litellm_params": {
                    "model": "openai/team",
                    "api_base": "https://user:pw@proxy.example:4000/v1",
                },
            }
        ],
        env={},
    )
    assert config.entries["proxy"].public_api_base() == "https://proxy.example:4000/v1"
