"""PluginHost and the registry's run-time changes: built-ins as plugins, the engine catalog,
reload and removal, the admin's policy file, and `jupyter rubberduck plugins list`."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from rubberduck_jupyter.domain.preferences import Preferences
from rubberduck_jupyter.engines.registry import build_engines
from rubberduck_jupyter.plugin_host import PluginHost
from rubberduck_jupyter.plugin_settings import PluginSettings, admin_policy
from rubberduck_jupyter.plugins import AccessPolicy, PluginState
from rubberduck_jupyter.plugins.discovery import PRIVATE_MODULE_PREFIX, folder_candidates

pytestmark = pytest.mark.timeout(10)


class NoSave:
    async def save(self, user: Any, prefs: Preferences) -> None:
        return None


@pytest.fixture(autouse=True)
def _forget_folder_modules() -> Any:
    yield
    for name in [m for m in sys.modules if m.startswith(PRIVATE_MODULE_PREFIX)]:
        del sys.modules[name]


def host(folder: Path | None = None, policy: AccessPolicy | None = None) -> PluginHost:
    h = PluginHost(
        PluginSettings(
            folders=(folder,) if folder else (),
            entry_points=False,
            policy=policy or AccessPolicy(),
            reload=False,
        )
    )
    catalog = h.catalog()
    h.register_builtins(build_engines(preferences=NoSave(), infos=catalog.infos))
    h.discover()
    return h


def greet(folder: Path, word: str, version: str = "1.0") -> None:
    (folder / "greet.py").write_text(
        textwrap.dedent(f"""
        from rubberduck_jupyter.plugins import command, plugin
        spec = plugin(name="greet", version="{version}", api=">=1,<2")

        @command("greet", help="Greet", args=["NAME?"])
        async def greet(ctx, name="you"):
            return "{word} " + name
        """)
    )


def test_builtins_are_plugins_and_the_catalog_reads_their_commands(tmp_path: Path) -> None:
    greet(tmp_path, "Hi")
    h = host(tmp_path)
    catalog = h.catalog()
    assert {"simple", "analysis", "help", "preferences", "greet"} <= catalog.names()
    commands = catalog.commands()
    assert commands["think"] == "complex" and commands["fix"] == "problem_solver"
    assert commands["greet"] == "greet"
    rows = {r["name"]: r for r in h.list()}
    assert rows["static-review"]["provides"] == ["analysis"]
    assert rows["multi_step"]["source"].startswith("built-in")
    assert h.analyzer() is not None


def test_an_allow_list_does_not_switch_off_our_engines_but_deny_does(tmp_path: Path) -> None:
    greet(tmp_path, "Hi")
    h = host(tmp_path, AccessPolicy.of(allow=["other"], deny=["multi-step", "static-review"]))
    names = h.catalog().names()
    assert "simple" in names and "multi_step" not in names and "greet" not in names
    assert h.analyzer() is None  # the review path then offers plugins' findings only
    rows = {r["name"]: r for r in h.list()}
    assert rows["greet"]["state"] == "skipped" and "plugins_allow" in rows["greet"]["reason"]
    assert "plugins_deny" in rows["multi_step"]["reason"]


async def test_reload_swaps_a_plugin_and_keeps_the_old_one_when_the_new_fails(
    tmp_path: Path,
) -> None:
    greet(tmp_path, "Hi")
    h = host(tmp_path)
    old_handler = h.registry.commands()["greet"][1].handler
    generation = h.registry.generation
    greet(tmp_path, "Howdy", version="2.0")
    h.reload_paths(tmp_path, [tmp_path / "greet.py"])
    assert await h.registry.run_command("greet", None, ["Bo"]) == "Howdy Bo"
    assert h.registry.generation > generation
    assert h.catalog().get("greet") is not None
    # What was running keeps its function: the old version's handler still works.
    assert await old_handler(None, "Al") == "Hi Al"
    (tmp_path / "greet.py").write_text("def broken(:\n")
    [cand] = [c for c in folder_candidates(tmp_path) if c.name == "greet"]
    rec = h.registry.reload(cand)
    assert rec.state is PluginState.LOADED and rec.spec is not None and rec.spec.version == "2.0"
    assert rec.reason.startswith("reload failed: import failed: SyntaxError")
    assert rec.reason.endswith("version 2.0 keeps running")
    assert await h.registry.run_command("greet", None, []) == "Howdy you"
    assert [r["name"] for r in h.list()].count("greet") == 1
    (tmp_path / "greet.py").unlink()
    h.reload_paths(tmp_path, [tmp_path / "greet.py"])
    assert "greet" not in h.registry.commands() and "greet" not in h.catalog().names()
    await h.stop()


def test_reload_ignores_paths_outside_and_private_names(tmp_path: Path) -> None:
    greet(tmp_path, "Hi")
    h = host(tmp_path)
    assert h.reload_paths(tmp_path, [tmp_path.parent / "x.py", tmp_path / "_private.py"]) == []
    assert h.reload_paths(tmp_path, [tmp_path / "__pycache__" / "greet.cpython-311.pyc"]) == []
    assert h.reload_paths(tmp_path, [tmp_path / "greet.py"]) == ["greet"]


def test_the_admins_policy_file_narrows_and_a_bad_one_fails_closed(tmp_path: Path) -> None:
    first, second, bad = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (first, second, bad):
        d.mkdir()
    (first / "rubberduck_plugins.json").write_text(json.dumps({"allow": ["doc", "tests"]}))
    (second / "rubberduck_plugins.json").write_text(json.dumps({"deny": ["tests"]}))
    policy = admin_policy([str(first), str(second)])
    assert policy is not None
    assert policy.refusal("doc") is None and policy.refusal("tests") is not None
    assert policy.refusal("pandas-review") is not None
    assert admin_policy([str(tmp_path)]) is None
    (bad / "rubberduck_plugins.json").write_text('{"allow": "doc"}')
    closed = admin_policy([str(bad)])
    assert closed is not None and closed.refusal("doc") is not None
    assert closed.refusal("simple", builtin=True) is None


def test_the_cli_lists_what_the_server_would_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rubberduck_jupyter import cli

    greet(tmp_path, "Hi")
    (tmp_path / "broken.py").write_text("raise ImportError('gone')\n")
    config = {"plugins_dir": str(tmp_path), "plugins_entry_points": False}
    monkeypatch.setattr(cli, "load_server_config", lambda: config)
    assert cli.main(["plugins", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAME", "VERSION", "STATE", "PERMISSIONS", "SOURCE", "REASON"]
    broken = next(line for line in out if line.startswith("broken "))
    assert "failed" in broken and "ImportError: gone" in broken
    assert any(line.startswith("greet ") and " loaded " in line for line in out)
    assert cli.main(["plugins", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["state"] for r in rows}["greet"] == "loaded"


def test_embedders_are_built_in_plugins_and_a_denied_one_is_refused_by_name() -> None:
    from rubberduck_jupyter.index.embedder_config import (
        EmbedderConfig,
        EmbedderConfigError,
        build_embedder,
    )

    h = host()
    assert set(h.embedder_factories()) == {"minilm", "model2vec", "litellm"}
    rows = {r["name"]: r for r in h.list()}
    assert rows["litellm-embedder"]["provides"] == ["embedder"]
    denied = host(policy=AccessPolicy.of(deny=["litellm-embedder"]))
    assert "litellm" not in denied.embedder_factories()
    config = EmbedderConfig(spec="litellm:openai/text-embedding-3-small")
    with pytest.raises(EmbedderConfigError, match="the 'litellm' embedder plugin is not loaded"):
        build_embedder(config, factories=denied.embedder_factories)
