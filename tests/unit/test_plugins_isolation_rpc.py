"""The isolation RPC's framing and error mapping, without a subprocess."""

from __future__ import annotations

import asyncio
import struct

import pytest

from rubberduck_jupyter.plugins import PermissionRefused, PluginSpecError
from rubberduck_jupyter.plugins.isolation import rpc

pytestmark = pytest.mark.timeout(5)


def reader_of(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_frames_round_trip_and_end_cleanly_between_frames() -> None:
    data = rpc.encode({"t": "result", "id": 1, "value": "é"}) + rpc.encode({"t": "ctx", "id": 2})
    reader = reader_of(data)
    assert await rpc.read_frame(reader, rpc.FROM_WORKER) == {"t": "result", "id": 1, "value": "é"}
    assert (await rpc.read_frame(reader, rpc.FROM_WORKER))["id"] == 2  # type: ignore[index]
    assert await rpc.read_frame(reader, rpc.FROM_WORKER) is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (struct.pack(">I", rpc.MAX_FRAME_BYTES + 1), "over the 4194304 byte limit"),
        (b"\x00\x00", "ended inside a frame header"),
        (struct.pack(">I", 10) + b"abc", "ended inside a frame (3 of 10 bytes)"),
        (struct.pack(">I", 3) + b"{x}", "not JSON"),
        (struct.pack(">I", 2) + b"[]", "not a JSON object"),
        (struct.pack(">I", 12) + b'{"t":"call"}', "has type 'call'; expected one of ctx, hello"),
    ],
)
async def test_malformed_frames_are_protocol_errors_naming_the_problem(
    data: bytes, problem: str
) -> None:
    with pytest.raises(rpc.ProtocolError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        await rpc.read_frame(reader_of(data), rpc.FROM_WORKER)


def test_an_oversized_or_non_json_message_is_refused_before_it_is_sent() -> None:
    with pytest.raises(rpc.ProtocolError, match="over the 4194304 byte limit"):
        rpc.encode({"t": "result", "value": "x" * rpc.MAX_FRAME_BYTES})
    with pytest.raises(TypeError):
        rpc.encode({"t": "result", "value": {1, 2}})
    with pytest.raises(ValueError):
        rpc.encode({"t": "result", "value": float("nan")})


def test_permission_refused_and_spec_errors_are_rebuilt_exactly() -> None:
    refused = PermissionRefused("p", "ask", "call_model")
    again = rpc.raise_payload(rpc.error_payload(refused))
    assert type(again) is PermissionRefused and str(again) == str(refused)
    spec_error = PluginSpecError("p", "permissions", "bad")
    again = rpc.raise_payload(rpc.error_payload(spec_error))
    assert type(again) is PluginSpecError and str(again) == str(spec_error)


def test_other_errors_keep_their_type_name() -> None:
    assert type(rpc.raise_payload({"type": "ValueError", "message": "m"})) is ValueError
    custom = rpc.raise_payload({"type": "ModuleNotFoundError", "message": "No module named 'x'"})
    assert isinstance(custom, rpc.RemoteError)
    assert f"{type(custom).__name__}: {custom}" == "ModuleNotFoundError: No module named 'x'"
    # A type name that is not an identifier does not become a class name.
    odd = rpc.raise_payload({"type": "os.system('x')", "message": "m"})
    assert type(odd) is rpc.RemoteError
    assert isinstance(rpc.raise_payload("not a dict"), rpc.ProtocolError)


def test_the_isolation_package_imports_only_the_stdlib_pluggy_packaging_and_the_core() -> None:
    import ast
    import sys
    from pathlib import Path

    package = Path(rpc.__file__).resolve().parent
    allowed = set(sys.stdlib_module_names) | {"pluggy", "packaging"}
    wrong = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: must stay inside rubberduck_jupyter.plugins
                    if node.level > 2:
                        wrong.append(f"{path.name}: from {'.' * node.level}{node.module}")
                    continue
                tops = [node.module or ""]
            else:
                continue
            for name in tops:
                if name.startswith("rubberduck_jupyter"):
                    if not name.startswith("rubberduck_jupyter.plugins"):
                        wrong.append(f"{path.name}: {name}")
                elif name.split(".")[0] not in allowed:
                    wrong.append(f"{path.name}: {name}")
    assert len(list(package.glob("*.py"))) >= 6  # the check read the package
    assert not wrong, wrong
