"""Which MCP servers are in effect: entries checked with messages that say what to fix,
`${VAR}` values, secrets kept out of reprs, and the hub rules: a user cannot replace,
widen or raise an admin's server, user servers only when allowed, an admin file in a
system config dir that makes the traitlets the user's, and one that fails closed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rubberduck_jupyter.tools.base import Permission
from rubberduck_jupyter.tools.mcp import McpServers
from rubberduck_jupyter.tools.mcp.config import (
    ADMIN_FILE,
    McpConfigError,
    parse_server,
    read_admin_files,
    servers_in_effect,
)

STDIO = {"command": ["mcp-github"], "permission": "read"}
ENV = {"GH_TOKEN": "ghp_abcdefghijklmnop"}


def names(specs: list) -> dict[str, tuple[str, Permission, frozenset[str] | None]]:
    return {s.name: (s.source, s.permission, s.tools) for s in specs}


def test_a_stdio_and_an_http_entry_with_defaults_and_variables() -> None:
    stdio = parse_server(
        "gh", {"command": "mcp-github", "env": {"TOKEN": "${GH_TOKEN}"}}, "admin", ENV
    )
    assert stdio.transport == "stdio" and stdio.command == ("mcp-github",)
    assert stdio.permission is Permission.RUN  # the most restrictive by default
    assert stdio.timeout_s == 10.0 and stdio.start_timeout_s == 10.0 and stdio.tools is None
    assert stdio.env == {"TOKEN": "ghp_abcdefghijklmnop"}
    http = parse_server(
        "docs",
        {
            "url": "https://u:p@mcp.example.com/mcp",
            "headers": {"Authorization": "Bearer ${GH_TOKEN}"},
            "tools": ["search"],
            "timeout": 3,
        },
        "user",
        ENV,
    )
    assert http.transport == "http" and http.allows("search") and not http.allows("delete")
    assert http.timeout_s == 3.0 and http.start_timeout_s == 3.0  # start-up: the call's bound
    slow = parse_server("n", {"command": ["npx"], "start_timeout": 60}, "admin", ENV)
    assert (slow.timeout_s, slow.start_timeout_s) == (10.0, 60.0)
    assert http.where() == "https://mcp.example.com/mcp"
    # Secrets appear in no repr and are listed for the redactor.
    assert "ghp_" not in repr(stdio) + repr(http)
    assert http.secrets() == ["Bearer ghp_abcdefghijklmnop"]


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("has space", STDIO, "use 1-24 letters"),
        ("a__b" * 10, STDIO, "use 1-24 letters"),
        ("x", {"command": ["a"], "url": "http://h"}, "either 'command' (stdio) or 'url'"),
        ("x", {}, "either 'command' (stdio) or 'url'"),
        ("x", {"url": "ftp://h"}, "http:// or https://"),
        ("x", {"command": []}, "list of strings"),
        ("x", {"command": ["a"], "permission": "admin"}, "read, write or run"),
        ("x", {"command": ["a"], "timeout": 0}, "'timeout' must be"),
        ("x", {"command": ["a"], "start_timeout": "1"}, "'start_timeout' must be"),
        ("x", {"command": ["a"], "tools": "search"}, "list of tool names"),
        ("x", {"command": ["a"], "args": ["-v"]}, "unknown key(s) args"),
        ("x", {"command": ["a"], "env": {"T": "${NOT_SET_ANYWHERE}"}}, "${NOT_SET_ANYWHERE}"),
    ],
)
def test_a_bad_entry_says_what_to_fix(name: str, raw: dict, says: str) -> None:
    with pytest.raises(McpConfigError) as err:
        parse_server(name, raw, "admin", ENV)
    assert says in str(err.value)


def test_a_user_cannot_replace_widen_or_raise_an_admins_server() -> None:
    admin = {"gh": {**STDIO, "tools": ["search_issues"]}}
    user = {
        "gh": {"command": ["mcp-github"], "permission": "read"},  # no allow-list: wider
        "mine": {"command": ["my-server"], "permission": "read"},
    }
    specs, problems = servers_in_effect(
        configured=admin, allow_user=True, user_file=user, admin_file=None, env=ENV
    )
    assert names(specs) == {
        "gh": ("admin", Permission.READ, frozenset({"search_issues"})),
        "mine": ("user", Permission.READ, None),
    }
    assert any("'gh' is ignored" in p for p in problems)


def test_user_servers_only_when_the_admin_allows_them() -> None:
    specs, problems = servers_in_effect(
        configured={"gh": STDIO},
        allow_user=False,
        user_file={"mine": {"command": ["x"]}},
        admin_file=None,
        env=ENV,
    )
    assert list(names(specs)) == ["gh"]
    assert any("mcp_allow_user_servers = False" in p for p in problems)


def test_on_a_hub_the_admin_file_binds_and_the_traitlets_count_as_the_users(
    tmp_path: Path,
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / ADMIN_FILE).write_text(
        json.dumps(
            {
                "mcp_servers": {"search": {"url": "https://s.example/mcp", "permission": "read"}},
                "allow_user_servers": False,
            }
        )
    )
    admin = read_admin_files([str(etc)])
    # The user's own jupyter_server_config.py sets the traitlets to widen things.
    specs, _ = servers_in_effect(
        configured={"search": {"command": ["evil"], "permission": "read"}, "x": STDIO},
        allow_user=True,
        user_file={"y": STDIO},
        admin_file=admin,
        env=ENV,
    )
    assert names(specs) == {"search": ("admin", Permission.READ, None)}
    assert specs[0].url == "https://s.example/mcp"
    # Allowed by the admin: the traitlets' servers join as the user's (never over the admin's).
    (etc / ADMIN_FILE).write_text(json.dumps({"mcp_servers": {}, "allow_user_servers": True}))
    specs, _ = servers_in_effect(
        configured={"x": STDIO},
        allow_user=True,
        user_file={"y": STDIO},
        admin_file=read_admin_files([str(etc)]),
        env=ENV,
    )
    assert {n: v[0] for n, v in names(specs).items()} == {"x": "user", "y": "user"}


def test_several_admin_files_only_narrow_and_a_broken_one_fails_closed(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / ADMIN_FILE).write_text(json.dumps({"mcp_servers": {"s": STDIO}}))
    (b / ADMIN_FILE).write_text(
        json.dumps({"mcp_servers": {"s": {"command": ["other"]}}, "allow_user_servers": False})
    )
    merged = read_admin_files([str(a), str(b)])
    assert merged is not None and merged.allow_user is False
    assert merged.servers["s"] == STDIO  # the first file's entry
    (b / ADMIN_FILE).write_text("{not json")
    broken = read_admin_files([str(a), str(b)])
    specs, problems = servers_in_effect(
        configured={"x": STDIO}, allow_user=True, user_file=None, admin_file=broken, env=ENV
    )
    assert specs == [] and "no MCP server runs" in problems[0]
    assert read_admin_files([str(tmp_path / "none")]) is None


def test_the_user_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    user_file = tmp_path / "mcp.json"
    servers = McpServers({"gh": STDIO}, user_file=user_file, admin_dirs=[], env=ENV)
    assert [s.name for s in servers.specs] == ["gh"]
    user_file.write_text(json.dumps({"mcp_servers": {"mine": {"command": ["x"], "timeout": 2}}}))
    servers._refresh()
    assert [s.name for s in servers.specs] == ["gh", "mine"]
    user_file.write_text("[]")
    servers._refresh()
    assert [s.name for s in servers.specs] == ["gh"]


def test_a_urls_query_and_user_info_are_secrets_too() -> None:
    spec = parse_server(
        "q", {"url": "https://bob:hunter22@h.example:8443/mcp?key=k-1234567&v=1"}, "admin", ENV
    )
    assert spec.where() == "https://h.example:8443/mcp"
    assert set(spec.secrets()) == {"k-1234567", "hunter22"}


def test_server_secrets_join_the_redactors_list() -> None:
    servers = McpServers(
        {"gh": {**STDIO, "env": {"GITHUB_TOKEN": "${GH_TOKEN}"}}}, admin_dirs=[], env=ENV
    )
    assert servers.secrets() == ["ghp_abcdefghijklmnop"]


def test_doctor_lists_the_servers_and_what_cannot_be_used(tmp_path: Path) -> None:
    from rubberduck_jupyter.cli import check_mcp

    user_file = tmp_path / "mcp.json"
    user_file.write_text(json.dumps({"mcp_servers": {"gh": STDIO, "mine": {"command": ["x"]}}}))
    settings = {
        "mcp_servers": {"gh": STDIO, "bad": {"url": "ftp://nope"}},
        "mcp_user_servers_file": str(user_file),
    }
    checks = {(c.name, c.ok): c.detail for c in check_mcp(settings, admin_dirs=[])}
    assert checks[("mcp server gh", True)].startswith("stdio mcp-github (admin), permission read")
    assert "not offered yet" in checks[("mcp server mine", True)]  # run, the default
    failed = [d for (name, ok), d in checks.items() if name == "mcp servers" and not ok]
    assert failed == ["MCP server bad: 'url' must be an http:// or https:// URL"]
    assert any("'gh' is ignored" in d for (n, ok), d in checks.items() if ok and n == "mcp servers")
    # Nothing configured: nothing to say.
    assert check_mcp({"mcp_user_servers_file": str(tmp_path / "no.json")}, admin_dirs=[]) == []
