"""Discovery from a real entry point and from folders, negotiation, allow/deny, bad plugins."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from rubberduck_jupyter.plugins import (
    AccessPolicy,
    PluginRegistry,
    merge_policies,
    negotiate,
    plugin,
)
from rubberduck_jupyter.plugins.discovery import PRIVATE_MODULE_PREFIX, folder_candidates

pytestmark = pytest.mark.timeout(10)

FIXTURES = Path(__file__).resolve().parents[1] / "plugin_fixtures"


def write(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


def good(name: str, api: str = ">=1,<2", extra: str = "") -> str:
    return (
        "from rubberduck_jupyter.plugins import plugin, hookimpl, command\n"
        f"spec = plugin(name={name!r}, version='1.0', api={api!r})\n" + textwrap.dedent(extra)
    )


@pytest.fixture(autouse=True)
def _forget_plugin_modules() -> Iterator[None]:
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith((PRIVATE_MODULE_PREFIX, "rd_ep_fixture")):
            del sys.modules[name]


# -- entry points --------------------------------------------------------------------------


@pytest.fixture
def installed_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real distribution on sys.path: a module plus a dist-info with entry_points.txt."""
    site = tmp_path / "site"
    pkg = site / "rd_ep_fixture"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(
        good(
            "ep-hello",
            extra="""
            @command("ep-hello", help="Hello from an entry point")
            async def hi(ctx):
                return "hi"
            """,
        )
    )
    dist = site / "rd_ep_fixture-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rd-ep-fixture\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text(
        "[rubberduck.plugins]\nep-hello = rd_ep_fixture.plugin\n"
        "ep-broken = rd_ep_fixture.missing_module\n"
    )
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return site


def test_a_plugin_is_discovered_from_a_real_entry_point(installed_entry_point: Path) -> None:
    reg = PluginRegistry()
    reg.load_entry_points()
    rows = {r["name"]: r for r in reg.list()}
    assert rows["ep-hello"]["state"] == "loaded"
    assert rows["ep-hello"]["source"] == (
        "entry point ep-hello = rd_ep_fixture.plugin (rd-ep-fixture 0.3)"
    )
    assert "ep-hello" in reg.commands()
    # The broken entry point in the same distribution is listed, not raised.
    assert rows["ep-broken"]["state"] == "failed"
    assert "import failed: ModuleNotFoundError" in rows["ep-broken"]["reason"]


def test_a_denied_entry_point_is_never_imported(installed_entry_point: Path) -> None:
    reg = PluginRegistry(policy=AccessPolicy.of(deny=["ep-hello", "ep-broken"]))
    reg.load_entry_points()
    assert "rd_ep_fixture.plugin" not in sys.modules
    # Only the fixture's two: our own bundled plugins are entry points too, and load.
    fixture_rows = [r for r in reg.list() if r["name"] in {"ep-hello", "ep-broken"}]
    assert [r["state"] for r in fixture_rows] == ["skipped", "skipped"]


# -- folders -------------------------------------------------------------------------------


def test_folder_plugins_files_and_packages_load_and_underscore_files_are_ignored() -> None:
    reg = PluginRegistry()
    reg.load_folder(FIXTURES / "folder_a")
    assert [(r["name"], r["state"]) for r in reg.list()] == [
        ("hello", "loaded"),
        ("pkgplug", "loaded"),
    ]
    hello = reg.list()[0]
    assert hello == {
        "name": "hello",
        "version": "1.0",
        "source": str(FIXTURES / "folder_a" / "hello.py"),
        "state": "loaded",
        "permissions": ["call_model"],
        "provides": ["engine"],
        "reason": "",
    }
    assert reg.get("hello").hooks == ("pre_input",)  # type: ignore[union-attr]
    assert reg.get("pkgplug").hooks == ("analysis_augment",)  # type: ignore[union-attr]


def test_two_folders_hello_py_never_clash(tmp_path: Path) -> None:
    a, b = PluginRegistry(), PluginRegistry()
    a.load_folder(FIXTURES / "folder_a")
    b.load_folder(FIXTURES / "folder_b")
    mod_a, mod_b = a.get("hello").module, b.get("hello").module  # type: ignore[union-attr]
    assert mod_a is not mod_b
    assert mod_a.__name__ != mod_b.__name__
    assert mod_a.__name__.startswith(PRIVATE_MODULE_PREFIX)
    assert mod_b.WHERE == "b" and not hasattr(mod_a, "WHERE")  # type: ignore[attr-defined]
    assert "hello" not in sys.modules  # never under the bare name
    # In one registry the second 'hello' is listed beside the first, not over it.
    both = PluginRegistry()
    both.discover(entry_points=False, folders=[FIXTURES / "folder_a", FIXTURES / "folder_b"])
    hellos = [r for r in both.list() if r["name"] == "hello"]
    assert [(r["version"], r["state"]) for r in hellos] == [("1.0", "loaded"), ("2.0", "skipped")]
    assert "already loaded from" in hellos[1]["reason"]


def test_a_missing_folder_yields_nothing(tmp_path: Path) -> None:
    assert folder_candidates(tmp_path / "nope") == []


def test_bad_plugins_are_listed_as_failed_and_never_raise(tmp_path: Path) -> None:
    write(tmp_path, "boom", "raise RuntimeError('kaboom at import')\n")
    write(tmp_path, "bye", "import sys\nsys.exit(3)\n")
    write(tmp_path, "nospec", "x = 1\n")
    write(
        tmp_path,
        "badperm",
        good("badperm").replace("api='>=1,<2'", "api='>=1', permissions=['root']"),
    )
    write(tmp_path, "renamed", good("other-name"))
    write(
        tmp_path,
        "badhook",
        good("badhook", extra="@hookimpl\ndef pre_inptu(text):\n    return text\n"),
    )
    write(
        tmp_path,
        "badargs",
        good("badargs", extra="@hookimpl\ndef pre_input(txt):\n    return txt\n"),
    )
    write(
        tmp_path,
        "wrapper",
        good(
            "wrapper", extra="@hookimpl(wrapper=True)\ndef pre_input(text):\n    return (yield)\n"
        ),
    )
    write(
        tmp_path,
        "badcmd",
        good("badcmd", extra="@command('go', help='Go')\ndef go(ctx):\n    return 1\n"),
    )
    reg = PluginRegistry()
    reg.load_folder(tmp_path)
    reasons = {r["name"]: (r["state"], r["reason"]) for r in reg.list()}
    assert reasons == {
        "badargs": (
            "failed",
            "plugin 'badargs': hooks: Argument(s) {'txt'} are declared in the hookimpl but can "
            "not be found in the hookspec (hook 'pre_input'); use the hookspec's argument "
            "names, see HookSpecs.pre_input",
        ),
        "badcmd": (
            "failed",
            "plugin 'badcmd': commands: 'go': the handler must be an 'async def handler(ctx, ...)'",
        ),
        "badhook": (
            "failed",
            "plugin 'badhook': hooks: 'pre_inptu' is not a hook; use one of pre_input, "
            "route_hint, post_response, analysis_augment",
        ),
        "badperm": (
            "failed",
            "plugin 'badperm': permissions: 'root' is not a permission; use one of read_index, "
            "read_files, call_model, propose_edits, write_files, network",
        ),
        "boom": ("failed", "import failed: RuntimeError: kaboom at import"),
        "bye": ("failed", "import failed: SystemExit: 3"),
        "nospec": (
            "failed",
            "plugin 'nospec': spec: the module has no `spec = plugin(name=..., version=..., "
            "api=...)`; add one",
        ),
        "renamed": (
            "failed",
            "plugin 'other-name': name: declared as 'other-name' but installed as 'renamed'; "
            "make them equal (allow/deny lists are checked on the installed name, before import)",
        ),
        "wrapper": (
            "failed",
            "plugin 'wrapper': hooks: 'pre_input' is a wrapper; wrappers cannot be guarded per "
            "plugin, use tryfirst/trylast instead",
        ),
    }
    # Nothing half-registered: failed plugins have no hooks in pluggy and no modules left.
    assert reg.hooks.pm.get_plugins() == set()
    assert not [m for m in sys.modules if m.startswith(PRIVATE_MODULE_PREFIX) and "boom" in m]


# -- negotiation ---------------------------------------------------------------------------


def test_negotiation_explains_which_side_is_too_old(tmp_path: Path) -> None:
    write(tmp_path, "future", good("future", api=">=2,<3"))
    write(tmp_path, "ancient", good("ancient", api="<1"))
    write(tmp_path, "current", good("current", api="~=1.0"))
    reg = PluginRegistry(api_version="1.0")
    reg.load_folder(tmp_path)
    rows = {r["name"]: r for r in reg.list()}
    assert rows["current"]["state"] == "loaded"
    assert rows["future"]["state"] == rows["ancient"]["state"] == "skipped"
    assert rows["future"]["reason"] == (
        "needs plugin API >=2,<3, this RubberDuck provides 1.0 (too old); upgrade "
        "rubberduck-jupyter or install an older version of the plugin"
    )
    assert rows["ancient"]["reason"] == (
        "needs plugin API <1, this RubberDuck provides 1.0 (newer than the plugin supports); "
        "upgrade the plugin"
    )
    assert rows["future"]["version"] == "1.0"  # a skipped plugin still shows its spec
    assert reg.hooks.pm.get_plugin("future") is None


def test_negotiate_on_specs() -> None:
    spec = plugin(name="x", version="1", api=">=1.2,<2")
    assert negotiate(spec, "1.2") is None
    assert "(too old)" in (negotiate(spec, "1.1") or "")
    assert "upgrade the plugin" in (negotiate(spec, "2.0") or "")


# -- allow / deny --------------------------------------------------------------------------


def test_deny_wins_and_an_allow_list_skips_everything_else(tmp_path: Path) -> None:
    marker = tmp_path / "imported.txt"
    for name in ("alpha", "beta", "gamma"):
        write(tmp_path / "p", name, good(name) + f"open({str(marker)!r}, 'a').write('{name} ')\n")
    reg = PluginRegistry(policy=AccessPolicy.of(allow=["alpha", "BETA"], deny=["beta"]))
    reg.load_folder(tmp_path / "p")
    rows = {r["name"]: (r["state"], r["reason"]) for r in reg.list()}
    assert rows == {
        "alpha": ("loaded", ""),
        "beta": ("skipped", "denied by plugins_deny ('beta' is listed)"),
        "gamma": ("skipped", "not in plugins_allow (which allows alpha, beta)"),
    }
    assert marker.read_text() == "alpha "  # refused plugins' code never ran


def test_names_compare_case_and_underscore_insensitively() -> None:
    policy = AccessPolicy.of(deny=["My_Plugin"])
    assert policy.refusal("my-plugin") is not None
    assert policy.refusal("my_plugin") is not None
    assert policy.refusal("my-plugin2") is None


@pytest.mark.parametrize(
    ("admin", "user", "allowed", "refused"),
    [
        # No admin lists: a user may narrow to an allow list and deny more.
        (AccessPolicy.of(), AccessPolicy.of(allow=["a", "b"], deny=["b"]), {"a"}, {"b", "c"}),
        # An admin allow list cannot be widened by the user's.
        (AccessPolicy.of(allow=["a", "b"]), AccessPolicy.of(allow=["b", "c"]), {"b"}, {"a", "c"}),
        # A user without lists gets the admin's exactly.
        (AccessPolicy.of(allow=["a"], deny=["b"]), AccessPolicy.of(), {"a"}, {"b", "c"}),
        # An admin deny stays denied even when the user allows it.
        (AccessPolicy.of(deny=["a"]), AccessPolicy.of(allow=["a", "b"]), {"b"}, {"a", "c"}),
    ],
)
def test_a_user_can_only_narrow_an_admins_lists(
    admin: AccessPolicy, user: AccessPolicy, allowed: set[str], refused: set[str]
) -> None:
    merged = merge_policies(admin, user)
    assert {n for n in "abc" if merged.refusal(n) is None} == allowed
    assert {n for n in "abc" if merged.refusal(n) is not None} == refused
    # Narrowing, never widening: nothing the admin refuses is allowed after the merge.
    for name in "abc":
        if admin.refusal(name) is not None:
            assert merged.refusal(name) is not None


def test_every_attempt_under_one_name_stays_visible_and_a_loaded_one_holds_it(
    tmp_path: Path,
) -> None:
    write(tmp_path / "one", "hello", "raise ImportError('one is broken')\n")
    write(tmp_path / "two", "hello", "raise ImportError('two is broken')\n")
    write(tmp_path / "three", "hello", good("hello"))
    write(tmp_path / "four", "my_plug", good("my_plug"))
    write(tmp_path / "five", "my-plug", good("my-plug"))
    reg = PluginRegistry()
    reg.discover(entry_points=False, folders=[tmp_path / n for n in ("one", "two", "three")])
    rows = [(r["state"], r["reason"]) for r in reg.list() if r["name"] == "hello"]
    assert sorted(rows) == [
        ("failed", "import failed: ImportError: one is broken"),
        ("failed", "import failed: ImportError: two is broken"),
        ("loaded", ""),
    ]
    assert reg.get("hello").state == "loaded"  # type: ignore[union-attr]
    # Retrying the same source replaces its record instead of adding one.
    reg.load_folder(tmp_path / "one")
    assert len([r for r in reg.list() if r["name"] == "hello"]) == 3
    # '_' and '-' name the same plugin.
    reg.discover(entry_points=False, folders=[tmp_path / "four", tmp_path / "five"])
    plugs = {r["name"]: (r["state"], r["reason"]) for r in reg.list() if "plug" in r["name"]}
    assert plugs["my_plug"] == ("loaded", "")
    assert plugs["my-plug"][0] == "skipped"
    assert plugs["my-plug"][1].startswith("a plugin named 'my-plug' is already loaded from ")
