"""A LiteLLM proxy config.yaml pasted as it is: its models, failover, retries and timeout
take effect, and every key RubberDuck does not use is named, never ignored silently."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rubberduck_jupyter.llm.config import ModelConfigError, build_models_config

PROXY_CONFIG = """
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o-eu
      api_base: os.environ/AZURE_API_BASE
      api_key: os.environ/AZURE_API_KEY
      rpm: 600
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
  - model_name: claude
    litellm_params:
      model: anthropic/claude-3-5-sonnet-latest
      api_key: os.environ/ANTHROPIC_API_KEY
    model_info:
      id: claude-main
  - model_name: long-context
    litellm_params:
      model: gemini/gemini-1.5-pro
router_settings:
  routing_strategy: simple-shuffle
  fallbacks: [{"gpt-4o": ["claude"]}]
  context_window_fallbacks: [{"gpt-4o": ["long-context"]}, {"claude": ["long-context"]}]
  num_retries: 3
  timeout: 45
litellm_settings:
  drop_params: true
  fallbacks: [{"claude": ["gpt-4o"]}]
general_settings:
  master_key: sk-1234
environment_variables:
  AZURE_API_BASE: https://eu.example.openai.azure.com
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> object:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return build_models_config(models_file=str(path), env=env or {})


def test_proxy_config_works_as_it_is(tmp_path: Path) -> None:
    config = load(tmp_path, PROXY_CONFIG, {"AZURE_API_KEY": "azure-key-123456"})
    assert config.default == "gpt-4o"
    # Two deployments of gpt-4o: the second is tried after the first, never offered alone.
    assert config.allowed_names() == ["gpt-4o", "claude", "long-context"]
    assert [e.name for e in config.candidates("gpt-4o")] == ["gpt-4o", "gpt-4o#2", "claude"]
    assert config.entries["gpt-4o#2"].model == "openai/gpt-4o"
    # router_settings' and litellm_settings' fallbacks both apply.
    assert [e.name for e in config.candidates("claude")] == ["claude", "gpt-4o", "gpt-4o#2"]
    assert [e.name for e in config.candidates("gpt-4o", context_window=True)] == ["long-context"]
    assert config.num_retries == 3
    assert config.timeout == 45.0
    azure = config.entries["gpt-4o"]
    assert azure.api_base == "https://eu.example.openai.azure.com"  # environment_variables
    assert azure.api_key == "azure-key-123456"
    assert "rpm" not in azure.extra_params  # a Router setting, not a call parameter


def test_every_unused_key_is_named_with_what_to_do(tmp_path: Path) -> None:
    config = load(tmp_path, PROXY_CONFIG)
    text = "\n".join(config.warnings)
    for key in (
        "router_settings.routing_strategy",
        "litellm_settings.drop_params",
        "general_settings",
        "model_list[].model_info (1 entry)",
        "model_list[].litellm_params.rpm (1 entry)",
    ):
        assert key in text, key
    assert "user_requests_per_minute" in text  # rpm names RubberDuck's own limit
    assert "2 deployments" in text
    used = ("router_settings.fallbacks", "num_retries", "router_settings.timeout")
    assert not any(u in text for u in used)
    assert "sk-1234" not in text  # a value is never shown, only its key


def test_environment_wins_over_the_files_environment_variables(tmp_path: Path) -> None:
    config = load(tmp_path, PROXY_CONFIG, {"AZURE_API_BASE": "https://us.example"})
    assert config.entries["gpt-4o"].api_base == "https://us.example"


def test_fallbacks_under_litellm_settings_alone_fail_over(tmp_path: Path) -> None:
    text = yaml.safe_dump(
        {
            "model_list": [
                {"model_name": "a", "litellm_params": {"model": "openai/a"}},
                {"model_name": "b", "litellm_params": {"model": "openai/b"}},
            ],
            "litellm_settings": {"fallbacks": [{"a": ["b"]}], "request_timeout": 12},
        }
    )
    config = load(tmp_path, text)
    assert [e.name for e in config.candidates("a")] == ["a", "b"]
    assert config.timeout == 12.0
    assert config.warnings == ()


def test_default_fallbacks_apply_to_models_without_their_own(tmp_path: Path) -> None:
    text = yaml.safe_dump(
        {
            "model_list": [
                {"model_name": n, "litellm_params": {"model": f"openai/{n}"}}
                for n in ("a", "b", "c")
            ],
            "router_settings": {"default_fallbacks": ["c"], "fallbacks": [{"a": ["b"]}]},
        }
    )
    config = load(tmp_path, text)
    assert [e.name for e in config.candidates("a")] == ["a", "b"]
    assert [e.name for e in config.candidates("b")] == ["b", "c"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"router_settings": {"fallbacks": [{"a": ["zz"]}]}}, "fallbacks name unknown models: zz"),
        ({"router_settings": {"context_window_fallbacks": [{"a": "zz"}]}}, "unknown models: zz"),
        ({"router_settings": {"num_retries": -1}}, "num_retries must be a number"),
        ({"router_settings": {"timeout": "soon"}}, "timeout must be a number"),
        ({"router_settings": ["x"]}, "router_settings must be a mapping"),
        ({"router_settings": {"default_fallbacks": ["zz"]}}, "default_fallbacks name unknown"),
    ],
)
def test_bad_litellm_settings_name_the_problem(
    tmp_path: Path, extra: dict[str, object], message: str
) -> None:
    data = {"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/a"}}], **extra}
    with pytest.raises(ModelConfigError, match=message):
        load(tmp_path, yaml.safe_dump(data))


def test_models_traitlet_warns_about_router_only_params() -> None:
    config = build_models_config(
        model_list=[{"model_name": "a", "litellm_params": {"model": "openai/a", "tpm": 1000}}],
        env={},
    )
    assert any("litellm_params.tpm" in w for w in config.warnings)
    assert "tpm" not in config.entries["a"].extra_params
