"""The sidebar's protocol module names the same error and notice codes as the server's:
a code added on one side only would reach the other as an unknown string."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rubberduck_jupyter.protocol import ErrorCode, NoticeCode

PROTOCOL_TS = Path(__file__).resolve().parents[2] / "labextension" / "src" / "protocol.ts"


def ts_const(name: str) -> dict[str, str]:
    text = PROTOCOL_TS.read_text(encoding="utf-8")
    block = re.search(rf"export const {name} = \{{(.*?)\}} as const;", text, re.S)
    assert block, f"no `export const {name} = {{...}} as const` in {PROTOCOL_TS}"
    return dict(re.findall(r"^\s*([A-Z_]+): '([a-z_]+)'", block.group(1), re.M))


@pytest.mark.parametrize(("name", "enum"), [("ErrorCode", ErrorCode), ("NoticeCode", NoticeCode)])
def test_typescript_and_python_codes_agree(name: str, enum: type) -> None:
    assert ts_const(name) == {member.name: member.value for member in enum}
