"""What a chat turn through the session layer costs on top of the LLM service alone, and
why conversations live in SQLite rather than DuckDB.

    python benchmarks/session_overhead.py [--rounds 100]

1. Turn overhead: the same streamed answer (~41 chunks from the fake provider, a separate
   process on 127.0.0.1) through (a) `LLMService.stream` and (b) `SessionManager.run_turn`
   (store the question, the actor's mailbox, routing, prompt building with history and
   redaction, frames, storing the answer), interleaved round by round; medians and ratio.
2. Store: appending a message in its own transaction (what a turn does) to the SQLite
   store vs the same row into a DuckDB table, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from llm_overhead import MESSAGES, PROMPT, start_fake

from rubberduck_jupyter.domain.models import Message, Project, new_id
from rubberduck_jupyter.engines.registry import build_engines
from rubberduck_jupyter.llm.config import build_models_config
from rubberduck_jupyter.llm.service import LLMService
from rubberduck_jupyter.protocol import ChatRequest
from rubberduck_jupyter.sessions.manager import SessionManager
from rubberduck_jupyter.sessions.preferences import PreferenceBook
from rubberduck_jupyter.sessions.store import (
    AsyncConversationStore,
    ConversationStore,
)


async def via_service(service: LLMService) -> float:
    started = time.perf_counter()
    async for _piece in service.stream(user="bench", messages=MESSAGES):
        pass
    return time.perf_counter() - started


async def via_session(manager: SessionManager, conversation: str, i: int) -> float:
    async def emit(_frame: dict[str, Any]) -> None:
        return None

    request = ChatRequest(id=f"t{i}", conversation_id=conversation, text=PROMPT)
    started = time.perf_counter()
    await manager.run_turn("bench", request, emit)
    return time.perf_counter() - started


def bench_manager(base_url: str, folder: Path) -> tuple[LLMService, SessionManager]:
    """The LLM service and a session manager wired as the server wires them, on the fake
    provider at `base_url` and a SQLite file in `folder` (shared with partial_save.py)."""
    config = build_models_config(model="openai/fake", api_base=base_url, api_key="sk-b", env={})
    service = LLMService(config)
    store = AsyncConversationStore(ConversationStore(folder / "bench.sqlite3"))
    preferences = PreferenceBook(store)
    manager = SessionManager(
        store=store,
        model=service,
        has_model=lambda: True,
        engines=build_engines(preferences=preferences),
        preferences=preferences,
        project=Project.for_root(str(folder), "bench"),
        history_tokens=lambda _m: 2000,
    )
    return service, manager


async def turn_overhead(base_url: str, rounds: int, folder: Path) -> dict[str, float]:
    service, manager = bench_manager(base_url, folder)
    for i in range(3):  # warm up litellm and both paths
        await via_service(service)
        await via_session(manager, "warm", i)
    direct, session, with_history = [], [], []
    for i in range(rounds):
        direct.append(await via_service(service))
        # A new conversation each turn: the same prompt as the direct call, plus the
        # system prompt, so the difference is the session layer's own work.
        session.append(await via_session(manager, f"fresh{i}", i))
        # For information: a conversation carrying up to 9 earlier turns of history.
        with_history.append(await via_session(manager, f"c{i // 10}", rounds + i))
    await manager.close()
    await manager.store.aclose()
    d, s = statistics.median(direct) * 1000, statistics.median(session) * 1000
    h = statistics.median(with_history) * 1000
    return {"service_ms": d, "session_ms": s, "added_ms": s - d, "ratio": s / d, "history_ms": h}


def store_appends(folder: Path, n: int) -> dict[str, float]:
    import duckdb

    sqlite = ConversationStore(folder / "appends.sqlite3")
    from rubberduck_jupyter.domain.models import Conversation

    sqlite.create_conversation(Conversation("c", "u", "p"))
    started = time.perf_counter()
    for i in range(n):
        sqlite.add_message(Message(new_id("m"), "c", 0, "user", f"message {i}", f"t{i}"))
    sqlite_ms = (time.perf_counter() - started) / n * 1000
    sqlite.close()

    con = duckdb.connect(str(folder / "appends.duckdb"))
    con.execute(
        "CREATE TABLE messages (id VARCHAR PRIMARY KEY, conversation_id VARCHAR, seq INTEGER, "
        "role VARCHAR, content VARCHAR, turn_id VARCHAR, status VARCHAR, meta VARCHAR, "
        "created_at DOUBLE)"
    )
    started = time.perf_counter()
    for i in range(n):
        con.execute("BEGIN TRANSACTION")
        seq = con.execute(
            "SELECT coalesce(max(seq) + 1, 0) FROM messages WHERE conversation_id = 'c'"
        ).fetchone()[0]
        con.execute(
            "INSERT INTO messages VALUES (?, 'c', ?, 'user', ?, ?, 'pending', '{}', ?)",
            [new_id("m"), seq, f"message {i}", f"t{i}", time.time()],
        )
        con.execute("COMMIT")
    duck_ms = (time.perf_counter() - started) / n * 1000
    con.close()
    return {"sqlite_ms": sqlite_ms, "duckdb_ms": duck_ms, "ratio": duck_ms / sqlite_ms}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--appends", type=int, default=2000)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    fake, base_url = start_fake()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            turns = asyncio.run(turn_overhead(base_url, args.rounds, Path(tmp)))
            appends = store_appends(Path(tmp), args.appends)
    finally:
        fake.terminate()
        fake.wait(10)
    print(
        f"turn, median of {args.rounds}: service {turns['service_ms']:.2f} ms, session "
        f"{turns['session_ms']:.2f} ms, added {turns['added_ms']:+.2f} ms, "
        f"ratio {turns['ratio']:.3f}; with up to 9 turns of history {turns['history_ms']:.2f} ms"
    )
    print(
        f"append one message per transaction, {args.appends}: SQLite {appends['sqlite_ms']:.3f}"
        f" ms, DuckDB {appends['duckdb_ms']:.3f} ms, DuckDB/SQLite {appends['ratio']:.1f}"
    )


if __name__ == "__main__":
    main()
