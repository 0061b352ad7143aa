"""RubberDuck in front of a real LiteLLM proxy process (`litellm[proxy]` at our pinned
litellm), itself in front of the fake provider: the team setup of docs/hub.md.

The provider key lives only in the proxy's environment; RubberDuck holds the key the proxy
gives it (here the proxy's master key: virtual keys with budgets need the proxy's Postgres
database, which these tests cannot run) and never sees the provider's. Failover configured
in the proxy is invisible to RubberDuck except as a good answer.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rubberduck_jupyter.testing.fake_llm import authorization_digest
from tests.server_fixtures import chat_on_model, chunks_text
from tests.server_process import _free_port

UPSTREAM_KEY = "sk-upstream-provider-secret-0123456789"
PROXY_KEY = "sk-team-proxy-key-9876543210"
START_S = 120.0  # a bound for failing; the proxy takes ~25-35 s to start here


def _proxy_binary() -> str:
    found = shutil.which("litellm", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("litellm's proxy CLI is missing: `make install-test` installs litellm[proxy]")
    return found


@pytest.fixture(scope="module")
def litellm_proxy(fake_llm_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The proxy's /v1 URL. Its model_list names the fake; team-default fails over inside
    the proxy (router_settings) to team-backup."""
    base = tmp_path_factory.mktemp("litellm-proxy")
    fake = fake_llm_server.base_url
    models = [("team-default", "fake-team"), ("team-flaky", "fake-flaky-fault-500")]
    models.append(("team-backup", "fake-backup"))
    entries = "".join(
        f"  - model_name: {name}\n"
        f"    litellm_params: {{model: openai/{model}, api_base: '{fake}', "
        "api_key: os.environ/UPSTREAM_KEY}\n"
        for name, model in models
    )
    (base / "config.yaml").write_text(
        f"""model_list:
{entries}router_settings:
  fallbacks: [{{team-flaky: [team-backup]}}]
  num_retries: 0
general_settings:
  master_key: {PROXY_KEY}
"""
    )
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
        "UPSTREAM_KEY": UPSTREAM_KEY,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
    }
    process = subprocess.Popen(
        [_proxy_binary(), "--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port)],
        cwd=base,
        env=env,
        stdout=(base / "proxy.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the LiteLLM proxy exited: {(base / 'proxy.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health/liveliness", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail("the LiteLLM proxy did not start in time")
                time.sleep(0.5)
        yield f"{url}/v1"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def _team_model(name: str, proxy: str) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {
            "model": f"openai/{name}",
            "api_base": proxy,
            "api_key": "os.environ/LITELLM_VIRTUAL_KEY",
        },
    }


@pytest.fixture
def rubberduck_config(
    litellm_proxy: str, direct_openai_streaming: bool, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.setenv("LITELLM_VIRTUAL_KEY", PROXY_KEY)
    return {
        "models": [
            _team_model("team-default", litellm_proxy),
            _team_model("team-flaky", litellm_proxy),
            {
                "model_name": "wrong-key",
                "litellm_params": {
                    "model": "openai/team-default",
                    "api_base": litellm_proxy,
                    "api_key": "os.environ/NOT_THE_PROXY_KEY",
                },
            },
        ],
        "direct_openai_streaming": direct_openai_streaming,
        "ollama_url": "http://127.0.0.1:9",
        "retry_base_delay": 0.01,
    }


async def test_answers_stream_through_the_proxy_which_alone_holds_the_provider_key(
    jp_ws_fetch: Any, jp_fetch: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["Use a groupby, then agg."])
    frames = await chat_on_model(jp_ws_fetch, "How do I sum per group?", "team-default")
    assert frames[-1]["type"] == "done", frames[-1]
    assert chunks_text(frames) == "Use a groupby, then agg."
    (request,) = fake_llm.requests
    assert request["model"] == "fake-team"
    # The provider saw the proxy's provider key, never the key RubberDuck holds.
    assert request["_fake"]["authorization_sha256"] == authorization_digest(
        f"Bearer {UPSTREAM_KEY}"
    )
    models = (await jp_fetch("rubberduck", "api", "models")).body.decode()
    assert PROXY_KEY not in models and UPSTREAM_KEY not in models


async def test_failover_configured_in_the_proxy_reaches_rubberduck_as_an_answer(
    jp_ws_fetch: Any, fake_llm: Any
) -> None:
    fake_llm.set_replies(["The backup answered."])
    frames = await chat_on_model(jp_ws_fetch, "Anything", "team-flaky")
    assert frames[-1]["type"] == "done", frames[-1]
    assert chunks_text(frames) == "The backup answered."
    assert [r["model"] for r in fake_llm.requests] == ["fake-flaky-fault-500", "fake-backup"]


async def test_a_key_the_proxy_refuses_ends_in_its_reason_and_reaches_no_provider(
    jp_ws_fetch: Any, fake_llm: Any
) -> None:
    # Without its database the proxy cannot look a virtual key up and answers 400 "No
    # connected db." (with one it answers 401, which is provider_auth: test_llm_faults).
    frames = await chat_on_model(jp_ws_fetch, "Anything", "wrong-key")
    error = frames[-1]
    assert error["type"] == "error", error
    assert error["code"] in {"provider_auth", "provider_error"}, error
    assert error["message"].startswith("wrong-key ")
    assert "db" in error["message"].lower() or "$NOT_THE_PROXY_KEY" in error["message"]
    assert fake_llm.requests == []  # the proxy stopped it; the provider saw nothing
