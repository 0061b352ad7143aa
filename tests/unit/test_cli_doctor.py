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
    assert "[ok  ] model: openai/fake-model (from $RUBBERDUCK_MODEL)" in result.stdout
    assert "[ok  ] server extension: rubberduck_jupyter is enabled" in result.stdout
    assert "[ok  ] lab extension: installed in" in result.stdout
    assert "model answers: replied in" in result.stdout
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
    assert "model: openai/from-config (from c.RubberDuckApp.model)" in result.stdout
    assert result.returncode == 0, result.stdout
    assert fake_llm.requests[-1]["model"] == "from-config"


def test_doctor_explains_what_to_fix(tmp_path: Path, fake_llm: Any) -> None:
    no_model = run_doctor(tmp_path)
    assert no_model.returncode == 1
    assert "[FAIL] model: no model configured" in no_model.stdout
    assert "fix: export RUBBERDUCK_MODEL=" in no_model.stdout

    missing_key = run_doctor(tmp_path, "--skip-model", RUBBERDUCK_MODEL="anthropic/claude-x")
    assert missing_key.returncode == 1
    assert "[FAIL] api key: $ANTHROPIC_API_KEY is not set" in missing_key.stdout

    fake_llm.add_faults(["401"])
    refused = run_doctor(
        tmp_path, RUBBERDUCK_MODEL="openai/fake-model", RUBBERDUCK_API_BASE=fake_llm.base_url
    )
    assert refused.returncode == 1
    assert "[FAIL] model answers: provider_auth" in refused.stdout
