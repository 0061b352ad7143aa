"""`jupyter rubberduck doctor` run as a user runs it, against the fake provider."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_doctor(tmp_path: Path, *args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RUBBERDUCK_") and not k.endswith("_API_KEY")
    }
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), **env_vars)
    return subprocess.run(
        [sys.executable, "-m", "jupyter", "rubberduck", "doctor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_doctor_reports_a_working_setup(tmp_path: Path, fake_llm: Any) -> None:
    result = run_doctor(
        tmp_path,
        RUBBERDUCK_MODEL="openai/fake-model",
        RUBBERDUCK_API_BASE=fake_llm.base_url,
        RUBBERDUCK_API_KEY="sk-doctor-secret-value",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok  ] models: 1 from $RUBBERDUCK_MODEL; default openai/fake-model" in result.stdout
    assert "[ok  ] api key for openai/fake-model: from config (value hidden)" in result.stdout
    assert "[ok  ] server extension: rubberduck_jupyter is enabled" in result.stdout
    assert "[ok  ] lab extension: installed in" in result.stdout
    assert "[ok  ] openai/fake-model answers: replied in" in result.stdout
    assert "sk-doctor-secret-value" not in result.stdout + result.stderr
    assert len(fake_llm.requests) == 1


def test_doctor_reads_traitlets_from_config_files(tmp_path: Path, fake_llm: Any) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "jupyter_server_config.py").write_text(
        f"c.RubberDuckApp.model = 'openai/from-config'\n"
        f"c.RubberDuckApp.api_base = '{fake_llm.base_url}'\n"
    )
    result = run_doctor(tmp_path, RUBBERDUCK_MODEL="openai/from-env")
    assert "models: 1 from traitlets; default openai/from-config" in result.stdout
    assert result.returncode == 0, result.stdout
    assert fake_llm.requests[-1]["model"] == "from-config"


def test_doctor_explains_what_to_fix(tmp_path: Path, fake_llm: Any) -> None:
    no_model = run_doctor(tmp_path)
    assert no_model.returncode == 1
    assert "[FAIL] model: no model configured" in no_model.stdout
    assert "fix: export RUBBERDUCK_MODEL=" in no_model.stdout

    missing_key = run_doctor(tmp_path, "--skip-model", RUBBERDUCK_MODEL="anthropic/claude-x")
    assert missing_key.returncode == 1
    assert "[FAIL] api key for anthropic/claude-x: $ANTHROPIC_API_KEY is not set" in (
        missing_key.stdout
    )

    fake_llm.add_faults(["401"])
    refused = run_doctor(
        tmp_path, RUBBERDUCK_MODEL="openai/fake-model", RUBBERDUCK_API_BASE=fake_llm.base_url
    )
    assert refused.returncode == 1
    assert "[FAIL] openai/fake-model answers: auth" in refused.stdout


def test_doctor_walks_a_models_file_with_fallbacks(tmp_path: Path, fake_llm: Any) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(
        "model_list:\n"
        "  - model_name: main\n"
        f"    litellm_params: {{model: openai/fake-main, api_base: '{fake_llm.base_url}', "
        "api_key: os.environ/TEAM_KEY}\n"
        "  - model_name: backup\n"
        f"    litellm_params: {{model: openai/fake-backup, api_base: '{fake_llm.base_url}'}}\n"
        "fallbacks: [{main: [backup]}]\n"
    )
    result = run_doctor(tmp_path, RUBBERDUCK_MODELS_FILE=str(models), TEAM_KEY="sk-team-value")
    assert result.returncode == 0, result.stdout
    assert f"models: 2 from file:{models}; default main" in result.stdout
    assert "falls back to backup" in result.stdout
    assert "api key for main: from $TEAM_KEY (value hidden)" in result.stdout
    assert "sk-team-value" not in result.stdout
    assert [r["model"] for r in fake_llm.requests] == ["fake-main", "fake-backup"]


def test_doctor_reads_a_litellm_proxy_config_and_warns_about_unused_keys(
    tmp_path: Path, fake_llm: Any
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: main\n"
        f"    litellm_params: {{model: openai/fake-main, api_base: '{fake_llm.base_url}', "
        "rpm: 60}\n"
        "  - model_name: wide\n"
        f"    litellm_params: {{model: openai/fake-wide, api_base: '{fake_llm.base_url}'}}\n"
        "router_settings:\n"
        "  routing_strategy: latency-based-routing\n"
        "  context_window_fallbacks: [{main: [wide]}]\n"
        "litellm_settings:\n"
        "  fallbacks: [{main: [wide]}]\n"
        "general_settings: {master_key: sk-master-secret}\n"
    )
    (tmp_path / "config").mkdir()
    server_config = tmp_path / "config" / "jupyter_server_config.py"
    server_config.write_text(f"c.RubberDuckApp.models_file = {str(config)!r}\n")
    result = run_doctor(tmp_path, "--skip-model")
    assert result.returncode == 0, result.stdout
    assert f"models: 2 from file:{config}" in result.stdout
    assert "falls back to wide; prompts too long for it go to wide" in result.stdout
    warned = [line for line in result.stdout.splitlines() if "[warn]" in line]
    assert any("router_settings.routing_strategy is not used" in w for w in warned), warned
    assert any("general_settings is not used" in w for w in warned), warned
    assert any("litellm_params.rpm (1 entry)" in w for w in warned), warned
    assert "sk-master-secret" not in result.stdout
